"""Render an issue to its subject, HTML and plain text. The only module that imports jinja2.

Templates live in ``templates/`` (shipped inside the wheel as ``curator/templates``); a user's
own folder (``templates:`` in feeds.yaml) overrides any of them by name. Autoescape is on for
HTML and every undefined variable is an error (StrictUndefined), so a typo in a template fails
loudly instead of sending an email with a hole in it.

No HTML from a feed ever reaches the email: posts arrive here as plain text and checked
http(s) links, and Jinja2 escapes them.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from curator.answers import PersonalParts
from curator.errors import ConfigError, RenderError
from curator.models import ArchivedIssue, IssueDraft, NewsletterConfig, Post, RenderedIssue
from curator.normalize import cut_text

# Gmail clips a message whose HTML part passes 102 KB; stay clear of it with some margin.
HTML_LIMIT = 100 * 1024
TEXT_WIDTH = 76
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


def wrap_text(text: str, width: int = TEXT_WIDTH, indent: str = "") -> str:
    """Wrap prose for the text part; words (and URLs) are never broken."""
    return "\n".join(
        textwrap.wrap(
            text,
            width=width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


def header_safe(text: str) -> str:
    """One line of text that can never split or add a header."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", text).strip()


def _date_label(moment: datetime | None, year: int) -> str:
    """ "Wed 25 Nov"; with the year when it is not the issue's (an older post resurfaced)."""
    if moment is None:
        return ""
    label = f"{moment:%a} {moment.day} {moment:%b}"
    return label if moment.year == year else f"{label} {moment.year}"


def _post_view(post: Post, excerpt_chars: int, year: int) -> dict[str, Any]:
    return {
        "title": post.title,
        "link": post.link,
        "source": post.feed_name,
        "author": post.author if post.author and post.author != post.feed_name else None,
        "date": _date_label(post.published or post.first_seen, year),
        "excerpt": cut_text(post.excerpt, excerpt_chars) if excerpt_chars else "",
        "minutes": post.reading_minutes,
        "image": post.image,
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
    personal_marker: bool = False,
) -> RenderedIssue:
    """Render ``draft``; trims excerpts (never posts first) to keep the HTML unclipped.

    With ``personal_marker`` the HTML and text carry :data:`PERSONAL_MARKER_HTML` and
    :data:`PERSONAL_MARKER_TEXT` under the question, where each reader's block goes."""
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
        posts: Sequence[Post], more: Sequence[Post], chars: int, note: str
    ) -> tuple[dict[str, Any], str]:
        context = _context(draft, newsletter, sources, subject, posts, more, chars, note)
        context["personal_marker"] = personal_marker
        return context, _inline_css(_render(html_template, context))

    fit = _fit_size(draft, build)
    text = _render(text_template, fit.context)
    return RenderedIssue(subject=subject, html=fit.html, text=text, notes=fit.notes)


# Renders one attempt: (full posts, link-only posts, excerpt length, note to the reader).
_Build = Callable[[Sequence[Post], Sequence[Post], int, str], tuple[dict[str, Any], str]]


@dataclass(frozen=True)
class _Fit:
    context: dict[str, Any]
    html: str
    notes: tuple[str, ...]


def _fits(html: str) -> bool:
    return len(html.encode()) <= HTML_LIMIT


def _fit_size(draft: IssueDraft, build: _Build) -> _Fit:
    """Shrink an issue until its inlined HTML fits: shorter excerpts, then no excerpts, then
    posts moved to the link list, and only then links left out. The last two are said in the
    email itself as well as in the notes, because the reader is missing something."""
    posts, more = list(draft.posts), list(draft.more)
    for chars in _EXCERPT_STEPS:
        context, html = build(posts, more, chars, "")
        if _fits(html):
            break
    notes: list[str] = []
    if chars != _EXCERPT_STEPS[0]:
        notes.append(
            f"excerpts shortened to {chars} characters to stay under Gmail's clipping size"
            if chars
            else "excerpts left out to stay under Gmail's clipping size"
        )
    if _fits(html):
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
        return build(everything[:k], rest, 0, note.strip())

    low, high = 1, len(posts)
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(with_full(middle)[1]):
            low = middle
        else:
            high = middle - 1
    full = low
    context, html = with_full(full)
    if full < len(posts):
        notes.append(f"{len(posts) - full} posts moved to the link list for size")
    if not _fits(html):
        low, high = 0, len(everything) - full
        while low < high:
            middle = (low + high + 1) // 2
            if _fits(with_full(full, middle)[1]):
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
) -> dict[str, Any]:
    year = draft.period.start.year
    views = [_post_view(p, excerpt_chars, year) for p in posts]
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
) -> dict[str, str]:
    """The archive as files: one page per issue, ``index.html`` and the Atom ``feed.xml``.

    A page is the issue's HTML exactly as it was sent, with a link back to the index added
    at the top of its body. Pure: the caller writes the files.
    """
    import jinja2

    newest_first = sorted(issues, key=lambda i: (i.built_at, i.period), reverse=True)
    views = [
        {
            "period": issue.period,
            "subject": issue.subject,
            "date": f"{issue.built_at.day} {issue.built_at:%B %Y}",
            "updated": issue.built_at.isoformat().replace("+00:00", "Z"),
            "href": archive_page_name(issue.period),
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
    }
    try:
        env = _environment(templates_dir)
        files = {
            "index.html": _render(env.get_template("archive_index.html.j2"), context),
            "feed.xml": _render(env.get_template("archive_feed.xml.j2"), context),
        }
        nav = _render(env.get_template("archive_nav.html.j2"), context)
    except jinja2.TemplateError as exc:
        raise RenderError(
            f"archive template error: {exc}",
            hint="fix the template (or remove yours to use the built-in one)",
        ) from exc
    for issue in issues:
        files[archive_page_name(issue.period)] = _BODY_OPEN.sub(
            lambda m: m.group(0) + nav, issue.html, count=1
        )
    return files


# ---------------------------------------------------------------- per-reader parts

# Where the shared body of an issue takes each reader's personal block (beside the question).
# The issue templates write them only when rendered with ``personal_marker=True``.
PERSONAL_MARKER_HTML = "<!--curator:personal-->"
PERSONAL_MARKER_TEXT = "[[curator:personal]]"


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
    }
    html = _render(env.get_template("personal.html.j2"), context).strip()
    text = _render(env.get_template("personal.txt.j2"), context).strip("\n")
    return html, text


def insert_personal(shared: str, block: str, kind: str) -> str:
    """The shared body (``kind`` "html" or "text") with one reader's block in place of the
    marker; an empty block removes the marker and its line."""
    marker = PERSONAL_MARKER_HTML if kind == "html" else PERSONAL_MARKER_TEXT
    if not block:
        return shared.replace(marker + "\n", "").replace(marker, "")
    if kind == "text":
        block = "\n" + block.strip("\n")
    return shared.replace(marker, block, 1)
