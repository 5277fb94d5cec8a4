"""The library entry points the CLI calls: one function per command.

This is the only place that wires the stages together and holds the impure parts (the clock,
the network client, the state file, the sender); each is passed in so tests can use real local
servers or fakes. Data flows one way: config -> fetch -> parse -> select -> render -> deliver,
with the store beside them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from curator import select
from curator.errors import ArchiveError, ConfigError, DeliveryError, ParseError, RenderError
from curator.models import (
    ArchivedIssue,
    ArchivedPost,
    Config,
    DeliveryResult,
    FeedConfig,
    FeedOutcome,
    FetchResult,
    IssueDraft,
    Period,
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
# How long a recipient left pending by an earlier period's issue is still sent that issue.
OWED_HORIZON = timedelta(days=30)

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
        try:
            outcome = await read(feed)
        except Exception as exc:
            # Fetch and parse turn every failure they know into a value; this is a bug in
            # curator or a library, said as that feed's error so the issue still goes out.
            failed = FetchResult(feed, "failed", error=f"unexpected {type(exc).__name__}")
            outcome = FeedOutcome(
                feed, failed, error=f"unexpected error: {type(exc).__name__}: {exc}"
            )
        if progress is not None:
            progress(outcome)
        return outcome

    async def read(feed: FeedConfig) -> FeedOutcome:
        result = await fetcher.fetch(feed, validators.get(feed.url, Validators()))
        if result.status != "ok" or result.body is None:
            return FeedOutcome(feed, result, error=result.error)
        url = result.final_url or feed.url
        try:
            parsed = await parser.parse(result.body, url, result.content_type)
        except ParseError as exc:
            return FeedOutcome(feed, result, error=str(exc))
        return FeedOutcome(feed, result, parsed=parsed)

    try:
        return list(await asyncio.gather(*(one(feed) for feed in feeds)))
    finally:
        if own_client:
            await http.aclose()
        parser.close()


def _backed_off(
    config: Config, store: Store, now: datetime
) -> tuple[list[FeedConfig], dict[str, FeedOutcome]]:
    """Split the enabled feeds into those due now (likely-slow first) and those left alone
    by the backoff."""
    from curator.health import fetch_due, fetch_order

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
    failures = {url: h.consecutive_failures for url, h in health.items()}
    elapsed = {url: h.last_elapsed for url, h in health.items() if h.last_elapsed is not None}
    by_url = {feed.url: feed for feed in due}
    return [by_url[url] for url in fetch_order(list(by_url), failures, elapsed)], resting


def fetch_feeds(
    config: Config,
    store: Store,
    now: datetime,
    *,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    honour_backoff: bool = True,
) -> list[FeedOutcome]:
    """Fetch every enabled feed, store what is new, and return one outcome per feed.

    A feed that keeps failing is left alone until its backoff interval has passed (see
    :mod:`curator.health`), but never for a whole issue period: every feed is tried at least
    once before each issue. ``honour_backoff=False`` tries every feed now.
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
    # One commit for the whole batch: with synchronous=FULL, one per feed costs an fsync each.
    with store.transaction():
        return [_store_outcome(store, f, by_url, resting, now) for f in config.enabled_feeds]


def _store_outcome(
    store: Store,
    feed: FeedConfig,
    by_url: dict[str, FeedOutcome],
    resting: dict[str, FeedOutcome],
    now: datetime,
) -> FeedOutcome:
    """Record one feed's fetch (validators, health) and its new entries."""
    if feed.url in resting:
        return resting[feed.url]
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
        name = source_name(feed, parsed.title)
        new = store.save_entries(outcome.feed.url, name, parsed.entries, now)
    return replace(outcome, new_entries=new, fetch=fetched)


def source_name(feed: FeedConfig, title: str | None) -> str:
    """What readers see as a source: its name in feeds.yaml, else the feed's own title."""
    return feed.name if feed.named or not title else title


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
        return fetch_feeds(config, store, now, client=client, progress=progress)


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
            everything_sent = store.sent_posts_since(datetime.min.replace(tzinfo=UTC))
            older = select.resurface(store.unsent_posts_before(since), everything_sent, now)
            posts, resurfaced = ((older,), True) if older else ((), False)
    question: QuestionChoice | None
    if keep_question is not None:
        question = QuestionChoice(keep_question, "kept: a period's question never changes")
    else:
        history = [use.question for use in store.question_uses()]
        question = select.choose_question(config.questions, history, [*posts, *more])
    return IssueDraft(period, posts, more, question, resurfaced=resurfaced)


def _source_notes(
    config: Config, outcomes: Sequence[FeedOutcome], titles: Mapping[str, str]
) -> list[SourceNote]:
    from curator.render import SourceNote

    by_url = {o.feed.url: o for o in outcomes}
    notes = []
    for feed in config.enabled_feeds:
        name = source_name(feed, titles.get(feed.url))
        outcome = by_url.get(feed.url)
        if outcome is None:
            notes.append(SourceNote(name, True))
        else:
            notes.append(SourceNote(name, outcome.ok, outcome.error or ""))
    return notes


def render_draft(
    config: Config, store: Store, draft: IssueDraft, outcomes: Sequence[FeedOutcome]
) -> RenderedIssue:
    from curator.render import render_issue

    return render_issue(
        draft,
        config.newsletter,
        sources=_source_notes(config, outcomes, store.feed_titles()),
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


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
    recipients = _distinct(options.to or config.newsletter.to)
    if not recipients:
        raise ConfigError(
            "no recipients",
            path=str(config.path),
            key="newsletter.to",
            hint="list addresses under newsletter.to, set CURATOR_TO, or pass --to ADDR",
        )
    _check_ready(config, delivering=not options.dry_run)
    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    record = not options.dry_run and not options.to
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        earlier: list[SendReport] = []
        if record:
            # A run in a new period first finishes what an earlier period still owes: a
            # recipient left pending last week gets last week's issue, not nothing.
            for owed in store.issues_with_pending(period.key, since=now - OWED_HORIZON):
                earlier.append(_complete(config, store, owed, now, sender))
        report = _send_period(
            config, store, options, period, recipients, now, client=client, sender=sender
        )
    if not earlier:
        return report
    lines = [line for r in earlier for line in r.lines] + list(report.lines)
    code = max(report.exit_code, *(r.exit_code for r in earlier))
    return replace(report, lines=tuple(lines), exit_code=code)


def _check_ready(config: Config, *, delivering: bool) -> None:
    """What would only fail after the issue is frozen is refused now, as a config error."""
    from curator.render import check_subject

    check_subject(config.newsletter, str(config.path))
    if not delivering:
        return
    delivery = config.delivery
    if delivery.method == "smtp" and delivery.smtp.username and not delivery.smtp.password:
        raise ConfigError(
            "is set but CURATOR_SMTP_PASSWORD is empty",
            path=str(config.path),
            key="delivery.smtp.username",
            hint="export CURATOR_SMTP_PASSWORD before running curator send",
        )
    if delivery.method == "postmark" and not delivery.postmark.token:
        raise ConfigError(
            "is postmark but CURATOR_POSTMARK_TOKEN is empty",
            path=str(config.path),
            key="delivery.method",
            hint="export CURATOR_POSTMARK_TOKEN with your Postmark server token",
        )


def _send_period(  # noqa: PLR0917 - the private body of run_send
    config: Config,
    store: Store,
    options: SendOptions,
    period: Period,
    recipients: Sequence[str],
    now: datetime,
    *,
    client: httpx.AsyncClient | None,
    sender: Sender | None,
) -> SendReport:
    """Send (or complete, or skip) the issue of ``period``."""
    from curator.deliver import make_sender

    record = not options.dry_run and not options.to
    frozen = store.latest_issue(period.key)
    if record and frozen is not None and not options.force:
        return _complete(config, store, frozen, now, sender)

    outcomes = fetch_feeds(config, store, now, client=client)
    lines = _feed_lines(outcomes)
    all_failed = bool(outcomes) and all(not o.ok for o in outcomes)
    keep = frozen.question if frozen is not None else None
    draft = draft_issue(config, store, now, period, keep_question=keep)
    if all_failed and (draft is None or not draft.posts or draft.resurfaced):
        # An empty-week issue now would use up the period while the sources are down.
        lines.append(
            "every feed failed and nothing is new: nothing was sent "
            "(check the network and `curator feeds check`)"
        )
        return SendReport(tuple(lines), 1, period.key, outcomes=tuple(outcomes))
    if draft is None or (not draft.posts and draft.question is None):
        why = (
            "newsletter.empty_week is skip"
            if config.newsletter.empty_week == "skip"
            else "there is no question to send and no older post to resurface"
        )
        lines.append(f"no new posts for {period.key}: nothing to send ({why})")
        return SendReport(tuple(lines), 0, period.key, outcomes=tuple(outcomes))
    rendered = render_draft(config, store, draft, outcomes)
    lines += [f"note: {note}" for note in rendered.notes]

    if options.dry_run:
        return _dry_run(config, rendered, period, recipients, now, lines, outcomes)
    if options.to:
        return _test_copy(config, rendered, period, recipients, now, lines, outcomes, sender)

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
    return _with_archive(config, store, replace(report, outcomes=tuple(outcomes)))


def _complete(
    config: Config, store: Store, frozen: StoredIssue, now: datetime, sender: Sender | None
) -> SendReport:
    """The period's issue is frozen: deliver it to whoever is still pending, or say it is done."""
    from curator.deliver import REMOVED, make_sender, still_owed

    rows = [d for d in store.deliveries(frozen.id) if d.status == "pending"]
    _, gone = still_owed([d.recipient for d in rows], config.newsletter.to)
    for recipient in gone:
        store.mark_delivery(frozen.id, recipient, "failed", REMOVED, now)
    rows = [d for d in rows if d.recipient not in gone]
    if not rows:
        # Also writes any archive page an earlier run could not.
        return _with_archive(config, store, _already_sent(store, frozen))
    pending = [d.recipient for d in rows]
    resume = [f"completing {frozen.period}: {_count(len(pending), 'recipient')} left"]
    resume += [
        f"{d.recipient} was being delivered when a run stopped at "
        f"{d.handed_over_at:%Y-%m-%d %H:%M} UTC; sending again with the same "
        "Message-ID (if the server had taken it, this is a second copy)"
        for d in rows
        if d.handed_over_at is not None
    ]
    chosen = sender or make_sender(config.delivery, config.newsletter.from_addr)
    results = _deliver(config, store, frozen, pending, chosen, now)
    return _with_archive(config, store, _delivery_report(frozen, results, resume))


def _unrecorded_messages(
    config: Config,
    rendered: RenderedIssue,
    period: str,
    recipients: Sequence[str],
    now: datetime,
) -> list[Outgoing]:
    """Messages of an issue that is not frozen (dry runs, test copies): round 0."""
    return _messages(
        config,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        period=period,
        round_=0,
        recipients=recipients,
        now=now,
    )


def _dry_run(  # noqa: PLR0917 - a private step of run_send
    config: Config,
    rendered: RenderedIssue,
    period: Period,
    recipients: Sequence[str],
    now: datetime,
    lines: list[str],
    outcomes: Sequence[FeedOutcome],
) -> SendReport:
    """Write what would be sent to the outbox as ``dry-run-*.eml``; record nothing."""
    from curator.deliver import OutboxSender

    messages = _unrecorded_messages(config, rendered, period.key, recipients, now)
    dry = [replace(m, name=f"dry-run-{m.name}") for m in messages]
    results = list(OutboxSender(config.delivery.outbox_dir).deliver(dry))
    written = tuple(config.delivery.outbox_dir / f"{m.name}.eml" for m in dry)
    lines.append(
        f"dry run: {_count(len(written), 'message')} for {period.key} written to "
        f"{config.delivery.outbox_dir}; nothing was sent or recorded"
    )
    return SendReport(tuple(lines), 0, period.key, tuple(results), tuple(outcomes), written)


def _test_copy(  # noqa: PLR0917 - a private step of run_send
    config: Config,
    rendered: RenderedIssue,
    period: Period,
    recipients: Sequence[str],
    now: datetime,
    lines: list[str],
    outcomes: Sequence[FeedOutcome],
    sender: Sender | None,
) -> SendReport:
    """Send a test copy through the configured method to the --to addresses; record nothing."""
    from curator.deliver import make_sender

    test = replace(rendered, subject=f"[test] {rendered.subject}")
    messages = _unrecorded_messages(config, test, f"test-{period.key}", recipients, now)
    chosen = sender or make_sender(config.delivery, config.newsletter.from_addr)
    try:
        results = list(chosen.deliver(messages))
    finally:
        chosen.close()
    lines += [f"test copy to {r.recipient}: {r.status} ({r.detail})" for r in results]
    lines.append("test copies are not recorded")
    code = 0 if all(r.status == "sent" for r in results) else 1
    return SendReport(tuple(lines), code, period.key, tuple(results), tuple(outcomes))


def _deliver(  # noqa: PLR0917 - a private helper called from two places
    config: Config,
    store: Store,
    issue: StoredIssue,
    recipients: Sequence[str],
    sender: Sender,
    now: datetime,
) -> list[DeliveryResult]:
    """Deliver a frozen issue, recording each recipient's outcome as soon as it is known."""
    from curator.deliver import build_messages

    messages, results = build_messages(
        config.newsletter,
        recipients,
        subject=issue.subject,
        html=issue.html,
        text=issue.text,
        period=issue.period,
        round_=issue.round,
        date=now,
    )
    for failed in results:
        store.mark_delivery(issue.id, failed.recipient, failed.status, failed.detail, now)

    def handover(handed: Sequence[str]) -> None:
        store.mark_handover(issue.id, handed, now)

    try:
        for result in sender.deliver(messages, handover):
            store.mark_delivery(issue.id, result.recipient, result.status, result.detail, now)
            results.append(result)
    except DeliveryError as exc:
        rows = store.deliveries(issue.id)
        sent = sum(1 for d in rows if d.status == "sent")
        left = sum(1 for d in rows if d.status == "pending")
        exc.message += f" ({sent} of {len(rows)} delivered so far, {left} pending for the next run)"
        raise
    finally:
        sender.close()
    return results


def _distinct(recipients: Sequence[str]) -> tuple[str, ...]:
    """The recipients in order, each mailbox once (``Ann <a@x.org>`` and ``a@x.org`` are one)."""
    from email.utils import parseaddr

    seen: dict[str, str] = {}
    for recipient in recipients:
        seen.setdefault((parseaddr(recipient)[1] or recipient).lower(), recipient)
    return tuple(seen.values())


def _delivery_report(
    issue: StoredIssue, results: Sequence[DeliveryResult], lines: Sequence[str]
) -> SendReport:
    from curator.deliver import POSSIBLE_SECOND_COPY

    out = list(lines)
    sent = [r for r in results if r.status == "sent"]
    pending = [r for r in results if r.status == "pending"]
    failed = [r for r in results if r.status == "failed"]
    out.append(
        f"sent {issue.period} ({_count(issue.post_count, 'post')}) to {len(sent)} of "
        f"{_count(len(results), 'recipient')}: {issue.subject}"
    )
    out += [f"note: {r.recipient}: {r.detail}" for r in sent if POSSIBLE_SECOND_COPY in r.detail]
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
        f"{issue.period} was already sent on {issue.built_at:%Y-%m-%d %H:%M} UTC to "
        f"{_count(sent, 'recipient')}{extra}: nothing to do (use --force to send it again)"
    )
    return SendReport((line,), 0, issue.period)


# ---------------------------------------------------------------- archive


def archived_issues(store: Store) -> list[ArchivedIssue]:
    """Every period's latest issue that reached at least one recipient."""
    latest: dict[str, ArchivedIssue] = {}
    for row in store.history():  # oldest first, so a forced resend replaces its first round
        if row.sent == 0:
            continue
        issue = row.issue
        posts = tuple(
            ArchivedPost(p.title, p.link, p.feed_name) for p in store.issue_posts(issue.id)
        )
        latest[issue.period] = ArchivedIssue(
            issue.period, issue.subject, issue.built_at, issue.html, issue.question, posts
        )
    return list(latest.values())


def write_issue_archive(config: Config, store: Store) -> list[Path]:
    """Write the archive of sent issues (pages, index, Atom feed); return the files changed."""
    from curator.archive import write_archive
    from curator.render import render_archive

    if config.archive_dir is None:
        return []
    files = render_archive(
        archived_issues(store), config.newsletter, templates_dir=config.templates_dir
    )
    return write_archive(config.archive_dir, files)


def _with_archive(config: Config, store: Store, report: SendReport) -> SendReport:
    """Write the archive after delivery is recorded. A disk error is reported and fails the
    run, but touches no delivery record: the next ``send`` writes what is missing."""
    try:
        written = write_issue_archive(config, store)
    except (ArchiveError, RenderError) as exc:
        line = f"curator: error: {exc.message}; {exc.hint or 'the issue was sent and recorded'}"
        return replace(report, lines=(*report.lines, line), exit_code=1)
    if not written:
        return report
    line = f"archive: {len(written)} files written to {config.archive_dir}"
    return replace(report, lines=(*report.lines, line))


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
    _check_ready(config, delivering=False)
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
            rendered = render_draft(config, store, draft, outcomes)
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
    reason: str | None = None


def run_questions(config: Config, now: datetime) -> list[QuestionRow]:
    """``curator questions``: the bank, when each was last used, and which comes next."""
    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    with Store.open(config.state_path) as store:
        uses = store.question_uses()
        frozen = store.latest_issue(period.key)
        history = [u.question for u in uses]
        upcoming: QuestionChoice | None
        if frozen is not None and frozen.question is not None:
            upcoming = QuestionChoice(frozen.question, f"this period's ({period.key}) question")
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
    return [
        QuestionRow(
            text=q.text,
            themes=q.themes,
            last_used=last_used.get(q.text),
            used_in_cycle=q.text in used,
            is_next=upcoming is not None and upcoming.text == q.text,
            reason=upcoming.reason if upcoming is not None and upcoming.text == q.text else None,
        )
        for q in config.questions
    ]
