"""Drafting an issue: which posts and which question this period gets (decided by the pure
:mod:`curator.select` from what the store holds), the rendered issue, and its messages.

Nothing here fetches, freezes or sends; :mod:`curator.sending` and ``preview`` do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from curator import select
from curator.models import (
    Config,
    DeliveryResult,
    FeedOutcome,
    IssueDraft,
    Period,
    PersonalCopy,
    QuestionChoice,
    RenderedIssue,
)
from curator.refresh import source_name
from curator.store import Store

if TYPE_CHECKING:
    from curator.render import SourceNote
    from curator.sender import Outgoing

# How far back already-sent posts are checked when deduplicating a new issue.
DEDUPE_HORIZON = timedelta(days=30)


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
        recent_leads=store.recent_lead_feeds(exclude_period=period.key),
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
    config: Config,
    store: Store,
    draft: IssueDraft,
    outcomes: Sequence[FeedOutcome],
    *,
    personal_marker: bool = False,
) -> RenderedIssue:
    """Render a draft; with ``personal_marker`` the shared body marks where each reader's own
    block goes (an issue that will be frozen with per-reader parts)."""
    from curator.render import render_issue

    return render_issue(
        draft,
        config.newsletter,
        sources=_source_notes(config, outcomes, store.feed_titles()),
        templates_dir=config.templates_dir,
        archive_url=config.archive_url if config.archive_dir else None,
        personal_marker=personal_marker,
    )


def build_messages(
    config: Config,
    *,
    subject: str,
    html: str,
    text: str,
    period: str,
    round_: int,
    recipients: Sequence[str],
    now: datetime,
    personal: Mapping[str, PersonalCopy] | None = None,
) -> tuple[list[Outgoing], list[DeliveryResult]]:
    """One message per recipient of an issue's subject and bodies, and a ``failed`` result
    for each recipient whose message cannot be built: one bad address never stops the others.

    ``personal`` holds each reader's own parts of a frozen issue (their block of earlier
    answers, put where the shared body marks it, and their Reply-To / List-Unsubscribe); a
    recipient without one gets the shared body with the mark removed."""
    from email.errors import MessageError

    from curator.deliver import build_message
    from curator.errors import DeliveryError
    from curator.render import insert_personal

    built: list[Outgoing] = []
    unbuildable: list[DeliveryResult] = []
    for recipient in recipients:
        copy = (personal or {}).get(recipient, PersonalCopy())
        try:
            built.append(
                build_message(
                    newsletter=config.newsletter,
                    recipient=recipient,
                    subject=subject,
                    html=insert_personal(html, copy.html, "html"),
                    text=insert_personal(text, copy.text, "text"),
                    period=period,
                    round_=round_,
                    date=now,
                    headers=copy.headers,
                )
            )
        except (DeliveryError, ValueError, IndexError, MessageError) as exc:
            why = exc.message if isinstance(exc, DeliveryError) else str(exc)
            unbuildable.append(DeliveryResult(recipient, "failed", f"message not built: {why}"))
    return built, unbuildable


def unrecorded_messages(
    config: Config,
    rendered: RenderedIssue,
    period: str,
    recipients: Sequence[str],
    now: datetime,
) -> tuple[list[Outgoing], list[DeliveryResult]]:
    """Messages of an issue that is not frozen (dry runs, test copies, preview): round 0."""
    return build_messages(
        config,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        period=period,
        round_=0,
        recipients=recipients,
        now=now,
    )
