"""``curator send``: gather the facts, ask :func:`curator.plan.plan_send` what to do, do it.

This is the executor of the send plan and nothing more: it reads the state, fetches and drafts
when the plan asks, freezes, delivers, records each recipient's outcome as soon as it is known,
and writes the archive. Every decision is the plan's. The clock, the HTTP client and the
sender are passed in, so tests use real local servers or fakes.

Longer than the ~450 lines a module should keep to, on purpose: each step of the plan (complete,
skip, dry run, test copy, freeze) has its executor here, beside the report they share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING

from curator import select
from curator.archive import write_issue_archive
from curator.drafting import build_messages, draft_issue, render_draft, unrecorded_messages
from curator.errors import ArchiveError, ConfigError, CuratorError, DeliveryError, RenderError
from curator.models import (
    Config,
    DeliveryConfig,
    DeliveryResult,
    FeedOutcome,
    Period,
    RenderedIssue,
    StoredIssue,
)
from curator.normalize import mailbox_key
from curator.plan import (
    REMOVED,
    AlreadySent,
    Complete,
    DryRun,
    Finish,
    Freeze,
    Frozen,
    Gather,
    Gathered,
    Note,
    SendFacts,
    SendOptions,
    SendPlan,
    Skip,
    TestCopy,
    count,
    plan_send,
    refusal_in_ci,
)
from curator.refresh import Progress, fetch_feeds
from curator.render import has_personal_place
from curator.replies import active_recipients
from curator.store import RunLock, Store

if TYPE_CHECKING:
    import httpx

    from curator.sender import Sender

# How long a recipient left pending by an earlier period's issue is still sent that issue.
OWED_HORIZON = timedelta(days=30)

__all__ = ["OWED_HORIZON", "Note", "SendOptions", "SendReport", "make_sender", "run_send"]


@dataclass(frozen=True)
class IssueTally:
    """One frozen issue this run delivered or found done: counts only, never addresses."""

    period: str
    round: int
    posts: int
    sent: int
    failed: int
    pending: int
    already_sent: bool = False  # nothing was delivered now: it had gone out before


@dataclass(frozen=True)
class SendReport:
    """What a send did, as notes for a person, and the exit code it deserves."""

    notes: tuple[Note, ...]
    exit_code: int = 0
    period: str | None = None
    results: tuple[DeliveryResult, ...] = ()
    outcomes: tuple[FeedOutcome, ...] = ()
    written: tuple[Path, ...] = field(default=())
    issues: tuple[IssueTally, ...] = ()  # every frozen issue this run finished or delivered

    @property
    def lines(self) -> tuple[str, ...]:
        """The notes' texts, unworded: for callers that only want to read them."""
        return tuple(note.text for note in self.notes)


def make_sender(config: DeliveryConfig, from_addr: str) -> Sender:
    """The sender that delivery.method names, with every secret it knows redacted."""
    from curator.deliver import OutboxSender, SmtpSender
    from curator.redact import RedactingSender

    if config.method == "smtp":
        smtp = config.smtp
        return RedactingSender(SmtpSender(smtp, from_addr), [smtp.password or ""])
    if config.method == "postmark":
        from curator.postmark import PostmarkSender

        return RedactingSender(PostmarkSender(config.postmark), [config.postmark.token or ""])
    return OutboxSender(config.outbox_dir)


def run_send(
    config: Config,
    options: SendOptions,
    now: datetime,
    *,
    client: httpx.AsyncClient | None = None,
    sender: Sender | None = None,
    progress: Progress | None = None,
) -> SendReport:
    """``curator send``: fetch, build this period's issue, freeze it, deliver it, record it.

    ``progress`` is called once per feed as its fetch ends (the CLI draws a bar with it)."""
    recipients = distinct(options.to or config.newsletter.to)
    if not recipients:
        raise ConfigError(
            "no recipients",
            path=str(config.path),
            key="newsletter.to",
            hint="list addresses under newsletter.to, set CURATOR_TO, or pass --to ADDR",
        )
    refusal = refusal_in_ci(options, config.delivery.method)
    if refusal is not None:
        raise ConfigError(
            refusal,
            path=str(config.path),
            key="delivery.method",
            hint="set delivery.method to smtp or postmark (with its secret) for the job, "
            "or run with --dry-run or --to ADDR",
        )
    check_ready(config, delivering=not options.dry_run)
    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        run = _Run(config, store, now, sender)
        reports = []
        if config.replies is not None and options.records:
            # Replies first: an answer given since the last issue is handed back in this one,
            # and a reader who unsubscribed by reply gets nothing more from now on.
            reports.append(_collect(config, store, now))
        if not options.to:
            # An unsubscribe holds whatever the config says now (replies switched off, a dry
            # run): only an explicit --to test copy reaches such an address.
            wanted = active_recipients(recipients, store)
            if len(wanted) < len(recipients):
                left = count(len(recipients) - len(wanted), "reader")
                text = f"{left} unsubscribed, left out (`curator readers` lists who)"
                reports.append(SendReport((Note("info", text),)))
            recipients = wanted
        facts = _facts(config, store, options, period, recipients, now)
        plan = plan_send(facts)
        reports += [run.finish(step) for step in plan.first]
        gathered = None
        if isinstance(plan.step, Gather):
            outcomes = fetch_feeds(
                config,
                store,
                now,
                client=client,
                honour_backoff=not options.retry_failed,
                progress=progress,
            )
            draft = draft_issue(config, store, now, period, keep_question=plan.step.keep_question)
            gathered = Gathered(tuple(outcomes), draft)
            # Asked again with the feeds' news; what ``first`` said is already done.
            plan = plan_send(replace(facts, gathered=gathered))
        reports.append(run.step(plan, period, gathered))
    return _combined(reports)


def _facts(  # noqa: PLR0917 - the private fact-reader of run_send
    config: Config,
    store: Store,
    options: SendOptions,
    period: Period,
    recipients: tuple[str, ...],
    now: datetime,
) -> SendFacts:
    """What the state says about this period and what earlier periods owe."""

    def frozen(issue: StoredIssue) -> Frozen:
        return Frozen(issue, tuple(store.deliveries(issue.id)))

    current = store.latest_issue(period.key)
    owed: tuple[Frozen, ...] = ()
    if options.records:
        owed = tuple(
            frozen(issue)
            for issue in store.issues_with_pending(period.key, since=now - OWED_HORIZON)
        )
    return SendFacts(
        period=period,
        options=options,
        recipients=recipients,
        empty_week=config.newsletter.empty_week,
        current=frozen(current) if current is not None else None,
        owed=owed,
    )


def _collect(config: Config, store: Store, now: datetime) -> SendReport:
    """Collect readers' replies; a mailbox that cannot be read is a warning, never a stop."""
    from curator.replies import collect_replies

    try:
        collected = collect_replies(config, store, now)
    except CuratorError as exc:
        # The issue still goes out; what was not collected now is collected next time.
        text = f"replies could not be collected: {exc.message}; the issue goes out without them"
        return SendReport((Note("warning", text),))
    problems = {f"replies: {p.message}" for p in collected.problems}
    notes = tuple(
        Note("warning" if line in problems else "info", line) for line in collected.lines()
    )
    return SendReport(notes)


def _combined(reports: Sequence[SendReport]) -> SendReport:
    """The reports of one run in order: the last one's period and results, every note."""
    last = reports[-1]
    if len(reports) == 1:
        return last
    notes = tuple(note for r in reports for note in r.notes)
    issues = tuple(issue for r in reports for issue in r.issues)
    code = max(r.exit_code for r in reports)
    return replace(last, notes=notes, exit_code=code, issues=issues)


def check_ready(config: Config, *, delivering: bool) -> None:
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


def distinct(recipients: Sequence[str]) -> tuple[str, ...]:
    """The recipients in order, each mailbox once (``Ann <a@x.org>`` and ``a@x.org`` are one)."""
    seen: dict[str, str] = {}
    for recipient in recipients:
        seen.setdefault(mailbox_key(recipient), recipient)
    return tuple(seen.values())


class _Run:
    """Carries out the steps of one send's plan against one store."""

    def __init__(self, config: Config, store: Store, now: datetime, sender: Sender | None) -> None:
        self.config = config
        self.store = store
        self.now = now
        self.sender = sender

    def _sender(self) -> Sender:
        # Chosen here, in the wiring, so no backend module needs to know the others.
        return self.sender or make_sender(self.config.delivery, self.config.newsletter.from_addr)

    def finish(self, step: Finish) -> SendReport:
        """Deliver a frozen issue to whoever it still owes, or say it is done."""
        if isinstance(step, AlreadySent):
            tally = self._tally(step.issue, already_sent=True)
            # Also writes any archive page an earlier run could not.
            report = SendReport(step.notes, 0, step.issue.period, issues=(tally,))
            return self._with_archive(report)
        for recipient in step.removed:
            self.store.mark_delivery(step.issue.id, recipient, "failed", REMOVED, self.now)
        results = self._deliver(step.issue, step.recipients) if step.recipients else []
        notes = step.notes
        if step.removed:
            who = count(len(step.removed), "recipient")
            text = f"{step.issue.period}: {who} no longer wanted it (left `to` or unsubscribed)"
            notes = (*notes, Note("info", text))
        report = delivery_report(step.issue, results, notes, self._labels(step.recipients))
        return self._with_archive(replace(report, issues=(self._tally(step.issue),)))

    def _tally(self, issue: StoredIssue, *, already_sent: bool = False) -> IssueTally:
        """The ledger's counts for ``issue``, as they stand now."""
        statuses = [d.status for d in self.store.deliveries(issue.id)]
        return IssueTally(
            issue.period,
            issue.round,
            issue.post_count,
            sent=statuses.count("sent"),
            failed=statuses.count("failed"),
            pending=statuses.count("pending"),
            already_sent=already_sent,
        )

    def step(self, plan: SendPlan, period: Period, gathered: Gathered | None) -> SendReport:
        """Carry out the plan's step for this period."""
        step = plan.step
        if isinstance(step, Complete | AlreadySent):
            return self.finish(step)
        outcomes = gathered.outcomes if gathered is not None else ()
        notes = list(plan.notes)
        if isinstance(step, Skip):
            return SendReport((*notes, *step.notes), step.exit_code, period.key, outcomes=outcomes)
        if isinstance(step, Gather) or gathered is None:
            raise AssertionError("a plan made with gathered facts never asks to gather")
        # With replies, every copy invites a reply; only a frozen issue has each reader's own
        # block (a dry run or test copy shows the place empty).
        personal = self.config.replies is not None
        rendered = render_draft(
            self.config, self.store, step.draft, outcomes, personal_marker=personal
        )
        notes += [Note("note", text) for text in rendered.notes]
        if personal and isinstance(step, Freeze) and not has_personal_place(rendered):
            text = (
                "this issue has no place for readers' own earlier answers (no question, or an "
                "issue template without the personal marker): they are not shown this time"
            )
            notes.append(Note("warning", text))
        if isinstance(step, DryRun):
            report = self._dry_run(step, rendered, period)
        elif isinstance(step, TestCopy):
            report = self._test_copy(step, rendered, period)
        else:
            report = self._freeze(step, rendered)
        return replace(report, notes=(*notes, *report.notes), outcomes=outcomes)

    def _dry_run(self, step: DryRun, rendered: RenderedIssue, period: Period) -> SendReport:
        """Write what would be sent to the outbox as ``dry-run-*.eml``; record nothing."""
        from curator.deliver import OutboxSender

        outbox = self.config.delivery.outbox_dir
        messages, unbuilt = unrecorded_messages(
            self.config, rendered, period.key, step.recipients, self.now
        )
        dry = [replace(m, name=f"dry-run-{m.name}") for m in messages]
        results = (*unbuilt, *OutboxSender(outbox).deliver(dry))
        written = tuple(outbox / f"{m.name}.eml" for m in dry)
        text = (
            f"dry run: {count(len(written), 'message')} for {period.key} written to "
            f"{outbox}; nothing was sent or recorded"
        )
        return SendReport((Note("info", text),), 0, period.key, results, written=written)

    def _test_copy(self, step: TestCopy, rendered: RenderedIssue, period: Period) -> SendReport:
        """Send a test copy through the configured method to the --to addresses; record
        nothing."""
        test = replace(rendered, subject=f"[test] {rendered.subject}")
        messages, unbuilt = unrecorded_messages(
            self.config, test, f"test-{period.key}", step.recipients, self.now
        )
        chosen = self._sender()
        try:
            results = (*unbuilt, *chosen.deliver(messages))
        finally:
            chosen.close()
        labels = {r: f"test address {n}" for n, r in enumerate(step.recipients, 1)}
        notes = [
            Note("info", f"test copy to {labels[r.recipient]}: {r.status} ({private(r, labels)})")
            for r in results
        ]
        notes.append(Note("info", "test copies are not recorded"))
        code = 0 if all(r.status == "sent" for r in results) else 1
        return SendReport(tuple(notes), code, period.key, results)

    def _freeze(self, step: Freeze, rendered: RenderedIssue) -> SendReport:
        """Freeze the issue (posts, question, a pending row per recipient), then deliver it."""
        draft, store = step.draft, self.store
        # One transaction: the issue, a pending row per recipient and each reader's own parts
        # (rendered now, so a resend after a crash sends exactly the same copy).
        with store.transaction():
            issue = store.freeze_issue(
                period=draft.period.key,
                built_at=self.now,
                subject=rendered.subject,
                html=rendered.html,
                text=rendered.text,
                question=draft.question.text if draft.question else None,
                question_reason=draft.question.reason if draft.question else None,
                post_ids=[p.id for p in (*draft.posts, *draft.more)],
                recipients=step.recipients,
            )
            if self.config.replies is not None:
                from curator.replies import personal_copies

                copies = personal_copies(
                    self.config,
                    store,
                    issue_id=issue.id,
                    period=issue.period,
                    issue_date=issue.built_at,
                    recipients=step.recipients,
                    now=self.now,
                )
                store.save_personal_copies(issue.id, copies)
        results = self._deliver(issue, step.recipients)
        report = delivery_report(issue, results, (), self._labels(step.recipients))
        return self._with_archive(replace(report, issues=(self._tally(issue),)))

    def _labels(self, recipients: Sequence[str]) -> dict[str, str]:
        """What the run's output calls each recipient: ``reader #N``, the number `curator
        readers` shows beside the address. A send's output may be a public log (a GitHub
        Actions run), so it never names an address."""
        ids = self.store.reader_ids(recipients, self.now)
        return {recipient: f"reader #{number}" for recipient, number in ids.items()}

    def _deliver(self, issue: StoredIssue, recipients: Sequence[str]) -> list[DeliveryResult]:
        """Deliver a frozen issue, recording each recipient's outcome as soon as it is known."""
        store, now = self.store, self.now
        messages, results = build_messages(
            self.config,
            subject=issue.subject,
            html=issue.html,
            text=issue.text,
            period=issue.period,
            round_=issue.round,
            recipients=recipients,
            now=now,
            personal=store.personal_copies(issue.id),
        )
        for unbuilt in results:
            store.mark_delivery(issue.id, unbuilt.recipient, unbuilt.status, unbuilt.detail, now)

        def handover(handed: Sequence[str]) -> None:
            store.mark_handover(issue.id, handed, now)

        sender = self._sender()
        try:
            for result in sender.deliver(messages, handover):
                store.mark_delivery(issue.id, result.recipient, result.status, result.detail, now)
                results.append(result)
        except DeliveryError as exc:
            rows = store.deliveries(issue.id)
            sent = sum(1 for d in rows if d.status == "sent")
            left = sum(1 for d in rows if d.status == "pending")
            so_far = f"{sent} of {len(rows)} delivered so far, {left} pending for the next run"
            message, hint = without_addresses(exc.message, recipients), exc.hint
            error = DeliveryError(f"{message} ({so_far})", hint=without_addresses(hint, recipients))
            if message == exc.message:
                raise error from exc
            # The server quoted a reader's address: the chain (shown by --debug) would repeat it.
            raise error from None
        finally:
            sender.close()
        return results

    def _with_archive(self, report: SendReport) -> SendReport:
        """Write the archive after delivery is recorded. A disk error is reported and fails
        the run, but touches no delivery record: the next ``send`` writes what is missing."""
        try:
            written = write_issue_archive(self.config, self.store)
        except (ArchiveError, RenderError) as exc:
            text = f"{exc.message}; {exc.hint or 'the issue was sent and recorded'}"
            return replace(report, notes=(*report.notes, Note("error", text)), exit_code=1)
        if not written:
            return report
        text = f"archive: {len(written)} files written to {self.config.archive_dir}"
        return replace(report, notes=(*report.notes, Note("info", text)))


def without_addresses(text: str, recipients: Sequence[str]) -> str:
    """``text`` with every recipient's address (as a server may quote it) replaced by "a
    recipient": an error's words may reach a public log."""
    for recipient in recipients:
        address = parseaddr(recipient)[1] or recipient
        text = re.sub(re.escape(address), "a recipient", text, flags=re.IGNORECASE)
    return text


def private(result: DeliveryResult, labels: Mapping[str, str]) -> str:
    """A result's detail with the recipient's address (a server may quote it) replaced by its
    label."""
    address = parseaddr(result.recipient)[1] or result.recipient
    label = labels.get(result.recipient, "the recipient")
    return re.sub(re.escape(address), label, result.detail, flags=re.IGNORECASE)


def delivery_report(
    issue: StoredIssue,
    results: Sequence[DeliveryResult],
    notes: Sequence[Note],
    labels: Mapping[str, str],
) -> SendReport:
    """What delivering a frozen issue did: a line of counts, then each recipient worth a word,
    by its label (``reader #N``), never by address."""
    from curator.deliver import POSSIBLE_SECOND_COPY

    out = list(notes)
    sent = [r for r in results if r.status == "sent"]
    pending = [r for r in results if r.status == "pending"]
    failed = [r for r in results if r.status == "failed"]
    out.append(
        Note(
            "info",
            f"sent {issue.period} ({count(issue.post_count, 'post')}) to {len(sent)} of "
            f"{count(len(results), 'recipient')}: {issue.subject}",
        )
    )

    def who(r: DeliveryResult) -> str:
        return labels.get(r.recipient, "a recipient")

    out += [
        Note("note", f"{who(r)}: {private(r, labels)}")
        for r in sent
        if POSSIBLE_SECOND_COPY in r.detail
    ]
    out += [
        Note("warning", f"will retry {who(r)} on the next run: {private(r, labels)}")
        for r in pending
    ]
    out += [Note("warning", f"failed for good: {who(r)}: {private(r, labels)}") for r in failed]
    code = 0 if not pending and not failed else 1
    return SendReport(tuple(out), code, issue.period, tuple(results))
