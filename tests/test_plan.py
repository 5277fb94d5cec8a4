"""The send plan: every rule of `curator send`, decided from facts alone, as tables of cases.
No server, no store, no clock: the facts are built by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from curator.models import (
    DeliveryMethod,
    DeliveryRow,
    DeliveryStatus,
    EmptyWeek,
    FeedConfig,
    FeedOutcome,
    FetchResult,
    IssueDraft,
    Period,
    QuestionChoice,
    StoredIssue,
)
from curator.plan import (
    AlreadySent,
    Complete,
    DryRun,
    Freeze,
    Frozen,
    Gather,
    Gathered,
    Note,
    SendFacts,
    SendOptions,
    Skip,
    plan_send,
    refusal_in_ci,
)
from curator.plan import (
    TestCopy as CopyStep,  # not "Test...": pytest would try to collect it
)
from factories import make_post

BUILT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PERIOD = Period("2026-W10", "Week of 2 March", BUILT, datetime(2026, 3, 9, tzinfo=UTC))
READERS = ("ann@example.org", "bo@example.org")
FEED_A = FeedConfig(name="A", url="https://a.example/feed")
FEED_B = FeedConfig(name="B", url="https://b.example/feed")
QUESTION = QuestionChoice("What did you learn?", "least recently used")

RECORD = SendOptions()
FORCE = SendOptions(force=True)
DRY = SendOptions(dry_run=True)
TEST = SendOptions(to=("me@example.org",))


def issue(period: str = "2026-W10", *, id: int = 1, question: str | None = None) -> StoredIssue:
    return StoredIssue(id, period, 1, BUILT, "Subject", "<p>x</p>", "x", question, 3)


def row(recipient: str, status: DeliveryStatus, *, handed: bool = False) -> DeliveryRow:
    return DeliveryRow(
        issue_id=1,
        recipient=recipient,
        status=status,
        answer=None,
        error=None,
        updated_at=BUILT,
        handed_over_at=BUILT if handed else None,
    )


def frozen(
    *statuses: DeliveryStatus, period: str = "2026-W10", question: str | None = None
) -> Frozen:
    rows = tuple(row(f"r{i}@example.org", s) for i, s in enumerate(statuses))
    return Frozen(issue(period, question=question), rows)


def ok(feed: FeedConfig) -> FeedOutcome:
    return FeedOutcome(feed, FetchResult(feed, "ok"))


def failed(feed: FeedConfig) -> FeedOutcome:
    return FeedOutcome(feed, FetchResult(feed, "failed", error="HTTP 503"), error="HTTP 503")


def resting(feed: FeedConfig) -> FeedOutcome:
    return FeedOutcome(feed, FetchResult(feed, "skipped", error="failed 3 times in a row"))


POSTS = IssueDraft(PERIOD, (make_post(1), make_post(2)), (), QUESTION)
QUESTION_ONLY = IssueDraft(PERIOD, (), (), QUESTION)
RESURFACED = IssueDraft(PERIOD, (make_post(9),), (), QUESTION, resurfaced=True)
EMPTY = IssueDraft(PERIOD, (), (), None)


def facts(
    options: SendOptions = RECORD,
    *,
    current: Frozen | None = None,
    owed: tuple[Frozen, ...] = (),
    outcomes: tuple[FeedOutcome, ...] | None = None,
    draft: IssueDraft | None = None,
    empty_week: EmptyWeek = "skip",
    readers: tuple[str, ...] = READERS,
) -> SendFacts:
    gathered = None if outcomes is None else Gathered(outcomes, draft)
    recipients = options.to or readers
    return SendFacts(PERIOD, options, recipients, empty_week, current, owed, gathered)


# ---------------------------------------------------------------- before the feeds are fetched


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # nothing frozen yet: fetch and draft first, whatever the options
        (facts(RECORD), Gather()),
        (facts(DRY), Gather()),
        (facts(TEST), Gather()),
        # this period's issue is frozen: a recorded send finishes it instead of building again
        (facts(RECORD, current=frozen("sent", "pending")), Complete),
        (facts(RECORD, current=frozen("sent", "failed")), AlreadySent),
        # --force builds a new round, keeping the period's question
        (facts(FORCE, current=frozen("sent", question="Q?")), Gather("Q?")),
        # dry runs and test copies never finish a frozen issue: they rebuild and record nothing
        (facts(DRY, current=frozen("sent", "pending", question="Q?")), Gather("Q?")),
        (facts(TEST, current=frozen("sent")), Gather(None)),
    ],
)
def test_what_a_send_does_before_fetching(case: SendFacts, expected: object) -> None:
    """The state alone decides whether to finish a frozen issue or to fetch and build one."""
    step = plan_send(case).step
    if isinstance(expected, type):
        assert isinstance(step, expected)
    else:
        assert step == expected


def test_completing_names_only_the_pending_and_those_handed_over() -> None:
    """A frozen issue is delivered to its pending recipients only; one in flight when a run
    died is named, since it may get a second copy."""
    rows = (
        row("ann@example.org", "sent"),
        row("bo@example.org", "pending", handed=True),
        row("cy@example.org", "pending"),
        row("di@example.org", "failed"),
    )
    everyone = tuple(r.recipient for r in rows)
    step = plan_send(facts(current=Frozen(issue(), rows), readers=everyone)).step
    assert isinstance(step, Complete)
    assert step.recipients == ("bo@example.org", "cy@example.org")
    assert step.removed == ()
    assert step.notes[0] == Note("info", "completing 2026-W10: 2 recipients left")
    assert len(step.notes) == 2
    assert step.notes[1].text.startswith("1 recipient was being delivered")
    assert "@" not in step.notes[1].text


@pytest.mark.parametrize(
    ("statuses", "said"),
    [
        (("sent",), "to 1 recipient: nothing to do"),
        (("sent", "sent"), "to 2 recipients: nothing to do"),
        (("sent", "failed"), "to 1 recipient, 1 failed for good: nothing to do"),
        ((), "to 0 recipients: nothing to do"),
    ],
)
def test_an_issue_owing_no_one_is_already_sent(
    statuses: tuple[DeliveryStatus, ...], said: str
) -> None:
    """With no pending row, a second send in the period delivers nothing and says so."""
    step = plan_send(facts(current=frozen(*statuses))).step
    assert isinstance(step, AlreadySent)
    assert said in step.notes[0].text
    assert "--force" in step.notes[0].text


@pytest.mark.parametrize(
    ("options", "finished"),
    [(RECORD, 2), (FORCE, 2), (DRY, 0), (TEST, 0)],
)
def test_earlier_periods_are_finished_first_only_by_recorded_sends(
    options: SendOptions, finished: int
) -> None:
    """What earlier periods owe is delivered before this period's issue; never by a dry run
    or a test copy, which record nothing."""
    owed = (frozen("pending", period="2026-W08"), frozen("sent", "pending", period="2026-W09"))
    plan = plan_send(facts(options, owed=owed))
    assert len(plan.first) == finished
    assert all(isinstance(step, Complete) for step in plan.first)
    assert [s.issue.period for s in plan.first] == ["2026-W08", "2026-W09"][:finished]


def test_the_plan_repeats_first_when_asked_again_with_the_feeds() -> None:
    """Asking again after gathering gives the same ``first``, so the executor may trust
    either answer."""
    before = facts(owed=(frozen("pending", period="2026-W09"),))
    after = replace(before, gathered=Gathered((ok(FEED_A),), POSTS))
    assert plan_send(before).first == plan_send(after).first


# ---------------------------------------------------------------- after the feeds are fetched


@pytest.mark.parametrize(
    ("outcomes", "draft", "empty_week", "options", "expected", "code"),
    [
        # every feed failed and nothing is new: exit 1, never an empty issue
        ((failed(FEED_A), failed(FEED_B)), None, "skip", RECORD, Skip, 1),
        ((failed(FEED_A),), QUESTION_ONLY, "question", RECORD, Skip, 1),
        ((failed(FEED_A),), RESURFACED, "archive", RECORD, Skip, 1),
        ((failed(FEED_A),), None, "skip", DRY, Skip, 1),
        # every feed failed but posts fetched earlier are new: they still go out
        ((failed(FEED_A), failed(FEED_B)), POSTS, "skip", RECORD, Freeze, None),
        # some feeds fine, nothing new: a quiet week, exit 0
        ((ok(FEED_A), failed(FEED_B)), None, "skip", RECORD, Skip, 0),
        ((ok(FEED_A),), EMPTY, "question", RECORD, Skip, 0),
        # no feeds at all is not "every feed failed"
        ((), None, "skip", RECORD, Skip, 0),
        # a feed resting after failures gave nothing, like a failed one: a re-run inside the
        # backoff is not a quiet week
        ((resting(FEED_A),), None, "skip", RECORD, Skip, 1),
        ((resting(FEED_A), failed(FEED_B)), QUESTION_ONLY, "question", RECORD, Skip, 1),
        ((resting(FEED_A), ok(FEED_B)), None, "skip", RECORD, Skip, 0),
        ((resting(FEED_A),), POSTS, "skip", RECORD, Freeze, None),
        # something to send
        ((ok(FEED_A),), POSTS, "skip", RECORD, Freeze, None),
        ((ok(FEED_A),), QUESTION_ONLY, "question", RECORD, Freeze, None),
        ((ok(FEED_A),), RESURFACED, "archive", RECORD, Freeze, None),
        ((ok(FEED_A),), POSTS, "skip", FORCE, Freeze, None),
        ((ok(FEED_A),), POSTS, "skip", DRY, DryRun, None),
        ((ok(FEED_A),), POSTS, "skip", TEST, CopyStep, None),
        # --dry-run wins over --to: nothing leaves the machine
        ((ok(FEED_A),), POSTS, "skip", SendOptions(dry_run=True, to=("me@x.org",)), DryRun, None),
    ],
)
def test_what_a_send_does_with_the_feeds_news(  # noqa: PLR0917 - one table row
    outcomes: tuple[FeedOutcome, ...],
    draft: IssueDraft | None,
    empty_week: EmptyWeek,
    options: SendOptions,
    expected: type,
    code: int | None,
) -> None:
    """Skip (and how), dry run, test copy or freeze, from the feeds' outcomes and the draft."""
    step = plan_send(facts(options, outcomes=outcomes, draft=draft, empty_week=empty_week)).step
    assert isinstance(step, expected)
    if isinstance(step, Skip):
        assert step.exit_code == code


@pytest.mark.parametrize(
    ("empty_week", "why"),
    [
        ("skip", "newsletter.empty_week is skip"),
        ("question", "there is no question to send and no older post to resurface"),
        ("archive", "there is no question to send and no older post to resurface"),
    ],
)
def test_a_quiet_week_says_why_nothing_is_sent(empty_week: EmptyWeek, why: str) -> None:
    """The skip note names the period and the setting that made it skip."""
    draft = None if empty_week == "skip" else EMPTY
    step = plan_send(facts(outcomes=(ok(FEED_A),), draft=draft, empty_week=empty_week)).step
    assert step == Skip(0, (Note("info", f"no new posts for 2026-W10: nothing to send ({why})"),))


def test_every_failed_feed_is_a_warning_before_the_step() -> None:
    """Each failed feed is named with its error, at warning level; fine feeds are not."""
    plan = plan_send(facts(outcomes=(ok(FEED_A), failed(FEED_B)), draft=POSTS))
    assert plan.notes == (Note("warning", "feed 'B' skipped: HTTP 503"),)


def test_all_failed_is_a_warning_with_exit_1() -> None:
    """The all-failed skip tells where to look, on the problem stream."""
    step = plan_send(facts(outcomes=(failed(FEED_A),), draft=None)).step
    assert isinstance(step, Skip)
    assert step.notes[0].level == "warning"
    assert "curator feeds check" in step.notes[0].text


@pytest.mark.parametrize(
    ("options", "recipients"),
    [(RECORD, READERS), (TEST, ("me@example.org",)), (DRY, READERS)],
)
def test_each_step_carries_its_recipients(
    options: SendOptions, recipients: tuple[str, ...]
) -> None:
    """A freeze and a dry run go to the readers; a test copy only to the --to addresses."""
    step = plan_send(facts(options, outcomes=(ok(FEED_A),), draft=POSTS)).step
    assert isinstance(step, Freeze | DryRun | CopyStep)
    assert step.recipients == recipients
    assert step.draft is POSTS


def test_a_resting_feed_is_named_with_when_it_is_tried_next() -> None:
    """A feed left alone by its backoff is a warning naming it, its next try and the option
    that tries it now; the all-failed skip says so too."""
    plan = plan_send(facts(outcomes=(resting(FEED_A),), draft=None))
    assert plan.notes == (
        Note(
            "warning",
            "feed 'A' resting: failed 3 times in a row (--retry-failed tries it now)",
        ),
    )
    assert isinstance(plan.step, Skip)
    assert "every feed failed or is resting" in plan.step.notes[0].text
    assert "--retry-failed" in plan.step.notes[0].text


@pytest.mark.parametrize(
    ("options", "method", "refused"),
    [
        (SendOptions(ci=True), "outbox", True),
        (SendOptions(ci=True, force=True), "outbox", True),
        (SendOptions(ci=True, dry_run=True), "outbox", False),
        (SendOptions(ci=True, to=("me@example.org",)), "outbox", False),
        (SendOptions(ci=True), "smtp", False),
        (SendOptions(ci=True), "postmark", False),
        (SendOptions(), "outbox", False),
    ],
)
def test_ci_refuses_only_a_recorded_outbox_send(
    options: SendOptions, method: DeliveryMethod, refused: bool
) -> None:
    """In CI, an outbox send that would be recorded is refused; dry runs, test copies and
    real mail are not; outside CI nothing is."""
    reason = refusal_in_ci(options, method)
    assert (reason is not None) == refused
    if reason is not None:
        assert "nothing was sent or recorded" in reason


@pytest.mark.parametrize(
    ("readers", "owed", "removed"),
    [
        # still configured (a display name and another case are the same mailbox)
        (("Bo <BO@example.org>", "cy@example.org"), ("bo@example.org", "cy@example.org"), ()),
        # cy left newsletter.to (or unsubscribed): closed, never sent
        (("bo@example.org",), ("bo@example.org",), ("cy@example.org",)),
        # nobody pending is wanted any more
        (("ann@example.org",), (), ("bo@example.org", "cy@example.org")),
    ],
)
def test_a_pending_recipient_no_longer_configured_is_closed_not_sent(
    readers: tuple[str, ...], owed: tuple[str, ...], removed: tuple[str, ...]
) -> None:
    """Completing a frozen issue owes nothing to an address that left the recipients."""
    rows = (
        row("ann@example.org", "sent"),
        row("bo@example.org", "pending"),
        row("cy@example.org", "pending"),
    )
    step = plan_send(facts(current=Frozen(issue(), rows), readers=readers)).step
    assert isinstance(step, Complete)
    assert (step.recipients, step.removed) == (owed, removed)


def test_no_reader_left_skips_before_fetching() -> None:
    """When every recipient has unsubscribed, nothing is fetched or built: a Skip, exit 0;
    what a frozen issue still owed them is closed, not sent."""
    plan = plan_send(facts(readers=()))
    assert isinstance(plan.step, Skip) and plan.step.exit_code == 0
    assert "every recipient has unsubscribed" in plan.step.notes[0].text
    rows = (row("ann@example.org", "pending"),)
    step = plan_send(facts(current=Frozen(issue(), rows), readers=())).step
    assert isinstance(step, Complete)
    assert (step.recipients, step.removed) == ((), ("ann@example.org",))
