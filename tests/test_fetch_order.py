"""Which feeds start first, and the state migration that remembers how long each one took."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from curator.health import fetch_order
from curator.store import SCHEMA, SCHEMA_VERSION, Store

A, B, C, D = "https://a/", "https://b/", "https://c/", "https://d/"


@pytest.mark.parametrize(
    ("failures", "elapsed", "expected"),
    [
        pytest.param({}, {}, [A, B, C, D], id="nothing-known-keeps-the-file-order"),
        pytest.param(
            {}, {A: 0.2, B: 0.2, C: 0.2}, [D, A, B, C], id="never-fetched-first-ties-in-order"
        ),
        pytest.param({}, {A: 0.1, B: 3.0, C: 0.5, D: 1.0}, [B, D, C, A], id="slowest-first"),
        pytest.param(
            {C: 2}, {A: 0.1, B: 3.0, C: 5.0, D: 1.0}, [C, B, D, A], id="failing-before-healthy"
        ),
        pytest.param(
            {A: 1, C: 1}, {A: 0.3, B: 9.0, C: 5.0}, [D, C, A, B], id="unknown-failing-healthy"
        ),
    ],
)
def test_fetch_order_starts_the_likely_slow_first(
    failures: dict[str, int], elapsed: dict[str, float], expected: list[str]
) -> None:
    """Never fetched, then failing, then the rest slowest first; ties in feeds.yaml order."""
    assert fetch_order([A, B, C, D], failures, elapsed) == expected


def test_a_version_1_state_file_is_migrated_in_place(tmp_path: Path) -> None:
    """A state file from before the last_elapsed column opens, gains it, and keeps its rows."""
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA)
    old.execute("INSERT INTO feeds (url, name) VALUES ('https://a/', 'A')")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    with Store.open(path) as store:
        version = store.db.execute("PRAGMA user_version").fetchone()[0]
        health = store.feed_health()
    assert SCHEMA_VERSION >= 2
    assert version == SCHEMA_VERSION
    assert health["https://a/"].name == "A"
    assert health["https://a/"].last_elapsed is None


def test_a_state_file_from_a_newer_curator_is_refused(tmp_path: Path) -> None:
    """A schema newer than this curator knows is a clear error, not a guess."""
    path = tmp_path / "state.db"
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.commit()
    newer.close()
    from curator.errors import StoreError

    with pytest.raises(StoreError, match="newer curator"):
        Store.open(path)
