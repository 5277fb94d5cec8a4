"""The library entry points the CLI calls: one function per command.

This is the only place that wires the stages together and holds the impure parts (the clock,
the network client, the state file, the sender); each is passed in so tests can use real local
servers or fakes. Data flows one way: config -> fetch -> parse -> select -> render -> deliver,
with the store beside them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from curator import select
from curator.errors import ConfigError, DeliveryError, ParseError
from curator.models import (
    Config,
    DeliveryResult,
    FeedConfig,
    FeedOutcome,
    FetchResult,
    IssueDraft,
    Period,
    Post,
    QuestionChoice,
    RenderedIssue,
    StoredIssue,
    Validators,
)
from curator.store import IssueSummary, RunLock, Store

if TYPE_CHECKING:
    import httpx

    from curator.deliver import Outgoing, Sender
    from curator.render import SourceNote

# Below this many feeds to parse, a process pool costs more to start than it saves.
PARSE_POOL_MIN = 8
# How far back already-sent posts are checked when deduplicating a new issue.
DEDUPE_HORIZON = timedelta(days=30)

Progress = Callable[[FeedOutcome], None]


# ---------------------------------------------------------------- fetch


async def _fetch_and_parse(
    feeds: Sequence[FeedConfig],
    validators: dict[str, Validators],
    config: Config,
    client: httpx.AsyncClient | None,
    progress: Progress | None,
) -> list[FeedOutcome]:
    from curator.fetch import Fetcher, make_client
    from curator.parse import ParsePool

    cpus = os.cpu_count() or 1
    # feedparser is CPU-bound: with many feeds, parse in other processes while this one
    # keeps fetching; with few, a thread is enough and starts at once.
    parser = ParsePool(min(4, cpus) if len(feeds) >= PARSE_POOL_MIN and cpus > 1 else 0)
    own_client = client is None
    http = client or make_client(config.fetch)
    fetcher = Fetcher(http, config.fetch)

    async def one(feed: FeedConfig) -> FeedOutcome:
        result = await fetcher.fetch(feed, validators.get(feed.url, Validators()))
        outcome = FeedOutcome(feed, result, error=result.error)
        if result.status == "ok" and result.body is not None:
            url = result.final_url or feed.url
            try:
                parsed = await parser.parse(result.body, url, result.content_type)
                outcome = FeedOutcome(feed, result, parsed=parsed)
            except ParseError as exc:
                outcome = FeedOutcome(feed, result, error=str(exc))
        if progress is not None:
            progress(outcome)
        return outcome

    try:
        return list(await asyncio.gather(*(one(feed) for feed in feeds)))
    finally:
        if own_client:
            await http.aclose()
        parser.close()


def _backed_off(
    config: Config, store: Store, now: datetime
) -> tuple[list[FeedConfig], dict[str, FeedOutcome]]:
    """Split the enabled feeds into those due now and those left alone by the backoff."""
    from curator.health import fetch_due

    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    health = store.feed_health()
    due: list[FeedConfig] = []
    resting: dict[str, FeedOutcome] = {}
    for feed in config.enabled_feeds:
        known = health.get(feed.url)
        decision = fetch_due(
            failures=known.consecutive_failures if known else 0,
            last_attempt=known.last_attempt if known else None,
            now=now,
            period_start=period.start,
        )
        if decision.due or known is None or decision.next_try is None:
            due.append(feed)
            continue
        times = "once" if decision.failures == 1 else f"{decision.failures} times in a row"
        note = (
            f"failed {times}, next try after {decision.next_try:%Y-%m-%d %H:%M} UTC; "
            f"last error: {known.last_error}"
        )
        resting[feed.url] = FeedOutcome(feed, FetchResult(feed, "skipped", error=note))
    return due, resting


def fetch_feeds(
    config: Config,
    store: Store,
    now: datetime,
    *,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    honour_backoff: bool = False,
) -> list[FeedOutcome]:
    """Fetch every enabled feed, store what is new, and return one outcome per feed.

    With ``honour_backoff``, a feed that keeps failing is left alone until its backoff
    interval has passed (see :mod:`curator.health`), but never for a whole issue period.
    ``send`` and ``preview`` leave it off: they run once per period and try every feed.
    """
    feeds: list[FeedConfig] = list(config.enabled_feeds)
    resting: dict[str, FeedOutcome] = {}
    if honour_backoff:
        feeds, resting = _backed_off(config, store, now)
        if progress is not None:
            for outcome in resting.values():
                progress(outcome)
    fetched_now = asyncio.run(_fetch_and_parse(feeds, store.validators(), config, client, progress))
    by_url = {o.feed.url: o for o in fetched_now}
    stored: list[FeedOutcome] = []
    for feed in config.enabled_feeds:
        if feed.url in resting:
            stored.append(resting[feed.url])
            continue
        outcome = by_url[feed.url]
        fetched = _without_body(outcome.fetch)
        parsed = outcome.parsed
        if outcome.error is not None and fetched.ok:
            # Fetched but not a feed: a failure for the feed's health, and its validators
            # are not kept, so the next run reads (and judges) the body again.
            failed = replace(fetched, status="failed", error=outcome.error)
            store.record_fetch(failed, now)
        else:
            store.record_fetch(fetched, now, parsed.title if parsed else None)
        new = 0
        if parsed is not None:
            new = store.save_entries(outcome.feed.url, outcome.feed.name, parsed.entries, now)
        stored.append(replace(outcome, new_entries=new, fetch=fetched))
    return stored


def _without_body(result: FetchResult) -> FetchResult:
    return replace(result, body=None) if result.body is not None else result


def run_fetch(
    config: Config,
    now: datetime,
    *,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
) -> list[FeedOutcome]:
    """``curator fetch``: fetch and store only."""
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        return fetch_feeds(
            config, store, now, client=client, progress=progress, honour_backoff=True
        )


# ---------------------------------------------------------------- building an issue


def draft_issue(
    config: Config,
    store: Store,
    now: datetime,
    period: Period,
    *,
    keep_question: str | None = None,
) -> IssueDraft | None:
    """Decide this period's posts and question from what the store holds; None when there
    are no posts and ``empty_week`` says to skip."""
    newsletter = config.newsletter
    previous = store.previous_issue(period.key)
    since = select.window_start(
        now, previous.built_at if previous else None, newsletter.lookback_days
    )
    candidates = store.unsent_posts(since)
    earlier_round = store.latest_issue(period.key)
    if earlier_round is not None:
        # A forced resend rebuilds the period's issue: its own posts are candidates again.
        known = {p.id for p in candidates}
        candidates += [p for p in store.issue_posts(earlier_round.id) if p.id not in known]
    sent = store.sent_posts_since(since - DEDUPE_HORIZON, exclude_period=period.key)
    selection = select.posts_for_issue(
        candidates,
        now=now,
        since=since,
        already_sent=sent,
        feed_order=[f.url for f in config.feeds],
        max_posts=newsletter.max_posts,
        max_posts_per_feed=newsletter.max_posts_per_feed,
        feed_caps={f.url: f.max_posts for f in config.feeds if f.max_posts},
        reading_minutes=newsletter.reading_minutes,
    )
    posts, more, resurfaced = selection.posts, selection.more, False
    if not posts:
        if newsletter.empty_week == "skip":
            return None
        if newsletter.empty_week == "archive":
            older = tuple(store.unsent_posts_before(since, limit=1))
            posts, resurfaced = older, bool(older)
    question: QuestionChoice | None
    if keep_question is not None:
        question = QuestionChoice(keep_question, "kept: a period's question never changes")
    else:
        history = [use.question for use in store.question_uses()]
        question = select.choose_question(config.questions, history, [*posts, *more])
    return IssueDraft(period, posts, more, question, resurfaced=resurfaced)


def _source_notes(config: Config, outcomes: Sequence[FeedOutcome]) -> list[SourceNote]:
    from curator.render import SourceNote

    by_url = {o.feed.url: o for o in outcomes}
    notes = []
    for feed in config.enabled_feeds:
        outcome = by_url.get(feed.url)
        if outcome is None:
            notes.append(SourceNote(feed.name, True))
        else:
            notes.append(SourceNote(feed.name, outcome.ok, outcome.error or ""))
    return notes


def render_draft(
    config: Config, draft: IssueDraft, outcomes: Sequence[FeedOutcome]
) -> RenderedIssue:
    from curator.render import render_issue

    return render_issue(
        draft,
        config.newsletter,
        sources=_source_notes(config, outcomes),
        templates_dir=config.templates_dir,
    )


def _messages(
    config: Config,
    *,
    subject: str,
    html: str,
    text: str,
    period: str,
    round_: int,
    recipients: Sequence[str],
    now: datetime,
) -> list[Outgoing]:
    from curator.deliver import build_message

    return [
        build_message(
            newsletter=config.newsletter,
            recipient=recipient,
            subject=subject,
            html=html,
            text=text,
            period=period,
            round_=round_,
            date=now,
        )
        for recipient in recipients
    ]


# ---------------------------------------------------------------- send


@dataclass(frozen=True)
class SendOptions:
    dry_run: bool = False
    to: tuple[str, ...] = ()
    force: bool = False


@dataclass(frozen=True)
class SendReport:
    """What a send did, in lines a person reads, and the exit code it deserves."""

    lines: tuple[str, ...]
    exit_code: int = 0
    period: str | None = None
    results: tuple[DeliveryResult, ...] = ()
    outcomes: tuple[FeedOutcome, ...] = ()
    written: tuple[Path, ...] = field(default=())


def _feed_lines(outcomes: Sequence[FeedOutcome]) -> list[str]:
    return [f"feed {o.feed.name!r} skipped: {o.error}" for o in outcomes if not o.ok]


def run_send(
    config: Config,
    options: SendOptions,
    now: datetime,
    *,
    client: httpx.AsyncClient | None = None,
    sender: Sender | None = None,
) -> SendReport:
    """``curator send``: fetch, build this period's issue, freeze it, deliver it, record it."""
    from curator.deliver import OutboxSender, make_sender

    recipients = options.to or config.newsletter.to
    if not recipients:
        raise ConfigError(
            "no recipients",
            path=str(config.path),
            key="newsletter.to",
            hint="list addresses under newsletter.to, set CURATOR_TO, or pass --to ADDR",
        )
    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    record = not options.dry_run and not options.to
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        frozen = store.latest_issue(period.key)
        if record and frozen is not None and not options.force:
            pending = [d.recipient for d in store.deliveries(frozen.id) if d.status == "pending"]
            if not pending:
                return _already_sent(store, frozen)
            chosen = sender or make_sender(config.delivery, config.newsletter.from_addr)
            results = _deliver(config, store, frozen, pending, chosen, now)
            return _delivery_report(
                frozen, results, [f"completing {frozen.period}: {len(pending)} recipients left"]
            )

        outcomes = fetch_feeds(config, store, now, client=client)
        lines = _feed_lines(outcomes)
        all_failed = bool(outcomes) and all(not o.ok for o in outcomes)
        keep = frozen.question if frozen is not None else None
        draft = draft_issue(config, store, now, period, keep_question=keep)
        if draft is None or (not draft.posts and draft.question is None):
            if all_failed:
                lines.append("every feed failed and nothing is new: nothing was sent")
                return SendReport(tuple(lines), 1, period.key, outcomes=tuple(outcomes))
            lines.append(
                f"no new posts for {period.key}: nothing to send (newsletter.empty_week is skip)"
            )
            return SendReport(tuple(lines), 0, period.key, outcomes=tuple(outcomes))
        rendered = render_draft(config, draft, outcomes)
        lines += [f"note: {note}" for note in rendered.notes]

        if options.dry_run:
            messages = _messages(
                config,
                subject=rendered.subject,
                html=rendered.html,
                text=rendered.text,
                period=period.key,
                round_=0,
                recipients=recipients,
                now=now,
            )
            outbox = OutboxSender(config.delivery.outbox_dir)
            dry = [replace(m, name=f"dry-run-{m.name}") for m in messages]
            results = list(outbox.deliver(dry))
            written = tuple(config.delivery.outbox_dir / f"{m.name}.eml" for m in dry)
            lines.append(
                f"dry run: {len(written)} messages for {period.key} written to "
                f"{config.delivery.outbox_dir}; nothing was sent or recorded"
            )
            return SendReport(tuple(lines), 0, period.key, tuple(results), tuple(outcomes), written)

        if options.to:
            messages = _messages(
                config,
                subject=f"[test] {rendered.subject}",
                html=rendered.html,
                text=rendered.text,
                period=f"test-{period.key}",
                round_=0,
                recipients=recipients,
                now=now,
            )
            chosen = sender or make_sender(config.delivery, config.newsletter.from_addr)
            try:
                results = list(chosen.deliver(messages))
            finally:
                chosen.close()
            lines += [f"test copy to {r.recipient}: {r.status} ({r.detail})" for r in results]
            lines.append("test copies are not recorded")
            code = 0 if all(r.status == "sent" for r in results) else 1
            return SendReport(tuple(lines), code, period.key, tuple(results), tuple(outcomes))

        issue = store.freeze_issue(
            period=period.key,
            built_at=now,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            question=draft.question.text if draft.question else None,
            question_reason=draft.question.reason if draft.question else None,
            post_ids=[p.id for p in (*draft.posts, *draft.more)],
            recipients=recipients,
        )
        chosen = sender or make_sender(config.delivery, config.newsletter.from_addr)
        results = _deliver(config, store, issue, recipients, chosen, now)
        report = _delivery_report(issue, results, lines)
        return replace(report, outcomes=tuple(outcomes))


def _deliver(  # noqa: PLR0917 - a private helper called from two places
    config: Config,
    store: Store,
    issue: StoredIssue,
    recipients: Sequence[str],
    sender: Sender,
    now: datetime,
) -> list[DeliveryResult]:
    """Deliver a frozen issue, recording each recipient's outcome as soon as it is known."""
    messages = _messages(
        config,
        subject=issue.subject,
        html=issue.html,
        text=issue.text,
        period=issue.period,
        round_=issue.round,
        recipients=recipients,
        now=now,
    )
    results: list[DeliveryResult] = []
    try:
        for result in sender.deliver(messages):
            store.mark_delivery(issue.id, result.recipient, result.status, result.detail, now)
            results.append(result)
    except DeliveryError as exc:
        done = len(results)
        left = len(recipients) - done
        exc.message += (
            f" ({done} delivered or refused before it, {left} left pending for the next run)"
        )
        raise
    finally:
        sender.close()
    return results


def _delivery_report(
    issue: StoredIssue, results: Sequence[DeliveryResult], lines: Sequence[str]
) -> SendReport:
    out = list(lines)
    sent = [r for r in results if r.status == "sent"]
    pending = [r for r in results if r.status == "pending"]
    failed = [r for r in results if r.status == "failed"]
    out.append(
        f"sent {issue.period} ({issue.post_count} posts) to {len(sent)} of {len(results)} "
        f"recipients: {issue.subject}"
    )
    out += [f"will retry {r.recipient} on the next run: {r.detail}" for r in pending]
    out += [f"failed for good: {r.recipient}: {r.detail}" for r in failed]
    code = 0 if not pending and not failed else 1
    return SendReport(tuple(out), code, issue.period, tuple(results))


def _already_sent(store: Store, issue: StoredIssue) -> SendReport:
    rows = store.deliveries(issue.id)
    sent = sum(1 for d in rows if d.status == "sent")
    failed = sum(1 for d in rows if d.status == "failed")
    extra = f", {failed} failed for good" if failed else ""
    line = (
        f"{issue.period} was already sent on {issue.built_at:%Y-%m-%d %H:%M} UTC to {sent} "
        f"recipients{extra}: nothing to do (use --force to send it again)"
    )
    return SendReport((line,), 0, issue.period)


# ---------------------------------------------------------------- preview


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
) -> PreviewReport:
    """``curator preview``: the issue send would send now, written to files, not recorded."""
    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        frozen = store.latest_issue(period.key)
        lines: list[str] = []
        if frozen is not None:
            subject, html, text = frozen.subject, frozen.html, frozen.text
            lines.append(f"{period.key} is already built (round {frozen.round}): showing it")
        else:
            outcomes = fetch_feeds(config, store, now, client=client)
            lines += _feed_lines(outcomes)
            draft = draft_issue(config, store, now, period)
            if draft is None or (not draft.posts and draft.question is None):
                lines.append(f"no new posts for {period.key}: send would send nothing")
                return PreviewReport(tuple(lines))
            rendered = render_draft(config, draft, outcomes)
            lines += [f"note: {n}" for n in rendered.notes]
            subject, html, text = rendered.subject, rendered.html, rendered.text
    recipient = (config.newsletter.to or ("reader@example.invalid",))[0]
    (message,) = _messages(
        config,
        subject=subject,
        html=html,
        text=text,
        period=period.key,
        round_=0,
        recipients=[recipient],
        now=now,
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = (out_dir / "issue.html", out_dir / "issue.txt", out_dir / "issue.eml")
        paths[0].write_text(html, encoding="utf-8")
        paths[1].write_text(text, encoding="utf-8")
        paths[2].write_bytes(message.message.as_bytes())
    except OSError as exc:
        raise DeliveryError(
            f"cannot write the preview to {out_dir}: {exc.strerror or exc}"
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


def run_questions(config: Config, now: datetime) -> list[QuestionRow]:
    """``curator questions``: the bank, when each was last used, and which comes next."""
    with Store.open(config.state_path) as store:
        uses = store.question_uses()
        posts: Sequence[Post] = store.unsent_posts(
            now - timedelta(days=config.newsletter.lookback_days)
        )
    history = [u.question for u in uses]
    used, _ = select.used_in_cycle(config.questions, history)
    upcoming = select.choose_question(config.questions, history, posts)
    last_used: dict[str, str] = {}
    for use in uses:
        last_used[use.question] = f"{use.period} ({use.used_at:%Y-%m-%d})"
    return [
        QuestionRow(
            text=q.text,
            themes=q.themes,
            last_used=last_used.get(q.text),
            used_in_cycle=q.text in used,
            is_next=upcoming is not None and upcoming.text == q.text,
        )
        for q in config.questions
    ]
