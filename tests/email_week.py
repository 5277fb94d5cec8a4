"""A week of real-shaped feeds (tests/data/email/week/) taken through parse and select, as
``send`` would: the issue the render and browser tests look at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from curator.models import IssueDraft, Post, QuestionChoice
from curator.parse import parse_feed
from curator.select import period_for, posts_for_issue
from digest_samples import post_from_entry

WEEK = Path(__file__).parent / "data" / "email" / "week"
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
# feeds.yaml order: the name each feed is given there, and its file.
FEEDS = (
    ("Slow Management", "wordpress.xml"),
    ("The Operator's Notebook", "substack.xml"),
    ("The Leadership Hour", "podcast.xml"),
    ("Field Notes in Pictures", "photoblog.xml"),
    ("活字と紙", "cjk.xml"),
)
ARCHIVE_URL = "https://digest.example.org/archive/"


def week_posts() -> list[Post]:
    posts: list[Post] = []
    for name, file in FEEDS:
        url = f"https://feeds.example/{file}"
        for entry in parse_feed((WEEK / file).read_bytes(), url).entries:
            posts.append(post_from_entry(entry, len(posts) + 1, url, name))
    return posts


def week_draft(recent_leads: tuple[str, ...] = ()) -> IssueDraft:
    """The issue of the week of 23 November 2026 from the five feeds."""
    selection = posts_for_issue(
        week_posts(),
        now=NOW,
        since=NOW - timedelta(days=7),
        feed_order=[f"https://feeds.example/{file}" for _, file in FEEDS],
        recent_leads=recent_leads,
    )
    return IssueDraft(
        period=period_for(NOW, "weekly", "UTC"),
        posts=selection.posts,
        more=selection.more,
        question=QuestionChoice("What would you hand over if you left tomorrow?", "test"),
    )
