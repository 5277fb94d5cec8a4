"""Feed health: the pure backoff policy as a table, its wiring into `curator fetch` (backed off)
and `curator send` (always tries), the per-feed table the CLI prints, and the parse pool
surviving a worker that dies."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FeedServer, Item, Route, rss, utc, write_config
from curator.app import fetch_feeds, run_fetch
from curator.cli import app
from curator.errors import ParseError
from curator.health import backoff_interval, fetch_due
from curator.models import Config, FeedConfig, FetchConfig, ParsedFeed
from curator.parse import ParsePool, parse_feed
from curator.store import Store

H = timedelta(hours=1)
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # start of ISO week 2026-W48
WEDNESDAY = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failures", "interval"),
    [(0, timedelta(0)), (1, H), (2, 2 * H), (3, 4 * H), (5, 16 * H), (6, 24 * H), (1000, 24 * H)],
)
def test_backoff_interval_doubles_up_to_a_day(failures: int, interval: timedelta) -> None:
    """1 h after the first failure, doubling each time, never more than a day."""
    assert backoff_interval(failures) == interval


@pytest.mark.parametrize(
    ("failures", "last_attempt", "due"),
    [
        (0, WEDNESDAY - timedelta(minutes=1), True),  # healthy feeds are always due
        (3, None, True),  # never tried
        (1, WEDNESDAY - 0.5 * H, False),  # inside its first hour
        (1, WEDNESDAY - 1 * H, True),  # exactly at the end of it
        (3, WEDNESDAY - 3 * H, False),  # third failure rests 4 h
        (3, WEDNESDAY - 5 * H, True),
        (40, WEDNESDAY - 23 * H, False),  # the cap: a day
        (40, WEDNESDAY - 25 * H, True),
        (40, MONDAY - timedelta(minutes=1), True),  # not yet tried this period: always due
        (40, MONDAY + timedelta(minutes=1), True),  # rested its day within the period
    ],
)
def test_fetch_due_backs_off_but_tries_once_per_period(
    failures: int, last_attempt: datetime | None, due: bool
) -> None:
    """A failing feed rests longer each time, but is due once in every issue period."""
    decision = fetch_due(
        failures=failures, last_attempt=last_attempt, now=WEDNESDAY, period_start=MONDAY
    )
    assert decision.due is due
    if not due:
        assert last_attempt is not None
        assert decision.next_try == last_attempt + backoff_interval(failures)


# ---------------------------------------------------------------- wiring


BODY = rss([Item("A post", "https://good.example/a", utc("2026-11-24T10:00:00"))])


def make_config(tmp_path: Path, server: FeedServer) -> Config:
    feeds = (
        FeedConfig("Good", server.add("/good.xml", BODY)),
        FeedConfig("Broken", server.add("/broken.xml", Route(status=500))),
    )
    return Config(
        path=tmp_path / "feeds.yaml",
        feeds=feeds,
        state_path=tmp_path / "state.db",
        fetch=FetchConfig(retries=0, timeout=5),
    )


def test_fetch_backs_off_a_failing_feed_and_a_forced_fetch_still_tries_it(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`curator fetch` skips a feed inside its backoff; a forced fetch tries it anyway."""
    config = make_config(tmp_path, feed_server)
    first = run_fetch(config, WEDNESDAY)
    assert [o.fetch.status for o in first] == ["ok", "failed"]
    assert len(feed_server.hits("/broken.xml")) == 1

    rested = run_fetch(config, WEDNESDAY + 0.5 * H)
    # the good feed's server sends the same body again: skipped by its hash
    assert [o.fetch.status for o in rested] == ["unchanged", "skipped"]
    assert "failed once, next try after 2026-11-25 13:00 UTC" in (rested[1].fetch.error or "")
    assert "HTTP 500" in (rested[1].fetch.error or "")
    assert len(feed_server.hits("/broken.xml")) == 1

    with Store.open(config.state_path) as store:
        assert store.feed_health()[config.feeds[1].url].consecutive_failures == 1
        # a forced fetch: every feed, backoff or not
        sent = fetch_feeds(config, store, WEDNESDAY + 0.6 * H, honour_backoff=False)
        assert [o.fetch.status for o in sent] == ["unchanged", "failed"]
        assert store.feed_health()[config.feeds[1].url].consecutive_failures == 2
    assert len(feed_server.hits("/broken.xml")) == 2

    later = run_fetch(config, WEDNESDAY + 3 * H)
    assert [o.fetch.status for o in later] == ["unchanged", "failed"]
    assert len(feed_server.hits("/broken.xml")) == 3


def test_a_new_period_makes_a_backed_off_feed_due(feed_server: FeedServer, tmp_path: Path) -> None:
    """Backed off late on Sunday, the feed is tried again just after Monday begins."""
    config = make_config(tmp_path, feed_server)
    sunday_night = MONDAY + 7 * 24 * H - 0.5 * H
    for _ in range(6):  # six failures: a day's rest
        with Store.open(config.state_path) as store:
            fetch_feeds(config, store, sunday_night, honour_backoff=False)
    assert run_fetch(config, sunday_night + 0.2 * H)[1].fetch.status == "skipped"
    assert run_fetch(config, sunday_night + 0.6 * H)[1].fetch.status == "failed"


def test_a_body_that_is_not_a_feed_counts_as_a_failure(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Fetched fine but unparseable: the feed's health records the failure, not a success."""
    url = feed_server.add(
        "/page", Route(body=b"<!doctype html><html>hi</html>", content_type="text/html")
    )
    config = Config(
        path=tmp_path / "feeds.yaml", feeds=(FeedConfig("Page", url),), state_path=tmp_path / "s.db"
    )
    (outcome,) = run_fetch(config, WEDNESDAY)
    assert outcome.error == "the address serves an HTML page, not a feed"
    with Store.open(config.state_path) as store:
        health = store.feed_health()[url]
        assert health.last_success is None
        assert health.consecutive_failures == 1
        assert health.last_error == outcome.error
        assert store.validators()[url].content_hash is None


# ---------------------------------------------------------------- the CLI table


def test_fetch_command_prints_a_table_and_plain_progress_lines(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Off a terminal: one plain line per feed as it finishes, then a tab-separated table."""
    feed_server.add("/moved.xml", Route(status=301, headers={"Location": "/good.xml"}))
    feed_server.add("/good.xml", BODY)
    feed_server.add("/broken.xml", Route(status=500))
    config = write_config(
        tmp_path,
        "fetch: {retries: 0, timeout: 5}\nfeeds:\n"
        f"  - {{name: Good, url: '{feed_server.url('/moved.xml')}'}}\n"
        f"  - {{name: Broken, url: '{feed_server.url('/broken.xml')}'}}\n",
    )
    runner = CliRunner()
    args = ["--config", str(config), "fetch", "--now", "2026-11-25T12:00:00Z"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fetched Good: ok" in result.stderr
    assert "fetched Broken: failed (500)" in result.stderr
    for word in ("feed", "status", "new", "time", "note", "failed (500)", "moved for good"):
        assert word in result.stdout
    good_row = next(line for line in result.stdout.splitlines() if "Good" in line)
    assert good_row.split("\t")[:3] == ["Good", "ok", "1"]  # one new entry
    # The summary goes to stderr off a terminal, so stdout holds the header and rows only.
    assert "2 feeds: 1 ok, 1 failed or resting; 1 new" in result.stderr
    assert all(line.count("\t") == 4 for line in result.stdout.splitlines())

    again = runner.invoke(app, [*args[:-1], "2026-11-25T12:30:00Z"])
    assert again.exit_code == 0
    assert "backed off" in again.stdout
    good_row = next(line for line in again.stdout.splitlines() if "Good" in line)
    assert "same" in good_row or "304" in good_row


# ---------------------------------------------------------------- the parse pool


def die_on_poison(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """parse_feed, except that a body containing POISON kills the worker process outright."""
    if b"POISON" in body:
        os._exit(13)
    return parse_feed(body, url, content_type)


def test_parse_pool_survives_a_worker_that_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body that kills its parser fails alone; the bodies parsed beside it still parse."""
    import curator.parse

    monkeypatch.setattr(curator.parse, "parse_feed", die_on_poison)
    bodies = [BODY] * 6 + [BODY.replace(b"A post", b"POISON")] + [BODY] * 6

    async def go() -> list[ParsedFeed | str]:
        pool = ParsePool(2)
        try:

            async def one(body: bytes) -> ParsedFeed | str:
                try:
                    return await pool.parse(body, "https://good.example/feed", None)
                except ParseError as exc:
                    return str(exc)

            return list(await asyncio.gather(*(one(b) for b in bodies)))
        finally:
            pool.close()

    results = asyncio.run(go())
    assert results[6] == "the feed made the parser crash"
    others = results[:6] + results[7:]
    assert all(isinstance(r, ParsedFeed) and r.entries[0].title == "A post" for r in others)


def test_parse_pool_reports_a_non_feed_as_parse_error() -> None:
    """ParseError raised in a worker comes back as the same clean error."""

    async def go() -> str:
        pool = ParsePool(2)
        try:
            await pool.parse(b"<html><body>hi</body></html>", "https://x.example/", None)
        except ParseError as exc:
            return str(exc)
        finally:
            pool.close()
        return "parsed"

    assert asyncio.run(go()) == "the address serves an HTML page, not a feed"
