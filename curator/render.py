"""Render an issue to its subject, HTML and plain text. The only module that imports jinja2.

Templates live in ``templates/`` (shipped inside the wheel as ``curator/templates``); a user's
own folder (``templates:`` in feeds.yaml) overrides any of them by name. Autoescape is on for
HTML and every undefined variable is an error (StrictUndefined), so a typo in a template fails
loudly instead of sending an email with a hole in it.

No HTML from a feed ever reaches the email: posts arrive here as plain text and checked
http(s) links, and Jinja2 escapes them.

Longer than the ~450 lines a module should keep to, on purpose: it is the one place Jinja2 is
used (issue, archive, size trimming, text wrapping by display width), as the style asks.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from curator.answers import PersonalParts
from curator.errors import ConfigError, RenderError
from curator.models import ArchivedIssue, IssueDraft, NewsletterConfig, Post, RenderedIssue
from curator.normalize import cut_text, xml_safe

# Gmail clips a message whose HTML part passes 102 KB; stay clear of it with some margin.
HTML_LIMIT = 100 * 1024
# Room kept under HTML_LIMIT for one reader's block of earlier answers, added to the shared body
# after it was fitted; render_personal shortens the answers until the block fits in it.
PERSONAL_RESERVE = 12 * 1024
TEXT_WIDTH = 76
# The card's inner width, and the size of the small pictures beside other posts.
LEAD_IMAGE_WIDTH = 528
THUMB_WIDTH = 96
# A picture known to be narrower than this is shown as a thumbnail, not across the card.
LEAD_MIN_WIDTH = 300
_EXCERPT_STEPS = (320, 200, 120, 0)


@dataclass(frozen=True)
class SourceNote:
    """A line of the footer: a source read this week, and whether it failed."""

    name: str
    ok: bool
    note: str = ""


def templates_path() -> Path:
    """The built-in templates: inside the installed package, else the source tree's."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def _environment(user_dir: Path | None) -> Any:
    import jinja2

    search = [str(user_dir)] if user_dir else []
    search.append(str(templates_path()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2", "xml", "xml.j2"), default_for_string=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap_text
    return env


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal or a fixed-width mail reader: wide (CJK) and
    full-width characters take two, combining marks none."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


# Punctuation that must not start a line (kinsoku): it stays with the character before it.
_NO_LINE_START = frozenset("、。，．・：；？！）」』】〕〉》”’ー々〜…,.!?:;)]}")
# A break may fall before and after each wide character, and at spaces; never inside a URL.
_PIECES = re.compile(
    r"https?://\S+|[^\S\n]+|[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]|[^\s\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]+"
)


def wrap_text(text: str, width: int = TEXT_WIDTH, indent: str = "") -> str:
    """Wrap prose for the text part by display width, so Chinese, Japanese and Korean lines
    fit too; words and URLs are never broken, and a link stands on a line of its own."""
    tokens: list[tuple[bool, str]] = []  # (a space before it, the piece)
    space = False
    for piece in _PIECES.findall(text):
        if piece.isspace():
            space = True
            continue
        if tokens and not space and piece[0] in _NO_LINE_START:
            glued_space, previous = tokens[-1]
            tokens[-1] = (glued_space, previous + piece)
        else:
            tokens.append((space, piece))
        space = False
    lines: list[str] = []
    line = ""
    for space, piece in tokens:
        is_link = piece.startswith(("http://", "https://"))
        candidate = line + (" " if space and line else "") + piece
        if line and (is_link or display_width(indent + candidate) > width):
            lines.append(line)
            line = piece
        else:
            line = candidate
        if is_link:
            lines.append(line)
            line = ""
    if line:
        lines.append(line)
    return "\n".join(indent + one for one in lines)


def header_safe(text: str) -> str:
    """One line of text that can never split or add a header."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", text).strip()


def _date_label(moment: datetime | None, year: int) -> str:
    """ "Wed 25 Nov"; with the year when it is not the issue's (an older post resurfaced)."""
    if moment is None:
        return ""
    label = f"{moment:%a} {moment.day} {moment:%b}"
    return label if moment.year == year else f"{label} {moment.year}"


def _picture(post: Post, lead: bool) -> dict[str, Any] | None:
    """How a post's picture is drawn: never wider than its known width, never stretched."""
    if not post.image:
        return None
    known = post.image_width
    big = lead and (known is None or known >= LEAD_MIN_WIDTH)
    box = LEAD_IMAGE_WIDTH if big else THUMB_WIDTH
    width = min(box, known) if known else box
    height = None
    if known and post.image_height:
        height = round(post.image_height * width / known)
    return {
        "src": post.image,
        "width": width,
        "height": height,
        "big": big,
        # Filling the card is right only when the picture is at least as wide as the card.
        "fill": big and width == LEAD_IMAGE_WIDTH,
        "alt": f"Picture for \u201c{cut_text(post.title, 90)}\u201d",
    }


def _excerpt(text: str, chars: int) -> str:
    """The excerpt cut to ``chars`` columns of display: a Chinese, Japanese or Korean
    character is as wide as two Latin letters and says about as much as a word."""
    if not chars or not text:
        return ""
    wide = display_width(text) - len(text)
    limit = chars if wide < len(text) // 3 else chars // 2
    return cut_text(text, limit)


_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")


def _post_view(
    post: Post, excerpt_chars: int, year: int, *, lead: bool = False, picture: bool = True
) -> dict[str, Any]:
    return {
        "title": post.title,
        "link": post.link,
        "source": post.feed_name,
        "author": post.author if post.author and post.author != post.feed_name else None,
        "date": _date_label(post.published or post.first_seen, year),
        "excerpt": _excerpt(post.excerpt, excerpt_chars),
        # Korean is written with spaces between words: a line may break only there.
        "keep_words": bool(_HANGUL.search(post.title + post.excerpt)),
        "minutes": post.reading_minutes,
        "time": post.time_label,
        "image": post.image,
        "picture": _picture(post, lead) if post.link and picture else None,
    }


def _groups(posts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for post in posts:
        if groups and groups[-1]["source"] == post["source"]:
            groups[-1]["posts"].append(post)
        else:
            groups.append({"source": post["source"], "posts": [post]})
    return groups


def render_issue(
    draft: IssueDraft,
    newsletter: NewsletterConfig,
    *,
    sources: Sequence[SourceNote] = (),
    templates_dir: Path | None = None,
    archive_url: str | None = None,
    personal_marker: bool = False,
) -> RenderedIssue:
    """Render ``draft``; trims excerpts (never posts first) to keep the HTML unclipped.

    With ``archive_url`` (where the archive folder is published, ending in "/"), the issue
    links to its own web page there. With ``personal_marker`` the HTML and text carry
    :data:`PERSONAL_MARKER_HTML` and :data:`PERSONAL_MARKER_TEXT` under the question, where
    each reader's block goes."""
    import jinja2

    try:
        env = _environment(templates_dir)
        html_template = env.get_template("issue.html.j2")
        text_template = env.get_template("issue.txt.j2")
        subject = header_safe(
            env.from_string(newsletter.subject).render(_subject_context(draft, newsletter))
        )
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            f"template {exc.filename or exc.name or 'subject'}:{exc.lineno}: {exc.message}",
            hint="fix the template (or remove yours to use the built-in one)",
        ) from exc
    except jinja2.TemplateError as exc:
        raise RenderError(f"template error: {exc}") from exc

    def build(
        posts: Sequence[Post], more: Sequence[Post], chars: int, note: str, thumbs: bool
    ) -> tuple[dict[str, Any], str]:
        context = _context(
            draft, newsletter, sources, subject, posts, more, chars, note, archive_url, thumbs
        )
        context["personal_marker"] = personal_marker
        return context, _inline_css(_render(html_template, context))

    limit = HTML_LIMIT - (PERSONAL_RESERVE if personal_marker else 0)
    fit = _fit_size(draft, build, limit)
    text = _render(text_template, fit.context)
    return RenderedIssue(subject=subject, html=fit.html, text=text, notes=fit.notes)


# Renders one attempt: (full posts, link-only posts, excerpt length, note to the reader,
# thumbnails or not).
_Build = Callable[[Sequence[Post], Sequence[Post], int, str, bool], tuple[dict[str, Any], str]]
# Excerpt lengths and thumbnails, tried in turn: the small pictures are the first extra to go.
_STEPS = ((_EXCERPT_STEPS[0], True), *((chars, False) for chars in _EXCERPT_STEPS))


@dataclass(frozen=True)
class _Fit:
    context: dict[str, Any]
    html: str
    notes: tuple[str, ...]


def _fits(html: str, limit: int = HTML_LIMIT) -> bool:
    return len(html.encode()) <= limit


def _fit_size(draft: IssueDraft, build: _Build, limit: int = HTML_LIMIT) -> _Fit:
    """Shrink an issue until its inlined HTML fits: no thumbnails, shorter excerpts, then no
    excerpts, then posts moved to the link list, and only then links left out. The last two
    are said in the email itself as well as in the notes, because the reader is missing
    something."""
    posts, more = list(draft.posts), list(draft.more)
    for chars, thumbs in _STEPS:
        context, html = build(posts, more, chars, "", thumbs)
        if _fits(html, limit):
            break
    notes: list[str] = []
    if not thumbs:
        notes.append("thumbnails left out to stay under Gmail's clipping size")
    if chars != _EXCERPT_STEPS[0]:
        notes.append(
            f"excerpts shortened to {chars} characters to stay under Gmail's clipping size"
            if chars
            else "excerpts left out to stay under Gmail's clipping size"
        )
    if _fits(html, limit):
        return _Fit(context, html, tuple(notes))

    # Even without excerpts it is too big. Keep as many full posts as fit (at least the lead),
    # found by bisection because a large issue takes a while to render each time.
    everything = posts + more

    def with_full(k: int, links: int | None = None) -> tuple[dict[str, Any], str]:
        rest = everything[k:] if links is None else everything[k : k + links]
        shown = k + len(rest)
        note = ""
        if k < len(posts):
            note = f"This issue was long, so {len(posts) - k} posts are listed as links only."
        if shown < len(everything):
            note += f" {len(everything) - shown} more posts were left out for size."
        return build(everything[:k], rest, 0, note.strip(), False)

    low, high = 1, len(posts)
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(with_full(middle)[1], limit):
            low = middle
        else:
            high = middle - 1
    full = low
    context, html = with_full(full)
    if full < len(posts):
        notes.append(f"{len(posts) - full} posts moved to the link list for size")
    if not _fits(html, limit):
        low, high = 0, len(everything) - full
        while low < high:
            middle = (low + high + 1) // 2
            if _fits(with_full(full, middle)[1], limit):
                low = middle
            else:
                high = middle - 1
        context, html = with_full(full, low)
        notes.append(f"{len(everything) - full - low} links left out for size")
    return _Fit(context, html, tuple(notes))


def _render(template: Any, context: dict[str, Any]) -> str:
    import jinja2

    try:
        return str(template.render(context))
    except jinja2.TemplateError as exc:
        raise RenderError(
            f"template {template.name}: {exc}",
            hint="fix the template (or remove yours to use the built-in one)",
        ) from exc


def check_subject(newsletter: NewsletterConfig, config_path: str) -> None:
    """Refuse a subject template that would fail at send time, before anything is fetched."""
    import jinja2

    sample = {
        "title": newsletter.title,
        "period_label": "Week of 23–29 November 2026",
        "period": "2026-W48",
        "post_count": 3,
        "lead_title": "A post",
        "question": "Are you leading or managing?",
    }
    try:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - a subject line is not HTML
        env.from_string(newsletter.subject).render(sample)
    except jinja2.TemplateError as exc:
        raise ConfigError(
            f"the subject template does not work: {exc}",
            path=config_path,
            key="newsletter.subject",
            hint="it may use " + ", ".join(f"{{{{ {name} }}}}" for name in sample),
        ) from exc


def _subject_context(draft: IssueDraft, newsletter: NewsletterConfig) -> dict[str, Any]:
    lead = draft.posts[0].title if draft.posts else ""
    return {
        "title": newsletter.title,
        "period_label": draft.period.label,
        "period": draft.period.key,
        "post_count": len(draft.posts) + len(draft.more),
        "lead_title": lead,
        "question": draft.question.text if draft.question else "",
    }


def _context(  # noqa: PLR0917 - a private helper called from one place
    draft: IssueDraft,
    newsletter: NewsletterConfig,
    sources: Sequence[SourceNote],
    subject: str,
    posts: Sequence[Post],
    more: Sequence[Post],
    excerpt_chars: int,
    size_note: str = "",
    archive_url: str | None = None,
    thumbs: bool = True,
) -> dict[str, Any]:
    year = draft.period.start.year
    views = [
        _post_view(p, excerpt_chars, year, lead=i == 0, picture=thumbs or i == 0)
        for i, p in enumerate(posts)
    ]
    preheader = draft.question.text if draft.question else ", ".join(p["title"] for p in views[:3])
    return {
        **_subject_context(draft, newsletter),
        "subject": subject,
        "lang": newsletter.language,
        "intro": newsletter.intro,
        "lead": views[0] if views else None,
        "groups": _groups(views[1:]),
        "posts": views,
        "more": [_post_view(p, 0, year) for p in more],
        "resurfaced": draft.resurfaced,
        "question": draft.question.text if draft.question else None,
        "preheader": cut_text(preheader, 140),
        "sources": [s for s in sources if s.ok],
        "failed_sources": [s for s in sources if not s.ok],
        "unsubscribe": newsletter.unsubscribe,
        "from_name": newsletter.from_addr,
        "size_note": size_note,
        "web_url": (archive_url + archive_page_name(draft.period.key)) if archive_url else None,
    }


def _inline_css(html: str) -> str:
    import css_inline

    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    try:
        return str(inliner.inline(html))
    except ValueError as exc:  # css_inline reports bad CSS as ValueError subclasses
        raise RenderError(f"the template's CSS could not be inlined: {exc}") from exc


# ---------------------------------------------------------------- the web archive

# The Atom feed lists the newest issues only; the index lists them all.
FEED_ENTRIES = 50
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)
_WEB_COPY = re.compile(r"<!--web-copy-->.*?<!--/web-copy-->", re.S)
# What only an emailed copy has: the place of a reader's own block and the invitation to reply.
_REPLY_ONLY = re.compile(r"<!--reply-only-->.*?<!--/reply-only-->", re.S)


def archive_page_name(period: str) -> str:
    """The file an issue's archive page is written to (period keys are file-name safe)."""
    return f"{period}.html"


def _archive_id(*parts: str) -> str:
    # Stable ids without a site URL: the same newsletter and period always give the same id.
    return uuid.uuid5(uuid.NAMESPACE_URL, "curator:" + "\x00".join(parts)).urn


def render_archive(
    issues: Sequence[ArchivedIssue],
    newsletter: NewsletterConfig,
    *,
    templates_dir: Path | None = None,
    archive_url: str | None = None,
) -> dict[str, str]:
    """The archive as files: one page per issue, ``index.html`` and the Atom ``feed.xml``.

    A page is the issue's HTML as it was sent, with a link back to the index added at the
    top of its body (and without its "View in your browser" link: it is that page). With
    ``archive_url`` every link is absolute; without it, relative to the folder. Pure: the
    caller writes the files.
    """
    base = archive_url or ""
    import jinja2

    newest_first = sorted(issues, key=lambda i: (i.built_at, i.period), reverse=True)
    views = [
        {
            "period": issue.period,
            "subject": issue.subject,
            "date": f"{issue.built_at.day} {issue.built_at:%B %Y}",
            "updated": issue.built_at.isoformat().replace("+00:00", "Z"),
            "href": base + archive_page_name(issue.period),
            "id": _archive_id(newsletter.title, issue.period),
            "question": issue.question,
            "posts": issue.posts,
        }
        for issue in newest_first
    ]
    context = {
        "title": newsletter.title,
        "lang": newsletter.language,
        "issues": views,
        "feed_entries": views[:FEED_ENTRIES],
        "feed_id": _archive_id(newsletter.title),
        "updated": views[0]["updated"] if views else "1970-01-01T00:00:00Z",
        "base": base,
    }
    try:
        env = _environment(templates_dir)
        files = {
            "index.html": _render(env.get_template("archive_index.html.j2"), context),
            # A character XML forbids, in a title stored before curator removed them, would
            # make the whole feed unreadable.
            "feed.xml": xml_safe(_render(env.get_template("archive_feed.xml.j2"), context)),
        }
        nav = _render(env.get_template("archive_nav.html.j2"), context)
    except jinja2.TemplateError as exc:
        raise RenderError(
            f"archive template error: {exc}",
            hint="fix the template (or remove yours to use the built-in one)",
        ) from exc
    for issue in issues:
        page = _REPLY_ONLY.sub("", _WEB_COPY.sub("", issue.html))
        files[archive_page_name(issue.period)] = _BODY_OPEN.sub(
            lambda m: m.group(0) + nav, page, count=1
        )
    return files


# ---------------------------------------------------------------- per-reader parts

# Where the shared body of an issue takes each reader's personal block (beside the question).
# The issue templates write them only when rendered with ``personal_marker=True``.
PERSONAL_MARKER_HTML = "<!--curator:personal-->"
PERSONAL_MARKER_TEXT = "[[curator:personal]]"


_PROMISE = re.compile(
    r"\b(?:I\s+will|I['’]ll|I\s+am\s+going\s+to|I['’]m\s+going\s+to|I\s+plan\s+to|"
    r"I\s+intend\s+to)\b",
    re.IGNORECASE,
)


def render_personal(parts: PersonalParts, templates_dir: Path | None = None) -> tuple[str, str]:
    """One reader's block of earlier answers as (html, text); both empty when there is none.

    The answers are the reader's text: the HTML template escapes them like any other value."""
    if parts.empty:
        return "", ""
    env = _environment(templates_dir)
    previous = parts.previous
    context: dict[str, Any] = {
        "previous": previous,
        "previous_lead": (
            "Last week you answered" if previous and previous.question else "Last week you wrote"
        ),
        "earlier": parts.earlier,
        "earlier_label": parts.earlier_label,
        # "Did you?" follows an answer that promised something, not every answer.
        "asks_back": bool(previous and _PROMISE.search(previous.text)),
    }
    for keep in (None, 1000, 200):
        if keep is not None:
            # A block past its reserved room would push the copy past Gmail's clipping size.
            for name in ("previous", "earlier"):
                answer = context[name]
                if answer is not None and len(answer.text) > keep:
                    short = answer.text[:keep].rsplit(None, 1)[0] + " …"
                    context[name] = replace(answer, text=short)
        html = _render(env.get_template("personal.html.j2"), context).strip()
        if len(html.encode()) <= PERSONAL_RESERVE:
            break
    text = _render(env.get_template("personal.txt.j2"), context).strip("\n")
    return html, text


def has_personal_place(rendered: RenderedIssue) -> bool:
    """Whether both parts of a rendered issue mark where each reader's block goes."""
    return PERSONAL_MARKER_HTML in rendered.html and PERSONAL_MARKER_TEXT in rendered.text


def insert_personal(shared: str, block: str, kind: str) -> str:
    """The shared body (``kind`` "html" or "text") with one reader's block in place of the
    marker; an empty block removes the marker and its line."""
    marker = PERSONAL_MARKER_HTML if kind == "html" else PERSONAL_MARKER_TEXT
    if not block:
        return shared.replace(marker + "\n", "").replace(marker, "")
    if kind == "text":
        block = "\n" + block.strip("\n")
    return shared.replace(marker, block, 1)
