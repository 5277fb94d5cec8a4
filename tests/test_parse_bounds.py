"""Parsing is bounded like fetching: a feed built to make the parser expand entities costs
milliseconds and megabytes, measured in a real `curator fetch` process against a local server,
and the other feeds still arrive."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from conftest import FeedServer, Item, rss, run_measured, utc, write_config
from curator.parse import parse_feed, without_internal_entities
from mail_kit import curator_env


def entity_bomb(size: int = 100_000, references: int = 10_000) -> bytes:
    """One internal entity of ``size`` bytes referenced ``references`` times (130 KB on the
    wire for the defaults; gigabytes once expanded)."""
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY big "' + "A" * size + '">\n]>\n'
        '<rss version="2.0"><channel><title>Bomb</title><link>https://bomb.example/</link>'
        "<item><title>Boom</title><link>https://bomb.example/1</link><description>"
        + "&big;" * references
        + "</description></item></channel></rss>"
    ).encode()


def test_an_entity_bomb_costs_little_and_the_other_feeds_still_arrive(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Three bomb feeds and one good feed: `curator fetch` ends in seconds, its largest process
    stays under 300 MB, and the good feed's post is stored."""
    bombs = [feed_server.add(f"/bomb{i}.xml", entity_bomb()) for i in range(3)]
    good = feed_server.add(
        "/good.xml",
        rss([Item("Still here", "https://good.example/1", utc("2026-11-24T10:00"))]),
    )
    feeds = "".join(f"  - url: {url}\n" for url in [*bombs, good])
    config = write_config(tmp_path, f"newsletter:\n  to: [a@example.org]\nfeeds:\n{feeds}")
    done = run_measured(
        [sys.executable, "-m", "curator", "--config", str(config), "fetch"],
        env=curator_env({"CURATOR_NOW": "2026-11-26T08:00:00Z"}),
        folder=tmp_path,
    )
    assert done.code == 0, done.stderr
    assert done.seconds < 15, f"fetch took {done.seconds:.1f} s"
    assert done.peak_kb / 1024 < 300, f"the largest process reached {done.peak_kb / 1024:.0f} MB"
    from curator.store import Store

    with Store.open(tmp_path / ".curator" / "state.db") as store:
        titles = {p.title for p in store.unsent_posts(utc("2026-11-01T00:00"))}
    assert "Still here" in titles


def test_an_entity_bomb_parses_in_bounded_memory() -> None:
    """In process: the bomb parses in well under a second with under 20 MB of Python memory."""
    import tracemalloc

    tracemalloc.start()
    started = time.monotonic()
    parsed = parse_feed(entity_bomb(), "https://bomb.example/feed")
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2
    assert peak < 20_000_000
    assert [e.title for e in parsed.entries] == ["Boom"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'<!DOCTYPE rss [<!ENTITY a "x">]><rss/>', b"<!DOCTYPE rss ><rss/>"),
        (b'<!doctype rss SYSTEM "u[" [<!ENTITY a "]>">]><rss/>',
         b'<!doctype rss SYSTEM "u[" ><rss/>'),
        (b"<!DOCTYPE rss [<!-- ] --><!ENTITY a 'b'>]><rss/>", b"<!DOCTYPE rss ><rss/>"),
        (b'<!DOCTYPE rss PUBLIC "p" "s"><rss/>', b'<!DOCTYPE rss PUBLIC "p" "s"><rss/>'),
        (b"<rss><![CDATA[<!DOCTYPE x>]]></rss>", b"<rss><![CDATA[<!DOCTYPE x>]]></rss>"),
    ],
)  # fmt: skip
def test_only_the_internal_subset_is_removed(body: bytes, expected: bytes) -> None:
    """The DOCTYPE's internal subset goes, quoted brackets and comments included; nothing else."""
    assert without_internal_entities(body) == expected


def test_a_utf16_bomb_is_neutralised_too() -> None:
    """A UTF-16 body with a byte-order mark is read as UTF-8 and loses its subset too."""
    body = entity_bomb(1000, 10).decode().encode("utf-16")
    assert b"ENTITY" not in without_internal_entities(body)
