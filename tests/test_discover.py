"""Feed discovery: the pure page reading, and `curator feeds add` against pages on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CliResult, FeedServer, Item, Route, rss, run_cli, utc, write_config
from curator import discover
from curator.config import load_config

HTML = "text/html; charset=utf-8"
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Ron in Atom</title><id>urn:x</id>
<updated>2026-11-20T00:00:00Z</updated>
<entry><title>One</title><id>urn:1</id><link href="https://ron.example/1"/>
<updated>2026-11-20T00:00:00Z</updated></entry></feed>"""
JSON_FEED = json.dumps({
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Ron in JSON",
    "items": [{"id": "1", "url": "https://ron.example/1", "content_text": "hi"}],
}).encode()  # fmt: skip
START = "feeds:\n  - name: Existing\n    url: https://existing.example/feed/\n"


def page(head: str, body: str = "<p>Hello</p>") -> Route:
    html = f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
    return Route(html.encode(), content_type=HTML)


def blog(title: str = "Ron's Blog") -> bytes:
    return rss(
        [Item("Lead well", "https://ron.example/lead", utc("2026-11-20T10:00"))], title=title
    )


def run(config: Path, *args: str) -> CliResult:
    return run_cli(config, "feeds", *args)


# ---------------------------------------------------------------- pure


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<link rel="alternate" type="application/rss+xml" href="/feed/">',
         [("https://site.example/feed/", "rss")]),
        ('<link rel="alternate" type="application/atom+xml" href="atom.xml">',
         [("https://site.example/blog/atom.xml", "atom")]),
        ('<link rel="alternate" type="application/feed+json" href="https://cdn.example/f.json">',
         [("https://cdn.example/f.json", "json")]),
        ('<LINK REL="Alternate" TYPE="Application/RSS+XML; charset=utf-8" HREF="/r">',
         [("https://site.example/r", "rss")]),
        ('<base href="https://other.example/x/">'
         '<link rel="alternate" type="application/rss+xml" href="f">',
         [("https://other.example/x/f", "rss")]),
        ('<link rel="alternate" hreflang="fr" type="text/html" href="/fr/">', []),
        ('<link rel="stylesheet" type="text/css" href="/s.css">', []),
        ('<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">', []),
        ('<link rel="alternate" type="application/rss+xml" href="/feed/">'
         '<link rel="alternate" type="application/rss+xml" href="https://site.example/feed">',
         [("https://site.example/feed/", "rss")]),
    ],
)  # fmt: skip
def test_feed_links_are_absolute_typed_and_unique(
    head: str, expected: list[tuple[str, str]]
) -> None:
    """Link tags give absolute feed URLs of known types, once each; other links are ignored."""
    html = f"<html><head>{head}</head><body></body></html>"
    found = discover.feed_links(html, "https://site.example/blog/post.html")
    assert [(f.url, f.kind) for f in found] == expected


def test_feed_links_in_the_body_are_not_announcements() -> None:
    """A <link> after <body> starts is pasted markup, not the page's own feed."""
    html = '<html><head></head><body><link rel="alternate" type="application/rss+xml" href="/x">'
    assert discover.feed_links(html, "https://site.example/") == []


def test_guess_urls_try_the_page_folder_then_the_root() -> None:
    """A blog under /blog/ is probed at /blog/feed/ before /feed/, each URL once."""
    urls = discover.guess_urls("https://site.example/blog/")
    assert urls[:2] == ["https://site.example/blog/feed/", "https://site.example/blog/rss.xml"]
    assert "https://site.example/feed/" in urls
    assert len(urls) == len(set(urls)) == 10
    assert discover.guess_urls("https://site.example")[0] == "https://site.example/feed/"


@pytest.mark.parametrize(
    ("body", "content_type", "html"),
    [
        (b"<rss version='2.0'></rss>", "text/html", True),
        (b"<!DOCTYPE html><html></html>", None, True),
        (b"<?xml version='1.0'?><rss version='2.0'></rss>", "application/xml", False),
        (b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'/>", None, False),
    ],
)
def test_looks_like_html(body: bytes, content_type: str | None, html: bool) -> None:
    """A page is told from a feed by its type, else by its first tags."""
    assert discover.looks_like_html(body, content_type) is html


def test_decode_page_uses_the_meta_charset() -> None:
    """Without a charset header the page's <meta charset> decides how it is read."""
    body = '<meta charset="windows-1251"><title>Привет</title>'.encode("cp1251")
    assert "Привет" in discover.decode_page(body, "text/html")


# ---------------------------------------------------------------- against a real server


def test_add_finds_the_main_feed_from_link_tags_and_names_the_others(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Relative and absolute link tags of several types: RSS posts win over comments and
    JSON, the others are listed, and the name comes from the feed's title."""
    base = feed_server.base
    feed_server.add(
        "/",
        page(
            '<link rel="alternate" type="application/rss+xml" title="Comments"'
            ' href="/comments/feed/">'
            f'<link rel="alternate" type="application/feed+json" href="{base}/feed.json">'
            '<link rel="alternate" type="application/rss+xml" title="Posts" href="feed/">'
            f'<link rel="alternate" type="application/atom+xml" href="{base}/atom.xml">'
        ),
    )
    feed_server.add("/comments/feed/", rss([], title="Comments on Ron"))
    feed_server.add("/feed.json", Route(JSON_FEED, content_type="application/feed+json"))
    feed_server.add("/feed/", blog())
    feed_server.add("/atom.xml", Route(ATOM, content_type="application/atom+xml"))
    config = write_config(tmp_path, START)

    code, out, err = run(config, "add", f"{base}/", "--tag", "leadership", "--tag", "church")

    assert code == 0, err
    assert f'added "Ron\'s Blog": {base}/feed/' in out
    for other in ("/comments/feed/", "/feed.json", "/atom.xml"):
        assert f"{base}{other}" in out
    assert f"{base}/feed.json (json)" in out
    feeds = load_config(config).feeds
    assert feeds[-1].name == "Ron's Blog"
    assert feeds[-1].url == f"{base}/feed/"
    assert feeds[-1].tags == ("leadership", "church")


def test_add_falls_back_to_the_usual_paths_when_no_link_tag(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A page without link tags: /feed/ is found and confirmed by parsing it."""
    feed_server.add("/", page("<title>Ron</title>"))
    feed_server.add("/feed/", blog("Ron Edmondson"))
    config = write_config(tmp_path, START)

    code, out, err = run(config, "add", feed_server.url("/"))

    assert code == 0, err
    assert "via a usual feed path" in out
    assert load_config(config).feeds[-1].url == feed_server.url("/feed/")
    assert load_config(config).feeds[-1].name == "Ron Edmondson"


def test_add_a_page_with_no_feed_is_a_clear_error_and_changes_nothing(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """No link tag answers and no usual path answers: exit 1, one clear message, file intact."""
    feed_server.add("/", page('<link rel="alternate" type="application/rss+xml" href="/gone.xml">'))
    config = write_config(tmp_path, START)

    code, _, err = run(config, "add", feed_server.url("/"))

    assert code == 1
    assert f"no feed found at {feed_server.url('/')}" in err
    assert "gone.xml (HTTP 404" in err
    assert "Traceback" not in err
    assert config.read_text() == START


def test_add_follows_a_redirecting_site_and_keeps_a_moved_feed_s_new_address(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The site's old address redirects to its page; relative links resolve against the page
    reached, and a feed that moved for good is stored at its new address."""
    feed_server.add("/old", Route(status=301, headers={"Location": "/home/"}))
    feed_server.add(
        "/home/", page('<link rel="alternate" type="application/rss+xml" href="rss.xml">')
    )
    feed_server.add("/home/rss.xml", Route(status=308, headers={"Location": "/new-rss.xml"}))
    feed_server.add("/new-rss.xml", blog())
    config = write_config(tmp_path, START)

    code, _out, err = run(config, "add", feed_server.url("/old"))

    assert code == 0, err
    assert load_config(config).feeds[-1].url == feed_server.url("/new-rss.xml")


def test_add_a_feed_url_directly_with_a_name(feed_server: FeedServer, tmp_path: Path) -> None:
    """A feed's own URL is used as it is; --name replaces its title."""
    url = feed_server.add("/atom.xml", Route(ATOM, content_type="application/atom+xml"))
    config = write_config(tmp_path, START)

    code, out, err = run(config, "add", url, "--name", "Ron")

    assert code == 0, err
    assert "(atom, 1 posts, via the address itself)" in out
    assert load_config(config).feeds[-1].name == "Ron"


@pytest.mark.parametrize(
    "variant",
    ["https://Existing.example/feed", "http://www.existing.example/feed/?utm_source=x"],
)
def test_add_refuses_a_feed_already_listed(tmp_path: Path, variant: str) -> None:
    """The same canonical URL is refused before any network traffic, naming the listed feed."""
    config = write_config(tmp_path, START)

    code, _, err = run(config, "add", variant)

    assert code == 1
    assert "already listed" in err
    assert "'Existing'" in err
    assert config.read_text() == START


def test_add_refuses_a_discovered_feed_already_listed(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A site whose feed is already listed under its feed URL is refused after discovery."""
    feed_server.add("/", page('<link rel="alternate" type="application/rss+xml" href="/feed/">'))
    feed_server.add("/feed/", blog())
    text = f"feeds:\n  - name: Ron\n    url: {feed_server.url('/feed/')}\n"
    config = write_config(tmp_path, text)

    code, _, err = run(config, "add", feed_server.url("/"))

    assert code == 1
    assert "already listed" in err
    assert config.read_text() == text


def test_add_takes_a_site_that_offers_only_json_feed(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A site with only a JSON Feed: it is found, read, and added under its own title."""
    feed_server.add("/", page('<link rel="alternate" type="application/feed+json" href="/f.json">'))
    feed_server.add("/f.json", Route(JSON_FEED, content_type="application/feed+json"))
    config = write_config(tmp_path, START)

    code, out, err = run(config, "add", feed_server.url("/"))

    assert code == 0, err
    assert f"added 'Ron in JSON': {feed_server.url('/f.json')} (json, 1 posts" in out
    assert load_config(config).feeds[-1].url == feed_server.url("/f.json")


def test_add_creates_feeds_yaml_when_there_is_none(feed_server: FeedServer, tmp_path: Path) -> None:
    """A first `feeds add` starts a feeds.yaml that load_config accepts."""
    url = feed_server.add("/feed/", blog())
    config = tmp_path / "feeds.yaml"

    code, _, err = run(config, "add", url)

    assert code == 0, err
    assert [f.url for f in load_config(config).feeds] == [url]


def test_add_refuses_an_invalid_config_before_any_network(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A feeds.yaml with an error elsewhere is reported with file:line: key; nothing fetched."""
    url = feed_server.add("/feed/", blog())
    config = write_config(tmp_path, START + "newsletter:\n  titel: x\n")

    code, _, err = run(config, "add", url)

    assert code == 2
    assert "newsletter.titel: unknown key" in err
    assert feed_server.requests == []
