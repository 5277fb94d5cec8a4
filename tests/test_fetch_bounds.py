"""Bounds against a real HTTP server on 127.0.0.1: hostile servers end within their limits with a
clear per-feed error, while the well-behaved feeds beside them still succeed.

Timeouts are configured small (about a second) so the suite stays fast; the assertions on time
are bounds with generous slack, never exact durations.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import FeedServer, Item, Route, free_port, rss, running_server, utc
from curator.fetch import fetch_all
from curator.models import FeedConfig, FetchConfig, FetchResult, Validators

TIMEOUT = 1.5
SLACK = 2.0
BODY = rss([Item("A post", "https://example.org/a", utc("2026-11-20T10:00:00"))])


def run(feeds: list[FeedConfig], config: FetchConfig) -> tuple[dict[str, FetchResult], float]:
    started = time.monotonic()
    results = asyncio.run(fetch_all(feeds, {}, config))
    return {r.feed.name: r for r in results}, time.monotonic() - started


def gzip_bomb(decoded_size: int) -> bytes:
    """A small gzip body that inflates to ``decoded_size`` zero bytes."""
    return gzip.compress(b"\0" * decoded_size, compresslevel=9)


HOSTILE = {
    # name: (route, words the error must contain)
    "hang": (Route(delay=60), "within 1.5 s"),
    "drip": (Route(body=BODY, drip=1.0), "within 1.5 s"),
    "endless": (Route(endless=True), "larger than the 1 MiB limit"),
    "bomb": (
        Route(body=gzip_bomb(64 * 1024 * 1024), headers={"Content-Encoding": "gzip"}),
        "larger than the 1 MiB limit",
    ),
    "loop": (Route(status=302, headers={"Location": "/loop"}), "too many redirects"),
    "to-file": (
        Route(status=302, headers={"Location": "file:///etc/passwd"}),
        "not http(s)",
    ),
    "reset": (Route(body=BODY * 50, reset=True), "connection"),
    "html-500": (Route(status=500, body=b"<h1>oops</h1>"), "HTTP 500"),
}


@pytest.fixture
def hostile_site(feed_server: FeedServer) -> list[FeedConfig]:
    feeds = [FeedConfig(f"good{i}", feed_server.add(f"/good{i}", BODY)) for i in range(3)]
    for name, (route, _) in HOSTILE.items():
        feeds.append(FeedConfig(name, feed_server.add(f"/{name}", route)))
    # A port nobody listens on: connection refused.
    feeds.append(FeedConfig("refused", f"http://127.0.0.1:{free_port()}/feed"))
    return feeds


@pytest.mark.slow
def test_hostile_servers_end_within_bounds_while_good_feeds_succeed(
    hostile_site: list[FeedConfig],
) -> None:
    """Hang, drip, endless body, gzip bomb, redirect loop, file: redirect, reset, refused:
    each fails alone with a clear error inside its deadline; the good feeds are read."""
    config = FetchConfig(
        timeout=TIMEOUT,
        connect_timeout=1.0,
        max_bytes=1024 * 1024,
        per_host=32,
        concurrency=32,
        retries=1,
    )
    results, elapsed = run(hostile_site, config)

    for i in range(3):
        good = results[f"good{i}"]
        assert good.status == "ok", good.error
        assert good.body == BODY
    for name, (_, words) in HOSTILE.items():
        result = results[name]
        assert result.status == "failed", name
        assert result.error is not None
        assert words in result.error, (name, result.error)
        assert result.elapsed <= TIMEOUT + SLACK, (name, result.elapsed)
    assert results["refused"].status == "failed"
    assert "could not connect" in (results["refused"].error or "")
    # Concurrent: the whole batch costs about one deadline, not the sum of them.
    assert elapsed <= TIMEOUT + SLACK


class Gauge:
    """Counts requests in flight per server, and the most seen at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.peak_total = 0

    def handler(self, server_id: int, hold: float) -> Route:
        def answer(request: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.now[server_id] = self.now.get(server_id, 0) + 1
                self.peak[server_id] = max(self.peak.get(server_id, 0), self.now[server_id])
                self.peak_total = max(self.peak_total, sum(self.now.values()))
            threading.Event().wait(hold)  # the server's latency, in the server's own thread
            with self.lock:
                self.now[server_id] -= 1
            request.send_response(200)
            request.send_header("Content-Type", "application/rss+xml")
            request.send_header("Content-Length", str(len(BODY)))
            request.end_headers()
            request.wfile.write(BODY)

        return Route(handler=answer)


@pytest.fixture
def second_server() -> Iterator[FeedServer]:
    with running_server() as server:
        yield server


@pytest.mark.slow
def test_per_host_and_global_limits_hold(
    feed_server: FeedServer, second_server: FeedServer
) -> None:
    """Never more than per_host requests at one host, nor concurrency in all."""
    gauge = Gauge()
    feeds = []
    for server_id, server in enumerate((feed_server, second_server)):
        for i in range(5):
            url = server.add(f"/f{i}", gauge.handler(server_id, 0.2))
            feeds.append(FeedConfig(f"s{server_id}f{i}", url))
    config = FetchConfig(timeout=10, per_host=2, concurrency=3)
    results, _ = run(feeds, config)
    assert all(r.status == "ok" for r in results.values())
    assert max(gauge.peak.values()) == 2
    assert gauge.peak_total == 3


@pytest.mark.slow
def test_deadline_starts_when_the_feed_holds_its_slot(feed_server: FeedServer) -> None:
    """Feeds queued behind others on the same host do not lose their wait to the deadline."""
    gauge = Gauge()
    feeds = [
        FeedConfig(f"f{i}", feed_server.add(f"/f{i}", gauge.handler(0, 0.4))) for i in range(4)
    ]
    # One at a time, 4 x 0.4 s = 1.6 s in all, each well inside its own 1 s deadline.
    results, elapsed = run(feeds, FetchConfig(timeout=1.0, per_host=1))
    assert [r.status for r in results.values()] == ["ok"] * 4
    assert gauge.peak[0] == 1
    assert elapsed >= 1.6


@pytest.mark.slow
def test_many_slow_feeds_take_about_one_latency_not_their_sum(feed_server: FeedServer) -> None:
    """60 feeds with 0.3 s latency each finish in a few latencies with the default limits."""
    gauge = Gauge()
    feeds = []
    for i in range(60):
        # All on one host: the per-host limit is lifted here so the global one is measured.
        feeds.append(FeedConfig(f"f{i}", feed_server.add(f"/f{i}", gauge.handler(0, 0.3))))
    results, elapsed = run(feeds, FetchConfig(per_host=64, concurrency=16))
    assert all(r.status == "ok" for r in results.values())
    # Sequential would be 18 s; 16 at a time is 4 rounds of 0.3 s.
    assert elapsed < 6.0


@pytest.mark.slow
def test_second_fetch_sends_validators_and_gets_304(feed_server: FeedServer) -> None:
    """A server that honours ETag answers 304 to curator's second request."""
    url = feed_server.add("/etag", Route(body=BODY, etag='"abc"'))
    feed = FeedConfig("etag", url)
    config = FetchConfig(timeout=5)
    (first,) = asyncio.run(fetch_all([feed], {}, config))
    (second,) = asyncio.run(fetch_all([feed], {url: first.validators}, config))
    assert first.status == "ok"
    assert second.status == "not_modified"
    assert feed_server.hits("/etag")[1].headers["if-none-match"] == '"abc"'


def test_gzip_body_within_the_cap_is_decoded(feed_server: FeedServer) -> None:
    """An ordinary gzip-compressed feed arrives decoded and whole."""
    url = feed_server.add("/gz", Route(body=BODY, gzip=True))
    (result,) = asyncio.run(fetch_all([FeedConfig("gz", url)], {}, FetchConfig(timeout=5)))
    assert result.status == "ok"
    assert result.body == BODY
    assert result.validators != Validators()
