"""The library entry points the CLI calls, one per command, gathered in one place.

The work lives in modules named for their jobs; this module re-exports their entry points (so
``from curator.app import run_send`` keeps working) and holds the small read-only commands:

- :mod:`curator.refresh`: fetching and storing feeds (``fetch_feeds``, ``run_fetch``), shared by
  ``send``, ``preview`` and ``fetch``;
- :mod:`curator.drafting`: drafting and rendering an issue (``draft_issue``, ``render_draft``);
- :mod:`curator.plan`: the pure send plan (``plan_send``), and :mod:`curator.sending`, which
  carries it out (``run_send``, ``SendOptions``, ``SendReport``);
- :mod:`curator.archive`: the web archive of sent issues;
- here: ``preview``, ``history`` and ``questions``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from curator import select
from curator.archive import archived_issues, write_issue_archive
from curator.drafting import DEDUPE_HORIZON, draft_issue, render_draft, unrecorded_messages
from curator.errors import PreviewError
from curator.files import atomic_write
from curator.models import Config, IssueSummary, QuestionChoice, RenderedIssue
from curator.plan import Note, SendOptions, feed_notes
from curator.refresh import PARSE_POOL_MIN, Progress, fetch_feeds, run_fetch, source_name
from curator.render import insert_personal
from curator.sending import OWED_HORIZON, SendReport, check_ready, run_send
from curator.store import RunLock, Store

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEDUPE_HORIZON",
    "OWED_HORIZON",
    "PARSE_POOL_MIN",
    "Note",
    "PreviewReport",
    "Progress",
    "QuestionRow",
    "SendOptions",
    "SendReport",
    "archived_issues",
    "draft_issue",
    "fetch_feeds",
    "render_draft",
    "run_fetch",
    "run_history",
    "run_preview",
    "run_questions",
    "run_send",
    "source_name",
    "write_issue_archive",
]


# ---------------------------------------------------------------- preview

PREVIEW_RECIPIENT = "reader@example.invalid"


@dataclass(frozen=True)
class PreviewReport:
    lines: tuple[str, ...]
    html_path: Path | None = None
    written: tuple[Path, ...] = ()


def run_preview(
    config: Config,
    now: datetime,
    out_dir: Path,
    *,
    client: httpx.AsyncClient | None = None,
    retry_failed: bool = False,
    progress: Progress | None = None,
) -> PreviewReport:
    """``curator preview``: the issue send would send now, written to files, not recorded.

    ``progress`` is called once per feed as its fetch ends (the CLI draws a bar with it)."""
    check_ready(config, delivering=False)
    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        frozen = store.latest_issue(period.key)
        lines: list[str] = []
        if frozen is not None:
            subject, html, text = frozen.subject, frozen.html, frozen.text
            lines.append(f"{period.key} is already built (round {frozen.round}): showing it")
        else:
            outcomes = fetch_feeds(
                config,
                store,
                now,
                client=client,
                honour_backoff=not retry_failed,
                progress=progress,
            )
            lines += [note.text for note in feed_notes(outcomes)]
            draft = draft_issue(config, store, now, period)
            if draft is None or (not draft.posts and draft.question is None):
                lines.append(f"no new posts for {period.key}: send would send nothing")
                return PreviewReport(tuple(lines))
            # With replies the preview shows the invitation to reply that every copy has.
            rendered = render_draft(
                config, store, draft, outcomes, personal_marker=config.replies is not None
            )
            lines += [f"note: {n}" for n in rendered.notes]
            subject, html, text = rendered.subject, rendered.html, rendered.text
    # The place of a reader's own block stays empty: a preview is nobody's copy.
    html, text = insert_personal(html, "", "html"), insert_personal(text, "", "text")
    # A placeholder, never a reader: a preview may be shared (the weekly workflow keeps it
    # as a run artifact), and an address in it would be published with it.
    recipient = PREVIEW_RECIPIENT
    shown = RenderedIssue(subject, html, text)
    messages, unbuilt = unrecorded_messages(config, shown, period.key, [recipient], now)
    if unbuilt:
        raise PreviewError(f"cannot build the preview's message: {unbuilt[0].detail}")
    (message,) = messages
    paths = (out_dir / "issue.html", out_dir / "issue.txt", out_dir / "issue.eml")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(paths[0], html.encode("utf-8"), mode=0o644)
        atomic_write(paths[1], text.encode("utf-8"), mode=0o644)
        # The message names a reader: only its owner may read it.
        atomic_write(paths[2], message.message.as_bytes())
    except OSError as exc:
        raise PreviewError(
            f"cannot write the preview to {out_dir}: {exc.strerror or exc}",
            hint="pass --out DIR with a folder you may write to",
        ) from exc
    lines.append(f"preview of {period.key} written to {out_dir}: {subject}")
    return PreviewReport(tuple(lines), paths[0], paths)


# ---------------------------------------------------------------- history and questions


def run_history(config: Config) -> list[IssueSummary]:
    """``curator history``: every issue built, with its delivery counts."""
    with Store.open(config.state_path) as store:
        return store.history()


@dataclass(frozen=True)
class QuestionRow:
    text: str
    themes: tuple[str, ...]
    last_used: str | None
    used_in_cycle: bool
    is_next: bool
    reason: str | None = None
    # "this period" for the question this period's issue already carries, "next" for the one
    # the next issue to be built will carry, else empty.
    mark: str = ""


def run_questions(config: Config, now: datetime) -> list[QuestionRow]:
    """``curator questions``: the bank, when each was last used, and which comes next.

    Once this period's issue is built, its question is marked "this period" and "next" is
    the one the following period would take (in the listed order: its posts are not known)."""
    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    with Store.open(config.state_path) as store:
        uses = store.question_uses()
        frozen = store.latest_issue(period.key)
        history = [u.question for u in uses]
        current: QuestionChoice | None = None
        upcoming: QuestionChoice | None
        if frozen is not None and frozen.question is not None:
            current = QuestionChoice(frozen.question, f"the question of {period.key}'s issue")
            after = history if frozen.question in history else [*history, frozen.question]
            upcoming = select.choose_question(config.questions, after, [])
            if upcoming is not None:
                upcoming = replace(upcoming, reason=f"next period's; {upcoming.reason}")
        else:
            # What `send` would pick now, from the posts it would send now.
            draft = draft_issue(config, store, now, period)
            upcoming = draft.question if draft is not None else None
            if upcoming is None:
                upcoming = select.choose_question(config.questions, history, [])
    used, _ = select.used_in_cycle(config.questions, history)
    last_used: dict[str, str] = {}
    for use in uses:
        last_used[use.question] = f"{use.period} ({use.used_at:%Y-%m-%d})"
    rows = []
    for q in config.questions:
        marked = [
            (mark, choice)
            for mark, choice in (("this period", current), ("next", upcoming))
            if choice is not None and choice.text == q.text
        ]
        mark, choice = marked[0] if marked else ("", None)
        rows.append(
            QuestionRow(
                text=q.text,
                themes=q.themes,
                last_used=last_used.get(q.text),
                used_in_cycle=q.text in used,
                is_next=mark == "next",
                reason=choice.reason if choice is not None else None,
                mark=mark,
            )
        )
    return rows
