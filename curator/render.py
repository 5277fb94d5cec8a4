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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from curator.errors import RenderError
from curator.models import IssueDraft, NewsletterConfig, Post, RenderedIssue
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
            enabled_extensions=("html", "html.j2"), default_for_string=False
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


def _date_label(moment: datetime | None) -> str:
    return f"{moment:%a} {moment.day} {moment:%b}" if moment else ""


def _post_view(post: Post, excerpt_chars: int) -> dict[str, Any]:
    return {
        "title": post.title,
        "link": post.link,
        "source": post.feed_name,
        "author": post.author if post.author and post.author != post.feed_name else None,
        "date": _date_label(post.published or post.first_seen),
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
) -> RenderedIssue:
    """Render ``draft``; trims excerpts (never posts first) to keep the HTML unclipped."""
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

    notes: list[str] = []
    posts = list(draft.posts)
    more = list(draft.more)
    for step, chars in enumerate(_EXCERPT_STEPS):
        context = _context(draft, newsletter, sources, subject, posts, more, chars)
        html = _render(html_template, context)
        if len(html.encode()) <= HTML_LIMIT:
            break
        if step < len(_EXCERPT_STEPS) - 1:
            continue
        # Even without excerpts the issue is too big: move posts to the link list.
        while len(html.encode()) > HTML_LIMIT and len(posts) > 1:
            more.insert(0, posts.pop())
            context = _context(draft, newsletter, sources, subject, posts, more, 0)
            html = _render(html_template, context)
        while len(html.encode()) > HTML_LIMIT and more:
            more.pop()
            context = _context(draft, newsletter, sources, subject, posts, more, 0)
            html = _render(html_template, context)
    if chars != _EXCERPT_STEPS[0]:
        notes.append(
            f"excerpts shortened to {chars} characters to stay under Gmail's clipping size"
            if chars
            else "excerpts left out to stay under Gmail's clipping size"
        )
    if len(posts) < len(draft.posts):
        notes.append(f"{len(draft.posts) - len(posts)} posts moved to the link list for size")
    text = _render(text_template, context)
    inlined = _inline_css(html)
    return RenderedIssue(subject=subject, html=inlined, text=text, notes=tuple(notes))


def _render(template: Any, context: dict[str, Any]) -> str:
    import jinja2

    try:
        return str(template.render(context))
    except jinja2.TemplateError as exc:
        raise RenderError(
            f"template {template.name}: {exc}",
            hint="fix the template (or remove yours to use the built-in one)",
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
) -> dict[str, Any]:
    views = [_post_view(p, excerpt_chars) for p in posts]
    preheader = draft.question.text if draft.question else ", ".join(p["title"] for p in views[:3])
    return {
        **_subject_context(draft, newsletter),
        "subject": subject,
        "lang": newsletter.language,
        "intro": newsletter.intro,
        "lead": views[0] if views else None,
        "groups": _groups(views[1:]),
        "posts": views,
        "more": [_post_view(p, 0) for p in more],
        "resurfaced": draft.resurfaced,
        "question": draft.question.text if draft.question else None,
        "preheader": cut_text(preheader, 140),
        "sources": [s for s in sources if s.ok],
        "failed_sources": [s for s in sources if not s.ok],
        "unsubscribe": newsletter.unsubscribe,
        "from_name": newsletter.from_addr,
    }


def _inline_css(html: str) -> str:
    import css_inline

    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    try:
        return str(inliner.inline(html))
    except ValueError as exc:  # css_inline reports bad CSS as ValueError subclasses
        raise RenderError(f"the template's CSS could not be inlined: {exc}") from exc
