"""Every Store method maps what SQLite raises to StoreError, and a damaged state file found
after it opened well ends in one clean line, not a traceback."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli, write_config
from curator.errors import StoreError
from curator.models import FeedConfig, FetchResult, SourceCursor
from curator.store import Store

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
FEED = FeedConfig(name="A", url="https://example.org/feed")


def _freeze(store: Store) -> None:
    store.freeze_issue(
        period="2026-W10", built_at=NOW, subject="S", html="h", text="t", question=None,
        question_reason=None, post_ids=[], recipients=["a@example.org"],
    )  # fmt: skip


# Each public method of Store with arguments it accepts. A method missing here fails
# test_the_table_names_every_public_method, so a new method cannot skip the mapping.
CALLS: dict[str, Callable[[Store], Any]] = {
    "validators": lambda s: s.validators(),
    "record_fetch": lambda s: s.record_fetch(FetchResult(FEED, "ok"), NOW),
    "feed_titles": lambda s: s.feed_titles(),
    "feed_health": lambda s: s.feed_health(),
    "save_entries": lambda s: s.save_entries(FEED.url, "A", [], NOW),
    "unsent_posts": lambda s: s.unsent_posts(NOW),
    "unsent_posts_before": lambda s: s.unsent_posts_before(NOW),
    "sent_posts_since": lambda s: s.sent_posts_since(NOW),
    "issue_posts": lambda s: s.issue_posts(1),
    "recent_lead_feeds": lambda s: s.recent_lead_feeds(),
    "freeze_issue": _freeze,
    "issue": lambda s: s.issue(1),
    "latest_issue": lambda s: s.latest_issue("2026-W10"),
    "issues_with_pending": lambda s: s.issues_with_pending("2026-W10", since=NOW),
    "previous_issue": lambda s: s.previous_issue("2026-W10"),
    "deliveries": lambda s: s.deliveries(1),
    "mark_handover": lambda s: s.mark_handover(1, ["a@example.org"], NOW),
    "mark_delivery": lambda s: s.mark_delivery(1, "a@example.org", "sent", "250 ok", NOW),
    "history": lambda s: s.history(),
    "question_uses": lambda s: s.question_uses(),
    "reader_ids": lambda s: s.reader_ids(["a@example.org"], NOW),
    "unsubscribed": lambda s: s.unsubscribed(),
    "resubscribe": lambda s: s.resubscribe("a@example.org"),
    "seen_messages": lambda s: s.seen_messages(["<m@x>"]),
    "record_reply_message": lambda s: s.record_reply_message("<m@x>", "ignored", NOW),
    "answers": lambda s: s.answers(),
    "reader_summaries": lambda s: s.reader_summaries(),
    "source_cursor": lambda s: s.source_cursor("imap"),
    "save_source_cursor": lambda s: s.save_source_cursor("imap", SourceCursor(1, 1)),
    "save_personal_copies": lambda s: s.save_personal_copies(1, {}),
    "personal_copies": lambda s: s.personal_copies(1),
    "token_keys": lambda s: s.token_keys(),
    "signing_key": lambda s: s.signing_key(NOW),
    "rotate_token_key": lambda s: s.rotate_token_key(NOW),
}
# Opening (and the read-only integrity check) maps its own errors; closing and the
# transaction's BEGIN/COMMIT are tested apart.
# The whole-file copies (snapshot, check_snapshot) map theirs to a StoreError or StateFileError.
NOT_QUERIES = {"open", "close", "transaction", "integrity_problem", "snapshot", "check_snapshot"}


class _Malformed:
    """A connection whose every statement finds the file damaged, as SQLite says it."""

    in_transaction = False

    def execute(self, *args: object) -> Any:
        raise sqlite3.DatabaseError("database disk image is malformed")

    executemany = execute


def test_the_table_names_every_public_method() -> None:
    """CALLS covers each public Store method, so the walk below misses none."""
    public = {
        name
        for name, _ in inspect.getmembers(Store, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public - NOT_QUERIES == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_store_method_maps_sqlite_errors(tmp_path: Path, name: str) -> None:
    """A damaged file met inside any query is a StoreError naming the file, from the cause."""
    store = Store.open(tmp_path / "state.db")
    real = store.db
    store.db = _Malformed()  # type: ignore[assignment]  # a stand-in for a damaged file
    try:
        with pytest.raises(StoreError, match="malformed") as caught:
            CALLS[name](store)
    finally:
        store.db = real
        store.close()
    assert str(tmp_path / "state.db") in caught.value.message
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def _damage(path: Path, statement: str) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(statement)
    connection.close()


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("DROP TABLE deliveries", "no such table"),
        ("UPDATE issues SET built_at = 'last tuesday'", "cannot read"),
    ],
)
def test_a_state_file_damaged_after_open_is_one_line(
    tmp_path: Path, damage: str, said: str
) -> None:
    """`curator history` on a file damaged by hand exits 1 with one error line and a hint."""
    config = write_config(
        tmp_path,
        "newsletter:\n  to: [a@example.org]\nfeeds:\n  - {name: A, url: https://example.org/feed}\n",
    )
    state = tmp_path / ".curator" / "state.db"
    with Store.open(state) as store:
        _freeze(store)
    _damage(state, damage)
    code, out, err = run_cli(config, "history")
    assert code == 1, err
    lines = err.splitlines()
    assert lines[0].startswith("curator: error: ")
    assert said in lines[0]
    assert "Traceback" not in out + err


def test_the_state_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """A new state file (and its WAL side files) is 0600 under umask 022; an old one that
    others could read is made private when opened."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = tmp_path / "new" / "state.db"
        with Store.open(path) as store:
            store.feed_titles()
            sides = [p for p in path.parent.iterdir() if p.name != "state.db"]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [path, *sides]}
        assert set(modes.values()) == {0o600}, modes
        path.chmod(0o644)
        Store.open(path).close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_state_link_to_a_file_not_made_yet_makes_its_target(tmp_path: Path) -> None:
    """`--state` may be a link to where the state will live: the first open makes the file
    there (private), and the link stays a link."""
    import stat

    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    link.symlink_to(real)
    Store.open(link).close()
    assert link.is_symlink() and real.is_file()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
