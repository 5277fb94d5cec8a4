"""JSON Feed (jsonfeed.org) bodies are read like RSS and Atom: plain text, UTC, safe links."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from curator.errors import ParseError
from curator.parse import parse_feed

URL = "https://ron.example/feed.json"


def _feed(*items: dict[str, object], **top: object) -> bytes:
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "Ron", **top}
    document["items"] = list(items)
    return json.dumps(document).encode()


def test_a_json_feed_item_becomes_a_normalized_entry() -> None:
    """Title, link, dates, author, tags, image and excerpt all come through, cleaned."""
    body = _feed(
        {
            "id": "https://ron.example/p/1?utm_source=rss",
            "url": "/p/1",
            "title": "Lead  <b>well</b>\n today",
            "content_html": "<p>First sentence. Second one.</p><script>x()</script>",
            "date_published": "2026-11-25T10:00:00-05:00",
            "date_modified": "2026-11-26T10:00:00Z",
            "authors": [{"name": "Ron Edmondson"}],
            "tags": ["leadership", "", 7],
            "image": "https://ron.example/i.jpg",
        },
        home_page_url="https://ron.example/",
    )
    parsed = parse_feed(body, URL, "application/feed+json")
    assert parsed.title == "Ron"
    (entry,) = parsed.entries
    # JSON Feed titles are plain text by the spec: markup in one is what the writer typed.
    assert entry.title == "Lead <b>well</b> today"
    assert entry.link == "https://ron.example/p/1"
    assert entry.published == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert entry.updated == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert entry.author == "Ron Edmondson"
    assert entry.categories == ("leadership",)
    assert entry.image == "https://ron.example/i.jpg"
    assert entry.excerpt == "First sentence. Second one."
    assert entry.key == "url:ron.example/p/1"


@pytest.mark.parametrize(
    "item",
    [
        {"url": "javascript:alert(1)", "content_text": "x"},
        {"url": "data:text/html,x", "title": "t"},
        {"external_url": "vbscript:x", "title": "t"},
    ],
)
def test_unsafe_links_in_a_json_feed_are_dropped(item: dict[str, object]) -> None:
    """Only http(s) links survive, as for RSS and Atom."""
    (entry,) = parse_feed(_feed(item), URL).entries
    assert entry.link is None


def test_odd_items_cost_only_themselves() -> None:
    """An item that is not an object is skipped with a warning; the others are read."""
    odd: object = "not an item"
    parsed = parse_feed(_feed({"id": "1", "title": "Good"}, odd), URL)  # type: ignore[arg-type]  # an item that breaks the schema, on purpose
    assert [e.title for e in parsed.entries] == ["Good"]
    assert parsed.warning is not None and "1 entries could not be read" in parsed.warning


def test_json_that_is_not_a_json_feed_is_not_a_feed() -> None:
    """Other JSON falls through to the XML reader and is refused as not a feed."""
    with pytest.raises(ParseError):
        parse_feed(b'{"hello": "world"}', URL, "application/json")


def test_a_json_feed_without_items_is_an_error() -> None:
    """A JSON Feed must list its items."""
    body = json.dumps({"version": "https://jsonfeed.org/version/1", "title": "x"}).encode()
    with pytest.raises(ParseError, match="no list of items"):
        parse_feed(body, URL)
