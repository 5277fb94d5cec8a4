"""What goes into an issue and which question it asks: tables of pure-function cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from curator import select
from curator.models import Post, Question
from factories import make_post as post

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
LAST_ISSUE = NOW - timedelta(days=7)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def ids(posts: tuple[Post, ...]) -> list[int]:
    return [p.id for p in posts]


# ---------------------------------------------------------------- the window

WINDOW_CASES = [
    # (name, posts, previous issue built at, expected ids)
    (
        "first issue reaches back lookback_days only",
        [post(1, "Fresh one", published=ago(2)), post(2, "Last month", published=ago(30))],
        None,
        [1],
    ),
    (
        "first issue keeps a post exactly at the edge out",
        [post(1, "On the edge", published=ago(7)), post(2, "Inside", published=ago(6.9))],
        None,
        [2],
    ),
    (
        "week two takes only posts after the previous issue",
        [post(1, "Before it", published=ago(7.5)), post(2, "After it", published=ago(6))],
        LAST_ISSUE,
        [2],
    ),
    (
        "a future date counts as now, not as never",
        [post(1, "From tomorrow", published=NOW + timedelta(days=1))],
        LAST_ISSUE,
        [1],
    ),
    (
        "an undated post counts from when it was first seen",
        [
            post(1, "Seen yesterday", first_seen=ago(1)),
            post(2, "Seen long ago", first_seen=ago(40)),
        ],
        LAST_ISSUE,
        [1],
    ),
    ("an empty week selects nothing", [post(1, "Old", published=ago(20))], LAST_ISSUE, []),
]


@pytest.mark.parametrize(
    ("posts", "previous", "expected"),
    [case[1:] for case in WINDOW_CASES],
    ids=[case[0] for case in WINDOW_CASES],
)
def test_window_of_an_issue(
    posts: list[Post], previous: datetime | None, expected: list[int]
) -> None:
    """The window runs from the previous issue (or lookback_days) up to now, per the contract."""
    since = select.window_start(NOW, previous, lookback_days=7)
    selection = select.posts_for_issue(posts, now=NOW, since=since)
    assert sorted(ids(selection.posts)) == expected


# ---------------------------------------------------------------- one copy of each story

DEDUPE_CASES = [
    (
        "same link through two feeds",
        [
            post(1, "Why teams fail", feed="a", link="https://x.example/why", published=ago(2)),
            post(2, "Why teams fail", feed="b", link="https://x.example/why", published=ago(1)),
        ],
        [],
        [1],
    ),
    (
        "same page over http, www and tracking parameters",
        [
            post(1, "One", feed="a", link="https://www.x.example/p/", published=ago(2)),
            post(2, "Two", feed="b", link="http://x.example/p?utm_source=rss", published=ago(1)),
        ],
        [],
        [1],
    ),
    (
        "canonical URL matches a sent post's link",
        [
            post(
                2,
                "Moved",
                link="https://feedproxy.example/~r/9",
                canonical="https://x.example/p",
                published=ago(1),
            )
        ],
        [post(1, "Original", link="https://x.example/p", published=ago(9))],
        [],
    ),
    (
        "changed id, same link as a post already sent",
        [post(7, "Lead from the middle", link="https://a.example/1", published=ago(10))],
        [post(1, "Lead from the middle", link="https://a.example/1", published=ago(10))],
        [],
    ),
    (
        "same title on two feeds within a few days",
        [
            post(1, "The quiet cost of saying yes", feed="a", published=ago(3)),
            post(2, "The Quiet Cost of Saying Yes!", feed="b", published=ago(1)),
        ],
        [],
        [1],
    ),
    (
        "same title weeks apart is a different post",
        [post(2, "Monthly reading list", feed="a", published=ago(1))],
        [post(1, "Monthly reading list", feed="a", published=ago(31))],
        [2],
    ),
    (
        "short common titles never match each other",
        [
            post(1, "Links", feed="a", published=ago(2)),
            post(2, "Links", feed="b", published=ago(1)),
        ],
        [],
        [1, 2],
    ),
]


@pytest.mark.parametrize(
    ("posts", "sent", "expected"),
    [case[1:] for case in DEDUPE_CASES],
    ids=[case[0] for case in DEDUPE_CASES],
)
def test_same_story_appears_once(posts: list[Post], sent: list[Post], expected: list[int]) -> None:
    """A story reached through two feeds or under a changed id is shown once, never again."""
    selection = select.posts_for_issue(posts, now=NOW, since=ago(14), already_sent=sent)
    assert sorted(ids(selection.posts)) == expected


# ---------------------------------------------------------------- caps, layout, budget


def test_caps_keep_the_newest_per_feed_and_overall() -> None:
    """max_posts_per_feed keeps each feed's newest; max_posts keeps the newest overall."""
    posts = [post(i, f"A post number {i}", feed="a", published=ago(i / 10)) for i in range(1, 6)]
    posts += [post(i, f"B post number {i}", feed="b", published=ago(i / 10)) for i in (11, 12)]
    selection = select.posts_for_issue(
        posts, now=NOW, since=ago(7), max_posts=4, max_posts_per_feed=3
    )
    assert sorted(ids(selection.posts)) == [1, 2, 3, 11]
    assert selection.more == ()  # capped posts are left out, not moved to the link list


def test_a_feed_cap_can_be_lower_than_the_newsletter_cap() -> None:
    """A feed's own max_posts narrows the newsletter-wide per-feed cap."""
    posts = [post(i, f"A post number {i}", feed="a", published=ago(i)) for i in range(1, 4)]
    selection = select.posts_for_issue(
        posts, now=NOW, since=ago(7), feed_caps={"https://a.example/feed": 1}
    )
    assert ids(selection.posts) == [1]


def test_layout_is_lead_then_sources_in_feeds_yaml_order() -> None:
    """The newest post leads; the rest follow grouped by source in feeds.yaml order."""
    posts = [
        post(1, "Older from b", feed="b", published=ago(3)),
        post(2, "Newest of all", feed="b", published=ago(0.5)),
        post(3, "Older from a", feed="a", published=ago(4)),
        post(4, "Newer from a", feed="a", published=ago(2)),
        post(5, "From c", feed="c", published=ago(1)),
    ]
    order = ["https://a.example/feed", "https://b.example/feed", "https://c.example/feed"]
    selection = select.posts_for_issue(posts, now=NOW, since=ago(7), feed_order=order)
    assert ids(selection.posts) == [2, 4, 3, 1, 5]


BUDGET_CASES = [
    # (name, minutes per post in layout order, budget, expected kept, expected more)
    ("no budget keeps everything", [5, 5, 5], None, [0, 1, 2], []),
    ("posts past the budget become links", [4, 4, 4], 9, [0, 1], [2]),
    ("a later short post still fits", [4, 6, 2], 7, [0, 2], [1]),
    ("the lead is kept even when it alone passes the budget", [20, 2], 5, [0], [1]),
]


@pytest.mark.parametrize(
    ("minutes", "budget", "kept", "more"),
    [case[1:] for case in BUDGET_CASES],
    ids=[case[0] for case in BUDGET_CASES],
)
def test_reading_budget(
    minutes: list[int], budget: int | None, kept: list[int], more: list[int]
) -> None:
    """newsletter.reading_minutes fills the issue in order; the rest go to "More this week"."""
    posts = [
        post(i, f"Post number {i}", published=ago(i + 0.5), words=m * 230)
        for i, m in enumerate(minutes)
    ]
    selection = select.posts_for_issue(posts, now=NOW, since=ago(7), reading_minutes=budget)
    assert ids(selection.posts) == kept
    assert ids(selection.more) == more


def test_resurface_skips_stories_already_sent_under_another_feed() -> None:
    """An empty week resurfaces the newest never-featured post that is not a sent story."""
    sent = [post(1, "Sent already", feed="a", link="https://x.example/s", published=ago(40))]
    older = [
        post(2, "Sent already", feed="b", link="https://x.example/s", published=ago(39)),
        post(3, "Never featured", feed="b", published=ago(50)),
    ]
    chosen = select.resurface(older, sent, NOW)
    assert chosen is not None
    assert chosen.id == 3
    assert select.resurface(older[:1], sent, NOW) is None


# ---------------------------------------------------------------- the question

BANK = (
    Question("Are you leading or managing?"),
    Question("Who on your team needs your trust this week?", ("delegation", "team")),
    Question("What will you stop doing?", ("priorities",)),
    Question("Where do you need rest?", ("rest",)),
)
A, B, C, D = (q.text for q in BANK)
TEAM_WEEK = [post(1, "Delegation: how to hand work to your team", categories=("Team",))]
QUIET_WEEK = [post(1, "Notes from a conference", excerpt="Slides and a recording.")]

QUESTION_CASES = [
    # (name, bank, history, posts, expected)
    ("first issue, no themes in play: list order", BANK, [], QUIET_WEEK, A),
    ("first issue, the theme that fits wins", BANK, [], TEAM_WEEK, B),
    ("week two never repeats", BANK, [A], QUIET_WEEK, B),
    ("the best-fitting unused question wins", BANK, [A, B], TEAM_WEEK, C),
    (
        "excerpts steer too",
        BANK,
        [A],
        [post(1, "Notes", excerpt="I was tired; burnout crept in and rest helped.")],
        D,
    ),
    ("last of the cycle", BANK, [A, B, C], TEAM_WEEK, D),
    (
        "a new cycle does not open with the question that closed the last",
        BANK,
        [D, C, B, A],
        QUIET_WEEK,
        B,
    ),
    (
        "a question added mid-cycle joins the cycle",
        (*BANK, Question("New one?")),
        [A, B, C],
        QUIET_WEEK,
        D,
    ),
    (
        "a question added after a full cycle does not bring the old ones back at once",
        (*BANK, Question("New one?")),
        [A, B, C, D, A],
        QUIET_WEEK,
        B,
    ),
    ("a removed question is ignored", BANK[1:], ["Gone away?", B], QUIET_WEEK, C),
    (
        "a reworded question still counts as used",
        (Question("Are you leading, or just managing?"), *BANK[1:]),
        [A],
        QUIET_WEEK,
        B,
    ),
]


@pytest.mark.parametrize(
    ("bank", "history", "posts", "expected"),
    [case[1:] for case in QUESTION_CASES],
    ids=[case[0] for case in QUESTION_CASES],
)
def test_question_rotation(
    bank: tuple[Question, ...], history: list[str], posts: list[Post], expected: str
) -> None:
    """No repeats until the bank is used; the best theme match wins, ties by list order."""
    choice = select.choose_question(bank, history, posts)
    assert choice is not None
    assert choice.text == expected


def test_no_question_repeats_until_the_bank_is_used_up() -> None:
    """Over three cycles of any weeks, each cycle asks every question exactly once."""
    history: list[str] = []
    weeks = [TEAM_WEEK, QUIET_WEEK, TEAM_WEEK, QUIET_WEEK] * 3
    for posts in weeks:
        choice = select.choose_question(BANK, history, posts)
        assert choice is not None
        history.append(choice.text)
    for start in range(0, len(history), len(BANK)):
        assert sorted(history[start : start + len(BANK)]) == sorted(q.text for q in BANK)


def test_the_reason_says_why_a_question_was_chosen() -> None:
    """The stored reason names the themes that matched, or says it is the listed order."""
    themed = select.choose_question(BANK, [], TEAM_WEEK)
    plain = select.choose_question(BANK, [], QUIET_WEEK)
    assert themed is not None
    assert "delegation" in themed.reason
    assert plain is not None
    assert "listed order" in plain.reason
    assert "1 of 4" in plain.reason


def test_an_empty_bank_asks_nothing() -> None:
    """Without questions there is no question, not an error."""
    assert select.choose_question((), [], TEAM_WEEK) is None


def test_edited_post_with_a_new_date_is_not_new() -> None:
    """A post already sent and re-published with a later date under the same link stays out."""
    original = post(1, "Seven habits of teams", link="https://a.example/7", published=ago(9))
    edited = replace(original, id=2, key="id:new", published=ago(1))
    selection = select.posts_for_issue([edited], now=NOW, since=ago(7), already_sent=[original])
    assert selection.posts == ()


def test_a_post_without_a_link_is_left_out_and_never_leads() -> None:
    """A post whose feed gave no usable link (dropped as javascript:/data:) is not chosen,
    even when it is the newest."""
    newest = replace(post(1, "Data link", published=NOW - timedelta(hours=1)), link=None)
    older = post(2, "A real post", published=NOW - timedelta(days=1))
    chosen = select.posts_for_issue([newest, older], now=NOW, since=NOW - timedelta(days=7))
    assert [p.title for p in chosen.posts] == ["A real post"]


def test_dedupe_reads_each_title_once_not_each_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big week costs one pass: each post's title key is made once and looked up, never
    recomputed for every pair of posts (2,000 posts, not 2,000,000 keys)."""
    from curator.normalize import title_key as real

    calls = 0

    def counted(text: str) -> str:
        nonlocal calls
        calls += 1
        return real(text)

    monkeypatch.setattr(select, "title_key", counted)
    posts = [
        post(n, f"A distinct title number {n}", published=NOW - timedelta(minutes=n))
        for n in range(1, 2001)
    ]
    posts.append(post(9999, "A distinct title number 7", published=NOW - timedelta(hours=9)))
    chosen = select.posts_for_issue(
        posts, now=NOW, since=NOW - timedelta(days=7), max_posts=200, max_posts_per_feed=200
    )
    assert calls < 3 * len(posts)
    assert len(chosen.posts) == 200


def test_an_empty_week_never_resurfaces_a_post_without_a_link() -> None:
    """The archive empty week brings back the newest older post that has a link to open."""
    linkless = replace(post(1, "No link here", published=NOW - timedelta(days=20)), link=None)
    older = post(2, "An older real post", published=NOW - timedelta(days=40))
    assert select.resurface([linkless, older], [], NOW) == older
