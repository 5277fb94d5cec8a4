"""Fetching against a real HTTP server on 127.0.0.1: a server that stalls and then drops the
line is not tried again in the run (only fast failures are), and redirects never leave http(s)
or lead a public feed into private address space."""

from __future__ import annotations

import asyncio
import time
from http.server import BaseHTTPRequestHandler

from conftest import FeedServer, Item, Route, rss, utc
from curator.fetch import fetch_all
from curator.models import FeedConfig, FetchConfig, FetchResult

BODY = rss([Item("A post", "https://example.org/a", utc("2026-11-20T10:00:00"))])


def fetch(feeds: list[FeedConfig], config: FetchConfig) -> dict[str, FetchResult]:
    return {r.feed.name: r for r in asyncio.run(fetch_all(feeds, {}, config))}


def test_a_stall_then_a_drop_is_not_retried(feed_server: FeedServer) -> None:
    """A server silent for 1.5 s that then hangs up is asked once; the feed fails in about
    the stall, not three stalls plus backoff; a good feed beside it is fetched."""

    def stall_then_drop(handler: BaseHTTPRequestHandler) -> None:
        feed_server.stop_event.wait(1.5)
        handler.close_connection = True
        handler.connection.shutdown(2)

    stalling = feed_server.add("/stall", Route(handler=stall_then_drop))
    good = feed_server.add("/good", BODY)
    config = FetchConfig(timeout=4, retries=2)  # a stall is 1 s or more (a quarter)
    started = time.monotonic()
    results = fetch([FeedConfig("stall", stalling), FeedConfig("good", good)], config)
    elapsed = time.monotonic() - started
    assert len(feed_server.hits("/stall")) == 1
    assert results["stall"].status == "failed"
    assert results["stall"].attempts == 1
    assert "after 2 s" in (results["stall"].error or "")
    assert results["good"].status == "ok"
    assert elapsed < 4, elapsed


def test_a_fast_drop_is_still_retried(feed_server: FeedServer) -> None:
    """A connection dropped at once is a passing fault: the second attempt gets the feed."""
    calls = []

    def drop_once(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        if len(calls) == 1:
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(BODY)))
        handler.end_headers()
        handler.wfile.write(BODY)

    url = feed_server.add("/flaky", Route(handler=drop_once))
    results = fetch([FeedConfig("flaky", url)], FetchConfig(timeout=8, retries=2))
    assert results["flaky"].status == "ok"
    assert results["flaky"].attempts == 2
