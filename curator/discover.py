"""Find a site's feeds from its HTML page. Pure: no network, no third-party imports.

The network half of discovery (fetching the page and confirming each candidate by parsing it)
lives in :mod:`curator.manage`; everything here takes text and returns values, so it is tested
with tables of pages and the links they must yield.

Candidates come first from ``<link rel="alternate" type="...">`` tags (RSS, Atom, JSON Feed),
then from the paths blogging engines use (:data:`COMMON_PATHS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

from curator import normalize as nz

FeedKind = Literal["rss", "atom", "rdf", "json", "feed"]

# MIME type of a <link rel="alternate"> -> the kind of feed it announces.
FEED_TYPES: dict[str, FeedKind] = {
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    "application/rdf+xml": "rdf",
    "application/feed+json": "json",
    "application/json": "json",
    "application/x.atom+xml": "atom",
    "application/x-atom+xml": "atom",
    "text/xml": "feed",
    "application/xml": "feed",
}
# Tried, in this order, when the page links to no feed that answers. The ones without a
# leading slash are tried against the page's own folder too (a blog under /blog/).
COMMON_PATHS = ("feed/", "rss.xml", "atom.xml", "index.xml", "feed.xml")
# Only the first part of a page is searched: <link> tags live in <head>, and a huge page
# should not cost more than that.
HEAD_CHARS = 512 * 1024
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)


@dataclass(frozen=True)
class FeedLink:
    """A feed a page announces: absolute URL, its kind and the title the page gives it."""

    url: str
    kind: FeedKind
    title: str = ""


class _LinkFinder(HTMLParser):
    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = page_url
        self.links: list[tuple[str, str, str]] = []  # (href, type, title) in page order
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and values.get("href"):
            # <base href> changes what relative hrefs mean; only the first one counts.
            joined = nz.safe_http_url(values["href"], self.base)
            if joined:
                self.base = joined
        elif tag == "link":
            rels = values.get("rel", "").lower().split()
            if "alternate" in rels and "stylesheet" not in rels and values.get("href"):
                mime = values.get("type", "").split(";")[0].strip().lower()
                self.links.append((values["href"], mime, values.get("title", "")))
        elif tag == "body":
            # Feed links belong to <head>; a <link> in the body is usually pasted markup.
            self.done = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def feed_links(html: str, page_url: str) -> list[FeedLink]:
    """The feeds an HTML page announces with ``<link rel="alternate">``, absolute, in page
    order, each URL once. Links of other types (a translation, a print view) are left out."""
    finder = _LinkFinder(page_url)
    try:
        finder.feed(html[:HEAD_CHARS])
        finder.close()
    except (AssertionError, ValueError):
        # html.parser gives up on some broken markup; what it found until then still counts.
        pass
    found: list[FeedLink] = []
    seen: set[str] = set()
    for href, mime, title in finder.links:
        kind = FEED_TYPES.get(mime)
        if kind is None:
            continue
        url = nz.safe_http_url(href, finder.base)
        identity = nz.url_identity(url)
        if url is None or identity is None or identity in seen:
            continue
        seen.add(identity)
        found.append(FeedLink(url, kind, nz.single_line(title, 120)))
    return found


def guess_urls(page_url: str) -> list[str]:
    """The usual feed addresses for a page: its own folder first (a blog under /blog/), then
    the site's root; each once."""
    parts = urlsplit(page_url)
    folder = parts.path if parts.path.endswith("/") else parts.path.rsplit("/", 1)[0] + "/"
    bases = [folder, "/"] if folder not in ("", "/") else ["/"]
    urls: list[str] = []
    for base in bases:
        for path in COMMON_PATHS:
            url = urlunsplit((parts.scheme, parts.netloc, urljoin(base, path), "", ""))
            if url not in urls:
                urls.append(url)
    return urls


def decode_page(body: bytes, content_type: str | None) -> str:
    """An HTML body as text: the charset from the header, else from a <meta>, else UTF-8.
    Undecodable bytes become U+FFFD: a link tag is ASCII and survives that."""
    charset = None
    if content_type:
        match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)
        charset = match.group(1) if match else None
    if charset is None:
        match_meta = _CHARSET.search(body[:4096])
        charset = match_meta.group(1).decode("ascii") if match_meta else None
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    """True when a body is a web page rather than a feed (by type, else by its first tag)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in ("text/html", "application/xhtml+xml"):
        return True
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or (
        b"<html" in head and b"<rss" not in head and b"<feed" not in head
    )


def is_comments_feed(url: str, title: str) -> bool:
    """A feed of comments rather than posts (WordPress announces both on every page)."""
    text = f"{url} {title}".lower()
    return "comments" in text or "/comment/" in text
