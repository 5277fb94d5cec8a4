"""`curator feeds check`: every source fetched now, with status, last post, posts, errors and
what to do, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from conftest import FeedServer, Item, Route, rss, utc, write_config
from curator.config import load_config
from curator.manage import CheckRow, run_feeds_check

NOW = utc("2026-11-26T08:00")
FRESH = rss([
    Item("New", "https://w.example/new", utc("2026-11-20T10:00")),
    Item("Old", "https://w.example/old", utc("2026-10-01T10:00")),
])  # fmt: skip
STALE = rss([Item("Long ago", "https://w.example/ago", NOW - timedelta(days=200))])


def check(
    feed_server: FeedServer, tmp_path: Path, route: Route | bytes, fix: bool = False
) -> CheckRow:
    url = feed_server.add("/f", route)
    config = load_config(write_config(tmp_path, f"feeds:\n  - name: W\n    url: {url}\n"))
    (row,) = run_feeds_check(config, NOW, fix=fix).rows
    return row


def test_a_healthy_feed_reports_its_posts_and_last_post(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """ok, the count of posts and the newest date; nothing to suggest."""
    row = check(feed_server, tmp_path, FRESH)
    assert (row.failed, row.status, row.posts) == (False, "ok", 2)
    assert row.last_post == utc("2026-11-20T10:00")
    assert row.suggestions == ()


@pytest.mark.parametrize(
    ("status", "word"),
    [(404, "HTTP 404"), (410, "HTTP 410")],
)
def test_missing_and_gone_feeds_fail_and_suggest_removal(
    feed_server: FeedServer, tmp_path: Path, status: int, word: str
) -> None:
    """404 and 410 are failures whose suggestion is the command that removes the feed."""
    row = check(feed_server, tmp_path, Route(b"no", status=status, content_type="text/plain"))
    assert row.failed
    assert row.status == word
    assert row.suggestions == (f"remove it: curator feeds remove {feed_server.url('/f')}",)


def test_a_quiet_feed_is_flagged_but_healthy(feed_server: FeedServer, tmp_path: Path) -> None:
    """No post in six months: quiet, with the date of the last post; not a failure."""
    row = check(feed_server, tmp_path, STALE)
    assert (row.failed, row.status) == (False, "quiet")
    assert row.suggestions == (f"quiet: no post since {NOW - timedelta(days=200):%Y-%m-%d}",)


def test_a_permanent_redirect_suggests_the_new_address(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A 301 to a working feed: healthy, and the new URL is what --fix would write."""
    feed_server.add("/new", FRESH)
    row = check(feed_server, tmp_path, Route(status=301, headers={"Location": "/new"}))
    assert (row.failed, row.status, row.fix_url) == (False, "moved", feed_server.url("/new"))


def test_a_temporary_redirect_suggests_nothing(feed_server: FeedServer, tmp_path: Path) -> None:
    """A 302 may change back: the feed's address is left alone."""
    feed_server.add("/new", FRESH)
    row = check(feed_server, tmp_path, Route(status=302, headers={"Location": "/new"}))
    assert (row.status, row.fix_url) == ("ok", None)


def test_an_html_page_fails_and_suggests_its_discovered_feed(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A page instead of a feed: discovery runs and its feed is the suggestion."""
    feed_server.add("/rss", FRESH)
    page = Route(b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss">',
                 content_type="text/html")  # fmt: skip
    row = check(feed_server, tmp_path, page)
    assert row.failed
    assert row.error == "the address serves an HTML page, not a feed"
    assert row.fix_url == feed_server.url("/rss")


def test_an_unparseable_body_fails_with_the_parser_s_reason(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A body that is neither feed nor page is a failure with a reason and no fix."""
    row = check(feed_server, tmp_path, Route(b"just text", content_type="text/plain"))
    assert row.failed
    assert row.status == "bad feed"
    assert row.fix_url is None
    assert "not an RSS or Atom feed" in (row.error or "")


def test_check_exit_code_is_1_when_any_source_fails_and_fix_repairs_what_it_can(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Through the CLI: a failing page makes exit 1; --fix writes its feed URL and the next
    check is clean; a 404 is never removed by --fix."""
    from typer.testing import CliRunner

    from curator.cli import app

    feed_server.add("/ok", FRESH)
    feed_server.add("/rss", FRESH)
    feed_server.add(
        "/page",
        Route(b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss">',
              content_type="text/html"),
    )  # fmt: skip
    text = (
        f"feeds:\n  - name: Ok\n    url: {feed_server.url('/ok')}\n"
        f"  - name: Page\n    url: {feed_server.url('/page')}\n"
    )
    config = write_config(tmp_path, text)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--config", str(config), "feeds", "check", *args,
                                          "--now", "2026-11-26T08:00:00Z"])  # fmt: skip
        return result.exit_code, result.stdout + result.stderr

    code, out = run()
    assert code == 1
    assert "1 of 2 sources healthy; 1 failing" in out
    assert config.read_text() == text

    code, out = run("--fix")
    assert code == 0, out
    assert f"fixed 'Page': {feed_server.url('/page')} -> {feed_server.url('/rss')}" in out
    assert load_config(config).feeds[1].url == feed_server.url("/rss")

    config.write_text(config.read_text() + f"  - name: Lost\n    url: {feed_server.url('/lost')}\n")
    code, out = run("--fix")
    assert code == 1
    assert "curator feeds remove" in out
    assert len(load_config(config).feeds) == 3
