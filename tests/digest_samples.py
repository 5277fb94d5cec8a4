"""Fixed issues for the render, browser and archive tests: one small hand-made week, big or
hostile weeks from the project's own feeds in ``tests/data/feeds``, and (as an extra) a large
one built from the shared corpus of real feeds."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from curator.models import EntryData, IssueDraft, NewsletterConfig, Period, Post, QuestionChoice
from curator.render import SourceNote
from factories import make_post

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
PERIOD = Period(
    key="2026-W48",
    label="Week of 23–29 November 2026",
    start=datetime(2026, 11, 23, tzinfo=UTC),
    end=datetime(2026, 11, 30, tzinfo=UTC),
)
NEWSLETTER = NewsletterConfig(
    title="Lead, Don't Just Manage",
    from_addr="Lead Weekly <digest@example.org>",
    to=("ann@example.org",),
    unsubscribe="https://lead.example.org/unsubscribe",
    intro="Five posts from the people you learn from, and one question to carry into the week.",
)
SOURCES = (
    SourceNote("Ron Edmondson", True),
    SourceNote("Michael Hyatt", True),
    SourceNote("Carey Nieuwhof", True),
    SourceNote("Seth's Blog", False, "HTTP 503"),
)


def post_from_entry(entry: EntryData, id_: int, feed_url: str, feed_name: str) -> Post:
    """The Post the store would make of a parsed entry, first seen at NOW."""
    made = make_post(
        id_,
        entry.title,
        feed_url=feed_url,
        feed_name=feed_name,
        key=entry.key,
        canonical=entry.canonical_url,
        author=entry.author,
        published=entry.published,
        first_seen=NOW,
        excerpt=entry.excerpt,
        words=entry.word_count,
        image=entry.image,
        categories=entry.categories,
        duration=entry.duration,
        media_kind=entry.media_kind,
        image_width=entry.image_width,
        image_height=entry.image_height,
    )
    return replace(made, link=entry.link)  # a feed's entry may have no link at all


def post(
    id: int,
    feed: str,
    title: str,
    slug: str,
    *,
    days_ago: float,
    words: int = 900,
    excerpt: str = "",
    author: str | None = None,
    image: str | None = None,
    categories: tuple[str, ...] = (),
) -> Post:
    host = feed.lower().replace(" ", "").replace("'", "")
    return make_post(
        id,
        title,
        feed_url=f"https://{host}.example/feed/",
        feed_name=feed,
        key=f"url:{host}.example/{slug}",
        link=f"https://{host}.example/{slug}/",
        canonical=f"https://{host}.example/{slug}/",
        author=author,
        published=NOW - timedelta(days=days_ago),
        excerpt=excerpt,
        words=words,
        image=image,
        categories=categories,
    )


def sample_posts() -> tuple[Post, ...]:
    """The hand-made week, already in issue order: the lead, then by source."""
    return (
        post(
            1,
            "Ron Edmondson",
            "Seven things I wish I had known about leading from the middle",
            "lead-from-the-middle",
            days_ago=1,
            words=1400,
            author="Ron Edmondson",
            image="https://ronedmondson.example/images/middle.jpg",
            excerpt="Most leaders never sit at the top of the chart. They lead up, across and "
            "down at once, and the skills that matter there are rarely taught. Here are seven "
            "lessons I learned the hard way, from a decade of leading from the middle of an "
            "organisation that did not always want to be led.",
        ),
        post(
            2,
            "Ron Edmondson",
            "When your team stops telling you the truth",
            "truth",
            days_ago=3,
            words=700,
            excerpt="Silence in a meeting is not agreement. It is usually the sound of people "
            "who have learned that honesty costs more than it earns.",
        ),
        post(
            3,
            "Michael Hyatt",
            "Plan your week in thirty minutes",
            "plan-your-week",
            days_ago=2,
            words=1100,
            author="Megan Hyatt Miller",
            excerpt="A weekly preview is the single habit that changed how I work: thirty "
            "minutes on Sunday to decide what matters before the week decides for me.",
        ),
        post(
            4,
            "Carey Nieuwhof",
            "The quiet cost of never saying no",
            "never-saying-no",
            days_ago=4,
            words=1800,
            excerpt="Every yes is a no to something else. Leaders who cannot say no end up "
            "saying it to their families, their health and their best work.",
        ),
        post(
            5,
            "Carey Nieuwhof",
            "Burnout & rest: what I would tell my younger self",
            "burnout-rest",
            days_ago=5,
            words=2300,
            excerpt="",
        ),
    )


def sample_draft() -> IssueDraft:
    posts = sample_posts()
    return IssueDraft(
        period=PERIOD,
        posts=posts[:4],
        more=posts[4:],
        question=QuestionChoice(
            "Is there an area of your life you are managing that you need to rise up and lead?",
            "test",
        ),
    )


FEEDS = Path(__file__).parent / "data" / "feeds"


def fixture_posts(name: str) -> list[Post]:
    """The posts of ``tests/data/feeds/NAME.xml``, parsed as a fetch would, in feed order."""
    return list(_fixture_posts(name))


@functools.cache
def _fixture_posts(name: str) -> tuple[Post, ...]:
    from curator.parse import parse_feed

    feed_url = f"https://{name}.example/feed"
    parsed = parse_feed((FEEDS / f"{name}.xml").read_bytes(), feed_url, None)
    title = parsed.title or name
    return tuple(
        post_from_entry(entry, i + 1, feed_url, title) for i, entry in enumerate(parsed.entries)
    )


def corpus_posts(corpus: Path, count: int, folder: str = "feeds") -> list[Post]:
    """``count`` posts parsed from the corpus feeds under ``folder``, longest excerpts first,
    so a big issue is as big as real feeds make it."""
    return list(_corpus_posts(corpus, folder)[:count])


@functools.cache
def _corpus_posts(corpus: Path, folder: str) -> tuple[Post, ...]:
    # Parsing the corpus takes seconds; every test of a session shares one parse.
    from curator.errors import ParseError
    from curator.parse import parse_feed

    posts: list[Post] = []
    for path in sorted((corpus / folder).rglob("*.xml")):
        try:
            parsed = parse_feed(path.read_bytes(), f"https://{path.stem}.example/feed", None)
        except ParseError:
            continue
        for entry in parsed.entries:
            feed_url = f"https://{path.stem}.example/feed"
            name = parsed.title or path.stem
            posts.append(post_from_entry(entry, len(posts) + 1, feed_url, name))
    posts.sort(key=lambda p: len(p.excerpt), reverse=True)
    return tuple(posts)
