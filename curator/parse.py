"""Turn a fetched body into a :class:`ParsedFeed`. The only module that imports feedparser.

feedparser is only ever handed bytes curator fetched itself (wrapped in a file object, so it can
never mistake them for a URL or a file name to open). Everything that leaves this module is
normalized: plain-text titles, absolute http(s) links, aware UTC dates.

:func:`parse_feed` is a plain top-level function of picklable values; :class:`ParsePool` runs it
in worker processes (feedparser is CPU-bound) so the event loop keeps fetching while bodies are
parsed, and so a parser that dies on one hostile body costs that feed alone.

Longer than the ~450 lines a module should keep to, on purpose: it is the one module that
imports feedparser, so everything read from feedparser's entries (pictures, media, durations)
and the guard run before it (internal entities) live here.
"""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import re
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from typing import Any, cast

from curator import normalize as nz
from curator.errors import ParseError
from curator.models import EntryData, MediaKind, ParsedFeed

EXCERPT_CHARS = 320
MAX_ENTRIES = 500
_QUIET_BOZO = frozenset({"NonXMLContentType", "CharacterEncodingOverride"})


def _date(entry: Mapping[str, Any], *keys: str) -> datetime | None:
    for key in keys:
        # dict.get skips FeedParserDict's key aliases (and their deprecation warnings).
        value = dict.get(cast("dict[str, Any]", entry), key)
        if isinstance(value, time.struct_time):
            try:
                # feedparser hands back UTC struct_times whatever zone the feed used.
                return datetime(*value[:6], tzinfo=UTC)
            except (ValueError, OverflowError):
                continue
    return None


def _content_html(entry: Mapping[str, Any]) -> str:
    contents = entry.get("content") or []
    best = ""
    for content in contents:
        value = content.get("value") or ""
        if len(value) > len(best):
            best = value
    return best


def _is_markup(detail: Mapping[str, Any]) -> bool:
    """Whether a text construct holds HTML; feedparser says ``text/plain`` for plain text."""
    return str(detail.get("type") or "text/html") != "text/plain"


def _show_art(feed_meta: Mapping[str, Any]) -> str | None:
    """The show's own picture (the channel's itunes:image, else its RSS image): what an
    episode without art of its own is shown with, as podcast apps do."""
    image = feed_meta.get("image")
    if isinstance(image, Mapping):
        url = image.get("href") or image.get("url")
        return url if isinstance(url, str) else None
    return None


def _entry(entry: Mapping[str, Any], base: str, show_art: str | None = None) -> EntryData:
    entry_base = base
    detail = entry.get("title_detail") or {}
    if detail.get("base"):
        entry_base = nz.safe_http_url(detail["base"], base) or base
    link = nz.safe_http_url(entry.get("feedburner_origlink") or entry.get("link"), entry_base)
    if link is None:
        for candidate in entry.get("links") or []:
            if candidate.get("rel", "alternate") == "alternate":
                link = nz.safe_http_url(candidate.get("href"), entry_base)
                if link:
                    break
    title = nz.clean_title(entry.get("title"), fallback="", markup=_is_markup(detail))
    content = _content_html(entry)
    summary = entry.get("summary") or ""
    body_text = nz.plain_text(content) if content else nz.plain_text(summary)
    excerpt_source = nz.plain_text(summary) if summary else body_text
    if not title:
        title = nz.cut_text(nz.strip_trailers(excerpt_source), 80) or "(untitled)"
    published = _date(entry, "published_parsed", "created_parsed", "updated_parsed")
    updated = _date(entry, "updated_parsed")
    candidates = _image_candidates(entry, content or summary, entry_base)
    media_kind, duration = _media(entry)
    if media_kind is not None and show_art:
        # Last resort, for audio and video only: a text post is better with no picture than
        # with the site's logo again.
        checked = nz.safe_http_url(show_art, entry_base)
        if checked:
            candidates.append(nz.ImageCandidate(checked, rank=2))
    picture = nz.choose_picture(candidates)
    categories = tuple(
        dict.fromkeys(
            nz.single_line(tag.get("term") or tag.get("label"), 60)
            for tag in entry.get("tags") or []
            if tag.get("term") or tag.get("label")
        )
    )
    guid = entry.get("id") or entry.get("guid")
    author = (entry.get("author_detail") or {}).get("name") or entry.get("author")
    return EntryData(
        key=nz.entry_key(guid, link, title, published.isoformat() if published else None),
        title=title,
        link=link,
        canonical_url=nz.canonical_url(link),
        author=nz.author_name(author),
        published=published,
        updated=updated,
        excerpt=nz.excerpt_text(excerpt_source, EXCERPT_CHARS, title),
        word_count=nz.word_count(body_text),
        image=picture.url if picture else None,
        categories=categories[:20],
        duration=duration,
        media_kind=media_kind,
        image_width=picture.width if picture else None,
        image_height=picture.height if picture else None,
    )


def _image_candidates(entry: Mapping[str, Any], markup: str, base: str) -> list[nz.ImageCandidate]:
    """Every picture the entry offers: declared ones (media:content, media:thumbnail, image
    enclosures, then itunes:image), then the ``<img>`` of its text."""
    found: list[nz.ImageCandidate] = []

    def add(url: object, rank: int, **facts: Any) -> None:
        checked = nz.safe_http_url(url if isinstance(url, str) else None, base)
        if checked:
            found.append(nz.ImageCandidate(checked, rank=rank, **facts))

    for media in entry.get("media_content") or []:
        add(
            media.get("url"),
            0,
            mime=media.get("type") or None,
            medium=media.get("medium"),
            width=nz.parse_size(media.get("width")),
            height=nz.parse_size(media.get("height")),
        )
    for media in entry.get("media_thumbnail") or []:
        width, height = nz.parse_size(media.get("width")), nz.parse_size(media.get("height"))
        add(media.get("url"), 0, width=width, height=height)
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type") or "").startswith("image/"):
            add(link.get("href"), 0, mime=link.get("type"))
    image = entry.get("image")
    if isinstance(image, Mapping):
        # itunes:image: an episode's own art, often the show's cover again.
        add(image.get("href") or image.get("url"), 1, mime=None)
    return found + nz.image_candidates(markup, base)


def _media(entry: Mapping[str, Any]) -> tuple[MediaKind | None, int | None]:
    """Whether the entry is an audio or video episode, and how long it runs in seconds."""
    kind: MediaKind | None = None
    duration = nz.parse_duration(entry.get("itunes_duration"))
    typed = [
        (str(link.get("type") or ""), None)
        for link in entry.get("links") or []
        if link.get("rel") == "enclosure"
    ] + [
        (str(media.get("type") or media.get("medium") or ""), media.get("duration"))
        for media in entry.get("media_content") or []
    ]
    for mime, media_duration in typed:
        for candidate in ("audio", "video"):
            if mime.startswith(candidate):
                kind = kind or ("audio" if candidate == "audio" else "video")
                duration = duration or nz.parse_duration(media_duration)
    return kind, duration


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _rfc3339(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # JSON Feed dates carry an offset; one that does not is read as UTC rather than dropped.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _json_entry(item: Mapping[str, Any], base: str) -> EntryData:
    link = nz.safe_http_url(_text(item.get("url")) or _text(item.get("external_url")), base)
    html = _text(item.get("content_html"))
    summary = nz.plain_text(_text(item.get("summary")))
    body_text = nz.plain_text(html) if html else " ".join(_text(item.get("content_text")).split())
    excerpt_source = summary or body_text
    title = nz.clean_title(_text(item.get("title")), fallback="", markup=False)
    if not title:
        title = nz.cut_text(nz.strip_trailers(excerpt_source), 80) or "(untitled)"
    published = _rfc3339(item.get("date_published"))
    updated = _rfc3339(item.get("date_modified"))
    declared = [
        nz.ImageCandidate(url)
        for raw in (_text(item.get("image")), _text(item.get("banner_image")))
        if (url := nz.safe_http_url(raw, base))
    ]
    picture = nz.choose_picture(declared + nz.image_candidates(html, base))
    kind: MediaKind | None = None
    duration: int | None = None
    attachments = item.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        mime = _text(attachment.get("mime_type")) if isinstance(attachment, Mapping) else ""
        if mime.startswith(("audio/", "video/")) and kind is None:
            kind = "audio" if mime.startswith("audio/") else "video"
            duration = nz.parse_duration(attachment.get("duration_in_seconds"))
    authors = item.get("authors")
    first_author = authors[0] if isinstance(authors, list) and authors else item.get("author")
    author = first_author.get("name") if isinstance(first_author, Mapping) else None
    raw_tags = item.get("tags")
    tags: list[object] = raw_tags if isinstance(raw_tags, list) else []
    guid = item.get("id")
    return EntryData(
        key=nz.entry_key(
            str(guid) if guid is not None else None,
            link,
            title,
            published.isoformat() if published else None,
        ),
        title=title,
        link=link,
        canonical_url=nz.canonical_url(link),
        author=nz.author_name(_text(author)),
        published=published,
        updated=updated,
        excerpt=nz.excerpt_text(excerpt_source, EXCERPT_CHARS, title),
        word_count=nz.word_count(body_text),
        image=picture.url if picture else None,
        duration=duration,
        media_kind=kind,
        image_width=picture.width if picture else None,
        image_height=picture.height if picture else None,
        categories=tuple(dict.fromkeys(nz.single_line(_text(t), 60) for t in tags if _text(t)))[
            :20
        ],
    )


def _json_feed(body: bytes, url: str) -> ParsedFeed | None:
    """A JSON Feed (jsonfeed.org, versions 1 and 1.1), or None when ``body`` is not one."""
    if body.lstrip()[:1] != b"{":
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or "jsonfeed.org" not in _text(document.get("version")):
        return None
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("the JSON Feed has no list of items")
    entries: list[EntryData] = []
    skipped: list[str] = []
    for item in items[:MAX_ENTRIES]:
        try:
            if not isinstance(item, dict):
                raise TypeError("an item is not an object")
            entries.append(_json_entry(item, url))
        # One odd item must not cost the feed its others, as for RSS and Atom.
        except Exception as exc:
            skipped.append(type(exc).__name__)
    warning = f"{len(skipped)} entries could not be read ({skipped[0]})" if skipped else None
    title = nz.clean_title(_text(document.get("title")), fallback="", markup=False)
    link = nz.safe_http_url(_text(document.get("home_page_url")), url) or url
    return ParsedFeed(
        title=nz.cut_text(title, 200) or None, link=link, entries=tuple(entries), warning=warning
    )


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse ``body`` fetched from ``url``; raise ParseError when it is not a feed at all.

    RSS, RDF and Atom go through feedparser; a JSON Feed is read here with the json module."""
    import feedparser

    as_json = _json_feed(body, url)
    if as_json is not None:
        return as_json

    body = without_internal_entities(_utf16_without_bom(body))
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    try:
        # No HTML from a feed ever reaches the email: curator keeps plain text and resolves
        # and checks the few URLs it uses itself. feedparser's rewriting of every relative
        # link inside content, about a fifth of its time, would be work thrown away. Its
        # sanitizer stays on: it drops script and style bodies a text extractor would keep.
        parsed = feedparser.parse(
            io.BytesIO(body), response_headers=headers, resolve_relative_uris=False
        )
    except Exception as exc:  # feedparser promises not to raise; a crash is still one feed's
        raise ParseError(f"the feed could not be parsed: {type(exc).__name__}") from exc
    version = parsed.get("version") or ""
    entries_raw = parsed.get("entries") or []
    feed_meta = parsed.get("feed") or {}
    if not version and not entries_raw:
        head = body[:2048].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
            raise ParseError("the address serves an HTML page, not a feed")
        if not body.strip():
            raise ParseError("the server sent an empty body")
        problem = parsed.get("bozo_exception")
        reason = f": {_short(problem)}" if problem else ""
        raise ParseError(f"the body is not an RSS or Atom feed{reason}")
    base = nz.safe_http_url(feed_meta.get("link"), url) or url
    # feedparser has already resolved links against xml:base and the content location;
    # what is still relative is resolved against the feed's own URL.
    entries: list[EntryData] = []
    skipped: list[str] = []
    show_art = _show_art(feed_meta)
    for raw in entries_raw[:MAX_ENTRIES]:
        try:
            entries.append(_entry(raw, url, show_art))
        # One odd entry must not cost the feed its others; the warning names what happened.
        except Exception as exc:
            skipped.append(type(exc).__name__)
    warnings = []
    problem = parsed.get("bozo_exception")
    # A missing or overridden content type is ordinary on the web, not worth a warning.
    if problem is not None and type(problem).__name__ not in _QUIET_BOZO:
        warnings.append(f"read with repairs: {_short(problem)}")
    if skipped:
        warnings.append(f"{len(skipped)} entries could not be read ({skipped[0]})")
    warning = "; ".join(warnings) or None
    title_detail = feed_meta.get("title_detail") or {}
    title = nz.clean_title(feed_meta.get("title"), fallback="", markup=_is_markup(title_detail))
    return ParsedFeed(
        title=nz.cut_text(title, 200) or None, link=base, entries=tuple(entries), warning=warning
    )


_XML_ENCODING = re.compile(rb"""^(<\?xml[^>]*?encoding=)(["'])[^"']*\2""")


def _utf16_without_bom(body: bytes) -> bytes:
    """UTF-16 without a byte-order mark, which feedparser cannot read, as UTF-8.

    XML 1.0 appendix F: a document starting ``00 3C`` or ``3C 00`` is UTF-16, big- or
    little-endian. The encoding declaration is rewritten to match the new bytes.
    """
    if len(body) < 4 or body[:2] not in (b"\x00<", b"<\x00") or body[2:4] in (b"\x00\x00",):
        return body
    codec = "utf-16-be" if body[0] == 0 else "utf-16-le"
    try:
        text = body.decode(codec)
    except UnicodeDecodeError:
        return body
    return _XML_ENCODING.sub(rb"\1\2utf-8\2", text.encode("utf-8"), count=1)


# ---------------------------------------------------------------- hostile input, before parsing

_DOCTYPE = re.compile(rb"<!DOCTYPE\b", re.IGNORECASE)


def without_internal_entities(body: bytes) -> bytes:
    """``body`` with the internal subset of every DOCTYPE removed, before feedparser sees it.

    An internal subset declares entities; one 100 KB entity referenced 10,000 times makes
    feedparser's fallback parser build gigabytes of text from a body of 130 KB (and nested
    ones grow faster still). No feed needs its own entity declarations, so ``<!DOCTYPE rss [
    ... ]>`` becomes ``<!DOCTYPE rss>``: a reference to a removed entity is left as text, and
    the work stays proportional to the body. A UTF-16 body is read as UTF-8 first, so the
    subset is found whatever the encoding.
    """
    body = _as_utf8_if_utf16(body)
    if not _DOCTYPE.search(body):
        return body
    out = bytearray()
    position = 0
    for match in _DOCTYPE.finditer(body):
        if match.start() < position:
            continue  # inside a subset already removed
        opening = _subset_start(body, match.end())
        if opening is None:
            continue
        closing = _subset_end(body, opening + 1)
        out += body[position:opening]
        position = closing
    out += body[position:]
    return bytes(out)


def _subset_start(body: bytes, start: int) -> int | None:
    """Where the ``[`` of the DOCTYPE starting before ``start`` is, or None when it has none."""
    quote = 0
    for index in range(start, len(body)):
        char = body[index]
        if quote:
            if char == quote:
                quote = 0
        elif char in b"\"'":
            quote = char
        elif char == ord("["):
            return index
        elif char == ord(">"):
            return None
    return None


def _subset_end(body: bytes, start: int) -> int:
    """The index just past the ``]`` that closes the internal subset opened before ``start``
    (quoted strings and comments skipped), or the end of the body."""
    index = start
    size = len(body)
    while index < size:
        char = body[index]
        if char in b"\"'":
            close = body.find(bytes([char]), index + 1)
            index = size if close < 0 else close + 1
        elif body.startswith(b"<!--", index):
            close = body.find(b"-->", index + 4)
            index = size if close < 0 else close + 3
        elif char == ord("]"):
            return index + 1
        else:
            index += 1
    return size


def _as_utf8_if_utf16(body: bytes) -> bytes:
    if body[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        return body
    try:
        text = body.decode("utf-16")
    except UnicodeDecodeError:
        return body
    return _XML_ENCODING.sub(rb"\1\2utf-8\2", text.encode("utf-8"), count=1)


def _short(exc: object) -> str:
    text = nz.single_line(str(exc), 160)
    return text or type(exc).__name__


class ParsePool:
    """Runs :func:`parse_feed` off the event loop: in worker processes, or in a thread.

    ``workers`` of 0 or 1 parses in the loop's default thread pool: a process pool costs more
    to start than it saves on a handful of feeds. With a pool, a worker that dies (a C-level
    crash, the OOM killer) breaks every parse in flight; each of those is tried once more in a
    fresh process of its own, so only the body that kills a parser alone is reported as failed,
    and later feeds get a new shared pool.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = self._start(workers) if workers > 1 else None

    @staticmethod
    def _start(workers: int) -> ProcessPoolExecutor:
        # fork: workers start in milliseconds with feedparser already imported. The pool is
        # warmed at once, before any socket is open, so no child holds a copy of one.
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork")
        )
        pool.submit(int).result()
        return pool

    async def parse(self, body: bytes, url: str, content_type: str | None) -> ParsedFeed:
        """Parse one body; raise ParseError when it is not a feed or kills the parser."""
        loop = asyncio.get_running_loop()
        pool = self._pool
        try:
            return await loop.run_in_executor(pool, parse_feed, body, url, content_type)
        except BrokenProcessPool:
            if pool is self._pool and pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start(self.workers)
        alone = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        try:
            return await loop.run_in_executor(alone, parse_feed, body, url, content_type)
        except BrokenProcessPool:
            raise ParseError("the feed made the parser crash") from None
        finally:
            alone.shutdown(wait=False)

    def close(self) -> None:
        """Stop the workers; parses still queued are dropped."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
