"""The state keeps what the email needs to know about a post's media, and which writers led
recent issues."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from curator.models import EntryData
from curator.store import MIGRATIONS, SCHEMA, SCHEMA_VERSION, Store

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def entry(key: str, **facts: object) -> EntryData:
    values: dict[str, object] = {
        "key": key, "title": f"Post {key}", "link": f"https://a.example/{key}",
        "canonical_url": f"https://a.example/{key}", "author": None, "published": NOW,
        "updated": None, "excerpt": "Words.", "word_count": 300,
    }  # fmt: skip
    return EntryData(**{**values, **facts})  # type: ignore[arg-type]  # a test's table of fields


def test_a_version_2_state_file_gains_the_media_columns(tmp_path: Path) -> None:
    """A state file from before the media columns opens, keeps its entries, and reads them
    with no duration, kind or picture size."""
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA)
    old.execute(MIGRATIONS[0])
    old.execute(
        "INSERT INTO entries (feed_url, feed_name, key, title, first_seen) "
        "VALUES ('https://a/', 'A', 'k', 'Old post', ?)",
        (NOW.isoformat(),),
    )
    old.execute("PRAGMA user_version = 2")
    old.commit()
    old.close()
    with Store.open(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        (post,) = store.unsent_posts(NOW - timedelta(days=1))
    assert post.title == "Old post"
    assert (post.duration, post.media_kind, post.image_width, post.image_height) == (
        None, None, None, None,
    )  # fmt: skip


def test_duration_kind_and_picture_size_survive_the_store(tmp_path: Path) -> None:
    """What parse learned about an episode and its picture comes back out of the state."""
    with Store.open(tmp_path / "state.db") as store:
        store.save_entries(
            "https://a/",
            "A",
            [
                entry(
                    "ep",
                    duration=2712,
                    media_kind="audio",
                    image="https://a.example/p.jpg",
                    image_width=640,
                    image_height=360,
                )
            ],
            NOW,
        )
        (post,) = store.unsent_posts(NOW - timedelta(days=1))
    assert (post.duration, post.media_kind, post.image_width, post.image_height) == (
        2712, "audio", 640, 360,
    )  # fmt: skip
    assert post.time_label == "45 min listen"


def test_recent_lead_feeds_are_the_first_posts_of_recent_issues(tmp_path: Path) -> None:
    """Each issue's lead is its first post; the newest issue's lead comes first."""
    with Store.open(tmp_path / "state.db") as store:
        store.save_entries("https://a/", "A", [entry("a1"), entry("a2")], NOW)
        store.save_entries("https://b/", "B", [entry("b1")], NOW)
        ids = {p.key: p.id for p in store.unsent_posts(NOW - timedelta(days=1))}
        for week, post_ids in (("2026-W46", ["a1", "b1"]), ("2026-W47", ["b1", "a2"])):
            store.freeze_issue(
                period=week, built_at=NOW + timedelta(days=int(week[-1])), subject="s",
                html="h", text="t", question=None, question_reason=None,
                post_ids=[ids[k] for k in post_ids], recipients=[],
            )  # fmt: skip
        assert store.recent_lead_feeds() == ["https://b/", "https://a/"]
        assert store.recent_lead_feeds(exclude_period="2026-W47") == ["https://a/"]
