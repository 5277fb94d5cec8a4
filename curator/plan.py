"""The send plan: what ``curator send`` must do, decided from facts alone. Pure: no clock, no
store, no network, no disk; every rule that keeps a reader from a lost or a doubled issue is
here, and :mod:`curator.sending` only carries the plan out.

The facts come in two rounds. First what the state says (this period's issue and its
deliveries, what earlier periods still owe); when that is not enough to decide, the plan's
step is :class:`Gather`: fetch the feeds and draft the issue, then ask again with
:class:`Gathered` filled in. The second answer never differs from the first in ``first``.

Steps, in the order the rules are tried::

    Complete     this period's issue is frozen and still owes someone: deliver to them
    AlreadySent  this period's issue is frozen and owes no one: nothing to do
    Gather       fetch the feeds and draft the issue, then plan again
    Skip         every feed failed and nothing is new (exit 1), or nothing to send (exit 0)
    DryRun       write the issue to the outbox as dry-run files; record nothing
    TestCopy     send a [test] copy to the --to addresses; record nothing
    Freeze       freeze the issue with a pending delivery per recipient, then deliver it

Where later rules go: a refusal that must record nothing (like :func:`refusal_in_ci`) is decided
before any fact is read; a rule about the feeds' news is a branch of ``_issue_step``; what each
reader gets of their own (a personal block, extra headers) belongs to the :class:`Freeze` step,
which names the recipients, so the executor renders each reader's part when it freezes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from curator.models import (
    DeliveryMethod,
    DeliveryRow,
    EmptyWeek,
    FeedOutcome,
    IssueDraft,
    Period,
    StoredIssue,
)
from curator.normalize import mailbox_key

# info: the story of the run (stdout); note: worth a look (stdout, "note: ");
# warning: a problem the run survived (stderr); error: a failure (stderr, as an error).
NoteLevel = Literal["info", "note", "warning", "error"]


@dataclass(frozen=True)
class Note:
    """One thing a run tells its user; the CLI words it by level and picks the stream."""

    level: NoteLevel
    text: str


@dataclass(frozen=True)
class SendOptions:
    dry_run: bool = False
    to: tuple[str, ...] = ()
    force: bool = False
    retry_failed: bool = False  # fetch feeds resting after failures now, backoff or not
    ci: bool = False  # running in CI (env CI or GITHUB_ACTIONS is true), as the CLI tells

    @property
    def records(self) -> bool:
        """Whether this send is recorded: dry runs and test copies never are."""
        return not self.dry_run and not self.to


@dataclass(frozen=True)
class Frozen:
    """A frozen issue and every delivery row it has."""

    issue: StoredIssue
    deliveries: tuple[DeliveryRow, ...]


@dataclass(frozen=True)
class Gathered:
    """What fetching the feeds and drafting the issue gave."""

    outcomes: tuple[FeedOutcome, ...]
    draft: IssueDraft | None


@dataclass(frozen=True)
class SendFacts:
    period: Period
    options: SendOptions
    recipients: tuple[str, ...]
    empty_week: EmptyWeek = "skip"
    current: Frozen | None = None  # this period's latest issue, if it was frozen
    owed: tuple[Frozen, ...] = ()  # earlier periods' issues that still owe someone
    gathered: Gathered | None = None  # None until the feeds are fetched


@dataclass(frozen=True)
class Complete:
    issue: StoredIssue
    recipients: tuple[str, ...]
    notes: tuple[Note, ...]
    # Pending recipients no longer configured: closed as failed, never sent.
    removed: tuple[str, ...] = ()


# The ledger's word for a pending recipient whose address left the configuration.
REMOVED = "no longer a recipient (left newsletter.to or unsubscribed): not sent"


@dataclass(frozen=True)
class AlreadySent:
    issue: StoredIssue
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class Gather:
    keep_question: str | None = None  # a forced resend keeps the period's question


@dataclass(frozen=True)
class Skip:
    exit_code: int
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class DryRun:
    draft: IssueDraft
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class TestCopy:
    draft: IssueDraft
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Freeze:
    draft: IssueDraft
    recipients: tuple[str, ...]


Finish = Complete | AlreadySent
Step = Complete | AlreadySent | Gather | Skip | DryRun | TestCopy | Freeze


@dataclass(frozen=True)
class SendPlan:
    """Finish what earlier periods owe (``first``), then take ``step``; ``notes`` (about the
    feeds) are told before the step's own."""

    first: tuple[Finish, ...]
    step: Step
    notes: tuple[Note, ...] = ()


def refusal_in_ci(options: SendOptions, method: DeliveryMethod) -> str | None:
    """Why this send must not run at all, or None. In CI an outbox send that would be
    recorded is refused: its files vanish with the runner while the ledger says "sent"."""
    if options.ci and method == "outbox" and options.records:
        return (
            "is outbox, and this is CI: the messages would vanish with the runner while the "
            "state records them as sent; nothing was sent or recorded"
        )
    return None


def plan_send(facts: SendFacts) -> SendPlan:
    """Decide what a send does from ``facts``; see the module docstring for the steps."""
    records = facts.options.records
    # A run in a new period first finishes what an earlier period still owes: a recipient
    # left pending last week gets last week's issue, not nothing.
    configured = facts.recipients
    first = tuple(finish(owed, configured) for owed in facts.owed) if records else ()
    current = facts.current
    if records and current is not None and not facts.options.force:
        return SendPlan(first, finish(current, configured))
    if not facts.recipients:
        text = "every recipient has unsubscribed: nothing to send (`curator readers` lists them)"
        return SendPlan(first, Skip(0, (Note("info", text),)))
    gathered = facts.gathered
    if gathered is None:
        keep = current.issue.question if current is not None else None
        return SendPlan(first, Gather(keep))
    notes = feed_notes(gathered.outcomes)
    return SendPlan(first, _issue_step(facts, gathered), notes)


def _issue_step(facts: SendFacts, gathered: Gathered) -> Step:
    period, draft, outcomes = facts.period.key, gathered.draft, gathered.outcomes
    # A feed resting after failures gave nothing this run, just like one that failed now: a
    # re-run inside the backoff must not pass for a quiet week.
    all_failed = bool(outcomes) and all(not o.ok or o.resting for o in outcomes)
    if all_failed and (draft is None or not draft.posts or draft.resurfaced):
        # An empty-week issue now would use up the period while the sources are down.
        resting = any(o.resting for o in outcomes)
        text = (
            f"every feed failed{' or is resting' if resting else ''} and nothing is new: "
            "nothing was sent (check the network and `curator feeds check`"
            f"{'; --retry-failed tries resting feeds now' if resting else ''})"
        )
        return Skip(1, (Note("warning", text),))
    if draft is None or (not draft.posts and draft.question is None):
        why = (
            "newsletter.empty_week is skip"
            if facts.empty_week == "skip"
            else "there is no question to send and no older post to resurface"
        )
        return Skip(0, (Note("info", f"no new posts for {period}: nothing to send ({why})"),))
    if facts.options.dry_run:
        return DryRun(draft, facts.recipients)
    if facts.options.to:
        return TestCopy(draft, facts.recipients)
    return Freeze(draft, facts.recipients)


def finish(frozen: Frozen, configured: Sequence[str] | None = None) -> Finish:
    """A frozen issue: deliver it to whoever is still pending, or say it is done.

    A pending recipient whose address is no longer among ``configured`` is owed nothing: it
    is closed as failed, never sent (``None``: every pending recipient is still wanted)."""
    issue = frozen.issue
    pending = [d for d in frozen.deliveries if d.status == "pending"]
    removed: tuple[str, ...] = ()
    if configured is not None:
        wanted = {mailbox_key(address) for address in configured}
        removed = tuple(d.recipient for d in pending if mailbox_key(d.recipient) not in wanted)
        pending = [d for d in pending if d.recipient not in removed]
    if not pending and removed:
        return Complete(issue, (), (), removed)
    if not pending:
        sent = sum(1 for d in frozen.deliveries if d.status == "sent")
        failed = sum(1 for d in frozen.deliveries if d.status == "failed")
        extra = f", {failed} failed for good" if failed else ""
        text = (
            f"{issue.period} was already sent on {issue.built_at:%Y-%m-%d %H:%M} UTC to "
            f"{count(sent, 'recipient')}{extra}: nothing to do (use --force to send it again)"
        )
        return AlreadySent(issue, (Note("info", text),))
    notes = [Note("info", f"completing {issue.period}: {count(len(pending), 'recipient')} left")]
    # Counted, never named: a run's output may be a public log (see sending's labels).
    in_flight = [d.handed_over_at for d in pending if d.handed_over_at is not None]
    if in_flight:
        n = len(in_flight)
        notes.append(
            Note(
                "info",
                f"{count(n, 'recipient')} {'was' if n == 1 else 'were'} being delivered when a "
                f"run stopped at {max(in_flight):%Y-%m-%d %H:%M} UTC; sending again with the "
                "same Message-ID (if the server had taken it, this is a second copy)",
            )
        )
    return Complete(issue, tuple(d.recipient for d in pending), tuple(notes), removed)


def feed_notes(outcomes: Sequence[FeedOutcome]) -> tuple[Note, ...]:
    """A warning per feed that gave nothing this run: failed now, or resting after failures
    (with when it is tried next)."""
    notes = []
    for o in outcomes:
        if not o.ok:
            notes.append(Note("warning", f"feed {o.feed.name!r} skipped: {o.error}"))
        elif o.resting:
            text = f"feed {o.feed.name!r} resting: {o.fetch.error} (--retry-failed tries it now)"
            notes.append(Note("warning", text))
    return tuple(notes)


def count(n: int, word: str) -> str:
    """``1 post``, ``2 posts``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
