"""The one Post factory of the tests: every field has a plain default, so a test names only
what it is about."""

from __future__ import annotations

from datetime import UTC, datetime

from curator.models import MediaKind, Post

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def make_post(
    id: int,
    title: str = "A post",
    *,
    feed: str = "a",
    feed_url: str | None = None,
    feed_name: str | None = None,
    key: str | None = None,
    link: str | None = None,
    canonical: str | None = None,
    author: str | None = None,
    published: datetime | None = None,
    first_seen: datetime | None = None,
    words: int = 460,
    excerpt: str = "",
    image: str | None = None,
    categories: tuple[str, ...] = (),
    duration: int | None = None,
    media_kind: MediaKind | None = None,
    image_width: int | None = None,
    image_height: int | None = None,
) -> Post:
    """A stored post of feed ``feed`` (``https://FEED.example/feed``), first seen when published
    (or at NOW when undated)."""
    return Post(
        id=id,
        feed_url=feed_url or f"https://{feed}.example/feed",
        feed_name=feed_name or feed.upper(),
        key=key or f"id:{feed}-{id}",
        title=title,
        link=link if link is not None else f"https://{feed}.example/{id}",
        canonical_url=canonical,
        author=author,
        published=published,
        first_seen=first_seen or published or NOW,
        excerpt=excerpt,
        word_count=words,
        image=image,
        categories=categories,
        duration=duration,
        media_kind=media_kind,
        image_width=image_width,
        image_height=image_height,
    )
