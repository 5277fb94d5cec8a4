"""Decide what goes into an issue. Pure: no I/O, no clock; ``now`` is always an argument.

- :func:`period_for`: which period (ISO week, day or month) a moment falls in.
- :func:`posts_for_issue`: the window, dedupe, caps, order and reading budget.
- :func:`choose_question`: rotation without repeats, steered by the week's themes.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from curator.models import Cadence, Period, Post, Question, QuestionChoice
from curator.normalize import title_key, url_identity

# Two feeds carrying the same story publish it within a few days of each other.
SAME_STORY_WINDOW = timedelta(days=3)
# Short titles ("Links", "Podcast") are too common to call two posts the same story.
MIN_TITLE_KEY = 12
# Same-title posts are one story only when their excerpts are at least this alike.
SAME_BODY_RATIO = 0.85
# A lead worth opening an issue with has at least this many words (or is an episode).
LEAD_MIN_WORDS = 100
# Titles that name a kind of post, not what it says (Tumblr, microblogs, podcasts' defaults).
GENERIC_TITLES = frozenset(
    {
        "photo", "photos", "image", "video", "audio", "quote", "link", "chat", "text", "post",
        "untitled", "no title", "status", "note", "answer", "gallery", "aside",
    }
)  # fmt: skip
# A reworded question still counts as used when it is this close to the old wording.
REWORDED_RATIO = 0.8


# ---------------------------------------------------------------- periods


def period_for(now: datetime, cadence: Cadence, timezone: str) -> Period:
    """The period ``now`` falls in, cut in ``timezone``."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    day = local.date()
    if cadence == "daily":
        start_day, end_day = day, day + timedelta(days=1)
        key = day.isoformat()
        label = f"{day:%A} {day.day} {day:%B %Y}"
    elif cadence == "monthly":
        start_day = day.replace(day=1)
        end_day = (start_day + timedelta(days=32)).replace(day=1)
        key = f"{day:%Y-%m}"
        label = f"{day:%B %Y}"
    else:
        year, week, weekday = day.isocalendar()
        start_day = day - timedelta(days=weekday - 1)
        end_day = start_day + timedelta(days=7)
        key = f"{year}-W{week:02d}"
        label = f"Week of {_span(start_day, end_day - timedelta(days=1))}"
    return Period(
        key=key, label=label, start=_midnight(start_day, zone), end=_midnight(end_day, zone)
    )


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _span(first: date, last: date) -> str:
    if first.year != last.year:
        return f"{first.day} {first:%B %Y} – {last.day} {last:%B %Y}"
    if first.month != last.month:
        return f"{first.day} {first:%B} – {last.day} {last:%B %Y}"
    return f"{first.day}–{last.day} {last:%B %Y}"


# ---------------------------------------------------------------- posts


def effective_date(post: Post, now: datetime) -> datetime:
    """When a post counts as published: its date, else when curator first saw it; never
    later than ``now`` (a post dated in the future counts as published now)."""
    moment = post.published or post.first_seen
    return min(moment, now)


def window_start(now: datetime, previous_built_at: datetime | None, lookback_days: int) -> datetime:
    """Posts must be newer than this: the previous issue, or ``lookback_days`` for the first."""
    if previous_built_at is None:
        return now - timedelta(days=lookback_days)
    return previous_built_at


@dataclass(frozen=True)
class Selection:
    posts: tuple[Post, ...]
    more: tuple[Post, ...]


def posts_for_issue(
    candidates: Iterable[Post],
    *,
    now: datetime,
    since: datetime,
    already_sent: Iterable[Post] = (),
    feed_order: Sequence[str] = (),
    max_posts: int = 10,
    max_posts_per_feed: int = 3,
    feed_caps: Mapping[str, int] | None = None,
    reading_minutes: int | None = None,
    recent_leads: Sequence[str] = (),
) -> Selection:
    """The posts of one issue: the window, no repeats, one copy of each story, the caps.

    Order: the lead (see :func:`choose_lead`) first, then the rest grouped by source in the
    order of feeds.yaml, newest first within a source. Posts past the reading budget go to ``more``.
    """
    feed_caps = feed_caps or {}
    # A post without an http(s) link (none in the feed, or only a javascript:/data: one that
    # normalize dropped) gives the reader nothing to open: it is left out, never the lead.
    in_window = [p for p in candidates if p.link and since < effective_date(p, now) <= now]
    in_window.sort(key=lambda p: (effective_date(p, now), p.id))
    unique = _drop_same_stories(in_window, list(already_sent), now)

    newest_first = sorted(unique, key=lambda p: (effective_date(p, now), p.id), reverse=True)
    per_feed: Counter[str] = Counter()
    kept: list[Post] = []
    for post in newest_first:
        cap = min(max_posts_per_feed, feed_caps.get(post.feed_url, max_posts_per_feed))
        if per_feed[post.feed_url] >= cap or len(kept) >= max_posts:
            continue
        per_feed[post.feed_url] += 1
        kept.append(post)
    ordered = _layout(kept, feed_order, now, recent_leads)
    posts, more = _fit_budget(ordered, reading_minutes)
    return Selection(tuple(posts), tuple(more))


def _identities(post: Post) -> set[str]:
    """Every URL key a post answers to: its canonical URL and its link."""
    return {i for i in (url_identity(post.canonical_url), url_identity(post.link)) if i}


def same_body(post: Post, other: Post) -> bool:
    """Whether two posts say the same: their excerpts match over the shorter one's length.

    Two empty excerpts match (nothing tells the posts apart); an empty and a full one do not.
    """
    mine, theirs = title_key(post.excerpt), title_key(other.excerpt)
    if not mine and not theirs:
        return True
    length = min(len(mine), len(theirs), 300)
    if length == 0:
        return False
    ratio = difflib.SequenceMatcher(None, mine[:length], theirs[:length], autojunk=False).ratio()
    return ratio >= SAME_BODY_RATIO


def same_story(post: Post, other: Post, now: datetime) -> bool:
    """Whether two posts are one story: a shared URL, else the same title a few days apart
    with bodies that match. Four replies titled "Re: new maintainer" stay four posts."""
    if _identities(post) & _identities(other):
        return True
    key = title_key(post.title)
    return (
        len(key) >= MIN_TITLE_KEY
        and key == title_key(other.title)
        and abs(effective_date(post, now) - effective_date(other, now)) <= SAME_STORY_WINDOW
        and same_body(post, other)
    )


def _drop_same_stories(posts: Sequence[Post], sent: Sequence[Post], now: datetime) -> list[Post]:
    # The oldest copy of a story wins: it is usually the original, the others re-post it.
    # Each post's URL keys and title key are computed once and looked up by key, so a week of
    # thousands of posts costs one pass, not a comparison of every pair.
    seen_urls = {u for p in sent for u in _identities(p)}
    by_title: dict[str, list[Post]] = {}

    def remember(post: Post, key: str) -> None:
        if len(key) >= MIN_TITLE_KEY:
            by_title.setdefault(key, []).append(post)

    for old in sent:
        remember(old, title_key(old.title))
    kept: list[Post] = []
    for post in posts:
        idents = _identities(post)
        key = title_key(post.title)
        if idents & seen_urls or any(
            abs(effective_date(post, now) - effective_date(other, now)) <= SAME_STORY_WINDOW
            and same_body(post, other)
            for other in by_title.get(key, ())
        ):
            continue
        seen_urls |= idents
        remember(post, key)
        kept.append(post)
    return kept


def resurface(older: Iterable[Post], sent: Iterable[Post], now: datetime) -> Post | None:
    """The post an empty week brings back: the newest older post that was never featured,
    under any feed or id (``older`` comes newest first)."""
    sent = list(sent)
    for post in older:
        if post.link and not any(same_story(post, other, now) for other in sent):
            return post
    return None


def lead_strength(post: Post) -> int:
    """How well a post can open the issue, 0 to 3.

    3: a real title and something to read or hear (LEAD_MIN_WORDS words, or an episode with
    its duration); 2: a real title and a line or two of its own; 1: a real title only;
    0: a "Photo" or "(untitled)" with nothing to read."""
    key = title_key(post.title)
    if not key or key in GENERIC_TITLES or post.title == "(untitled)":
        return 0
    has_text = bool(post.excerpt) and title_key(post.excerpt) != key
    if (has_text and post.word_count >= LEAD_MIN_WORDS) or (post.media_kind and post.duration):
        return 3
    return 2 if has_text else 1


def choose_lead(posts: Sequence[Post], recent_leads: Sequence[str], now: datetime) -> Post:
    """The post a reader most wants first: a real title with text, from the writer who has
    led least recently (``recent_leads``: past leads' feed URLs, newest first), then newest.

    Rotation keeps the most prolific writer from opening every issue; a weak post never
    opens one while a strong post is there."""
    recency: dict[str, int] = {}
    for age, url in enumerate(recent_leads):
        recency.setdefault(url, age)

    def merit(post: Post) -> tuple[int, int, datetime, int]:
        # Never led: as good as having led longest ago.
        waited = recency.get(post.feed_url, len(recent_leads))
        return lead_strength(post), waited, effective_date(post, now), post.id

    return max(posts, key=merit)


def _layout(
    posts: Sequence[Post], feed_order: Sequence[str], now: datetime, recent_leads: Sequence[str]
) -> list[Post]:
    if not posts:
        return []
    rank = {url: i for i, url in enumerate(feed_order)}
    newest = choose_lead(posts, recent_leads, now)
    rest = [p for p in posts if p is not newest]
    rest.sort(key=lambda p: (rank.get(p.feed_url, len(rank)), p.feed_name,
                             -effective_date(p, now).timestamp(), p.id))  # fmt: skip
    return [newest, *rest]


def _fit_budget(posts: Sequence[Post], minutes: int | None) -> tuple[list[Post], list[Post]]:
    if minutes is None or not posts:
        return list(posts), []
    kept = [posts[0]]
    used = posts[0].reading_minutes
    more = []
    for post in posts[1:]:
        if used + post.reading_minutes <= minutes:
            kept.append(post)
            used += post.reading_minutes
        else:
            more.append(post)
    return kept, more


# ---------------------------------------------------------------- questions

# Words that signal a theme in a week's posts, beyond the theme's own words. Stems, matched
# as word prefixes, so "delegat" finds delegate, delegating and delegation.
THEME_WORDS: dict[str, tuple[str, ...]] = {
    "leadership": ("lead", "leader"),
    "management": ("manag", "process", "system", "control"),
    "self-leadership": ("self", "habit", "discipl", "person", "growth", "life"),
    "action": ("action", "start", "step", "plan", "execut", "habit"),
    "vision": ("vision", "future", "direction", "dream", "goal", "purpose"),
    "delegation": ("delegat", "empower", "trust", "ownership"),
    "team": ("team", "staff", "people", "culture", "hire", "hiring"),
    "change": ("change", "transition", "innovat", "risk"),
    "communication": ("communicat", "listen", "conversat", "feedback", "speak", "meeting"),
    "courage": ("courage", "brave", "fear", "risk", "bold", "difficult"),
    "priorities": ("priorit", "focus", "time", "busy", "calendar", "schedul", "productiv"),
    "rest": ("rest", "burnout", "sabbath", "energy", "health", "margin", "tired"),
    "development": ("develop", "mentor", "coach", "grow", "learn", "train"),
    "decisions": ("decision", "decid", "choice", "choos"),
    "character": ("character", "integrity", "humil", "honest", "value"),
    "influence": ("influence", "persuad", "serve", "servant"),
    "conflict": ("conflict", "critic", "tension", "disagree"),
}

_WORD = re.compile(r"[a-z][a-z'-]+")


def _stems(theme: str) -> tuple[str, ...]:
    own = tuple(w for w in re.split(r"[^a-z]+", theme.lower()) if len(w) >= 3)
    return own + THEME_WORDS.get(theme.lower(), ())


def theme_score(question: Question, words: Counter[str]) -> int:
    """How often the week's words touch the question's themes."""
    score = 0
    for theme in question.themes:
        for stem in _stems(theme):
            score += sum(n for word, n in words.items() if word.startswith(stem))
    return score


def week_words(posts: Iterable[Post]) -> Counter[str]:
    """The words of the week: titles count twice, then categories and excerpts."""
    words: Counter[str] = Counter()
    for post in posts:
        title = _WORD.findall(post.title.lower())
        words.update(title * 2)
        words.update(_WORD.findall(" ".join(post.categories).lower()))
        words.update(_WORD.findall(post.excerpt.lower()))
    return words


def _fold(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def _match_bank(text: str, bank_texts: Sequence[str]) -> str | None:
    if text in bank_texts:
        return text
    folded = {_fold(t): t for t in bank_texts}
    close = difflib.get_close_matches(_fold(text), list(folded), n=1, cutoff=REWORDED_RATIO)
    return folded[close[0]] if close else None


def used_in_cycle(bank: Sequence[Question], history: Sequence[str]) -> tuple[set[str], str | None]:
    """Which questions of ``bank`` the current cycle has used, and the last one used.

    ``history`` is every question sent, oldest first. A cycle ends when every question of the
    bank has been used. The bank may have changed since: questions no longer in it are
    ignored, a slightly reworded question counts as the one it was, and a question seen twice
    proves a new cycle had begun (curator never repeats within one), which keeps a question
    added late from making the old ones look unused.
    """
    texts = [q.text for q in bank]
    used: set[str] = set()
    last: str | None = None
    for text in history:
        matched = _match_bank(text, texts)
        if matched is None:
            continue
        if matched in used:
            used = set()
        used.add(matched)
        last = matched
        if used >= set(texts):
            used = set()
    return used, last


def choose_question(
    bank: Sequence[Question], history: Sequence[str], posts: Sequence[Post]
) -> QuestionChoice | None:
    """The next question: unused in this cycle, best fit to the week's themes, then list order."""
    if not bank:
        return None
    used, last = used_in_cycle(bank, history)
    unused = [q for q in bank if q.text not in used]
    if len(unused) > 1 and last is not None:
        # A new cycle should not open with the question that closed the last one.
        unused = [q for q in unused if q.text != last]
    words = week_words(posts)
    scored = [(theme_score(q, words), -i, q) for i, q in enumerate(unused)]
    best_score, _, best = max(scored, key=lambda t: (t[0], t[1]))
    position = f"{len(used) + 1} of {len(bank)} in this cycle"
    if best_score > 0:
        themes = ", ".join(best.themes)
        reason = f"best fit to this week's posts (themes: {themes}; score {best_score}); {position}"
    else:
        reason = f"next in the listed order; {position}"
    return QuestionChoice(best.text, reason)
