"""Fetching against a real HTTP server on 127.0.0.1: a server that stalls and then drops the
line is not tried again in the run (only fast failures are), and redirects never leave http(s)
or lead a public feed into private address space."""

from __future__ import annotations

import asyncio
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
import respx

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


def test_a_redirect_to_ws_is_not_followed_nor_suggested(feed_server: FeedServer) -> None:
    """A permanent redirect to ws:// fails the feed with a reason and is never offered as the
    feed's new address; the ws target is never asked."""
    target = feed_server.url("/socket").replace("http://", "ws://")
    url = feed_server.add("/moved", Route(status=301, headers={"Location": target}))
    result = fetch([FeedConfig("moved", url)], FetchConfig(timeout=5))["moved"]
    assert result.status == "failed"
    assert "not http(s)" in (result.error or "")
    assert result.permanent_redirect is None
    assert feed_server.hits("/socket") == []


def test_a_private_feed_may_redirect_within_private_space(feed_server: FeedServer) -> None:
    """A feed configured at a private address (127.0.0.1 here) may redirect to another one."""
    final = feed_server.add("/final", BODY)
    url = feed_server.add("/hop", Route(status=302, headers={"Location": final}))
    result = fetch([FeedConfig("hop", url)], FetchConfig(timeout=5))["hop"]
    assert result.status == "ok"


@pytest.mark.parametrize(
    "target_host", ["127.0.0.1", "169.254.169.254", "10.1.2.3", "[::1]", "[fd00::1]"]
)
def test_a_public_feed_is_not_followed_into_private_space(
    feed_server: FeedServer, target_host: str
) -> None:
    """A feed at a public address that redirects into loopback, link-local or private space is
    refused before any request goes there (the local server is never asked)."""
    local = feed_server.add("/secret", BODY)
    port = local.rsplit(":", 1)[1].split("/", 1)[0]
    location = f"http://{target_host}:{port}/secret"
    public = "http://93.184.215.14/feed.xml"  # a public address; only the mock answers it
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()
        answer = httpx.Response(302, headers={"Location": location})
        route = mock.get(public).mock(return_value=answer)
        result = fetch([FeedConfig("public", public)], FetchConfig(timeout=3))["public"]
    assert route.called
    assert result.status == "failed"
    assert "from a public address into a private one" in (result.error or "")
    assert feed_server.hits("/secret") == []
