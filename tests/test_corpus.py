"""The corpus sweep: every real-world and hostile feed under ../shared/corpus, served from a local
HTTP server, goes through fetch, parse and the store without an exception; titles come out as
plain single-line text and dates as aware UTC (never off by a time zone) or absent."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import FeedServer, Route, corpus_dir
from curator.app import fetch_feeds
from curator.models import Config, EntryData, FeedConfig, FeedOutcome, FetchConfig
from curator.parse import MAX_ENTRIES
from curator.store import Store

# An extra, not run by default: `pytest -m corpus` (with ../shared/corpus or $CURATOR_CORPUS).
pytestmark = pytest.mark.corpus

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

# Files that are not feeds at all: each must end as a clean per-feed error, nothing more.
NOT_FEEDS = {
    "http-ok-but-html__notafeed.html",  # an HTML page
    "feedparser__rss-empty-document.xml",  # a comment and nothing else
    "gofeed__unknown-feed.xml",  # well-formed XML, neither RSS nor Atom
    "rss-parser__unrecognized.rss",  # XML that is not a feed
    "defusedxml__xmlbomb2.xml",  # an entity test document, not a feed
    "miniflux__iso88591-utf8-mismatch.xml",  # a <note> document in the wrong encoding
}

# Feeds whose publisher gave two different posts the same guid: those two are one entry.
SHARED_GUIDS = {"rss-parser__itunes-missing-image-leading-blank-line.rss"}


def corpus_files() -> list[Path]:
    root = corpus_dir()
    return sorted(
        path
        for folder in ("feeds", "hostile")
        for path in (root / folder).rglob("*")
        if path.is_file() and path.suffix != ".md"
    )


def content_type(path: Path) -> str:
    return "text/html; charset=utf-8" if path.suffix == ".html" else "application/xml"


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FeedOutcome]:
    """Every corpus file fetched from a local server and stored, by file name."""
    files = corpus_files()
    server = FeedServer()
    server.start()
    try:
        feeds = []
        for i, path in enumerate(files):
            route = Route(body=path.read_bytes(), content_type=content_type(path))
            feeds.append(FeedConfig(path.name, server.add(f"/{i}/{path.name}", route)))
        folder = tmp_path_factory.mktemp("corpus")
        config = Config(
            path=folder / "feeds.yaml",
            feeds=tuple(feeds),
            state_path=folder / "state.db",
            # One local host serves them all: lift the per-host limit meant for real sites.
            fetch=FetchConfig(per_host=16),
        )
        with Store.open(config.state_path) as store:
            outcomes = fetch_feeds(config, store, NOW)
    finally:
        server.stop()
    assert len({f.name for f in feeds}) == len(feeds), "corpus file names must be unique"
    return {o.feed.name: o for o in outcomes}


def is_plain_line(text: str) -> bool:
    """One line of text a person reads: no control or format characters, no line breaks,
    no surrounding or doubled white space."""
    if text != text.strip() or "  " in text:
        return False
    joiners = ("\u200c", "\u200d")  # meaningful in Persian, Indic scripts and emoji
    return not any(
        unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in joiners for ch in text
    )


def check_entry(entry: EntryData) -> list[str]:
    problems = []
    if not entry.title or not is_plain_line(entry.title) or len(entry.title) > 300:
        problems.append(f"title {entry.title!r}")
    if re.search(r"(?i)<\s*(script|iframe|object|embed)\b", entry.title):
        problems.append(f"markup in title {entry.title!r}")
    for name in ("published", "updated"):
        moment = getattr(entry, name)
        if moment is not None and moment.utcoffset() != timedelta(0):
            problems.append(f"{name} not UTC: {moment!r}")
    for name in ("link", "canonical_url", "image"):
        url = getattr(entry, name)
        if url is not None and not re.match(r"https?://[^\s/]+", url):
            problems.append(f"{name} not absolute http(s): {url!r}")
    if entry.excerpt and not is_plain_line(entry.excerpt):
        problems.append(f"excerpt {entry.excerpt[:60]!r}")
    if entry.author is not None and not is_plain_line(entry.author):
        problems.append(f"author {entry.author!r}")
    return problems


@pytest.mark.slow
def test_every_corpus_file_is_fetched_and_read_or_refused_cleanly(
    swept: dict[str, FeedOutcome],
) -> None:
    """Every file is fetched (200 from the local server); only the known non-feeds fail,
    each with a one-line reason."""
    assert len(swept) == len(corpus_files()) > 100
    for name, outcome in swept.items():
        assert outcome.fetch.status == "ok", (name, outcome.fetch.error)
    failed = {name for name, o in swept.items() if not o.ok}
    assert failed == NOT_FEEDS
    for name in failed:
        error = swept[name].error or ""
        assert error, name
        assert "\n" not in error, name


@pytest.mark.slow
def test_every_corpus_entry_has_plain_titles_utc_dates_and_absolute_links(
    swept: dict[str, FeedOutcome],
) -> None:
    """Titles, excerpts and authors are plain single lines; dates UTC; URLs absolute http(s);
    every entry of a feed has its own identity."""
    problems = {}
    entries = 0
    for name, outcome in swept.items():
        if outcome.parsed is None:
            continue
        if outcome.parsed.title is not None:
            assert is_plain_line(outcome.parsed.title), (name, outcome.parsed.title)
        keys = [e.key for e in outcome.parsed.entries]
        if len(set(keys)) != len(keys) and name not in SHARED_GUIDS:
            problems[name] = ["two entries share an identity"]
        for entry in outcome.parsed.entries:
            entries += 1
            if found := check_entry(entry):
                problems[f"{name}: {entry.key}"] = found
    assert not problems
    assert entries > 400


@pytest.mark.slow
def test_known_corpus_facts_survive(swept: dict[str, FeedOutcome]) -> None:
    """Facts the corpus READMEs state about particular files come out as stated."""

    def parsed(name: str) -> Any:
        result = swept[name].parsed
        assert result is not None, name
        return result

    heise = parsed("rss090-rdf-no-dates__heise.xml")
    assert len(heise.entries) == 60
    assert all(e.published is None for e in heise.entries)
    assert parsed("entities__gofeed-bare-ampersand.xml").title == "Fish & Chips & more <3"
    control = parsed("gofeed__illegal-control-char-in-title.xml")
    assert all("\x08" not in e.title for e in control.entries)
    cyrillic = parsed("rss2-windows-1251__ibash-org-ru.xml")
    assert len(cyrillic.entries) == 50
    assert cyrillic.entries[0].title.startswith("Цитата")
    assert len(parsed("node-feedparser__saxerror.xml").entries) == 3
    assert len(parsed("rss-parser__itunes-missing-image-leading-blank-line.rss").entries) == 131
    assert [e.title for e in parsed("simplepie__feed-utf16be.xml").entries] == ["Test feed title 1"]
    # Its entry links are relative ("/blog/2012/..."), so they resolve against where the feed
    # was fetched from: here, the local server.
    samruby = "atom-relative-urls__intertwingly-samruby.xml"
    origin = re.match(r"https?://[^/]+", swept[samruby].feed.url)
    assert origin is not None
    links = [e.link for e in parsed(samruby).entries]
    assert len(links) == 20
    assert all(link and link.startswith(f"{origin.group()}/blog/20") for link in links)
    cjk = parsed("atom-cjk__bbc-chinese.xml")
    assert cjk.entries[0].title == "白宫提名艾伦为北约最高司令官"


def oracle_date(raw: str) -> datetime | None:
    """The instant a raw feed date names, read independently of feedparser: RFC 822 or
    ISO 8601 with an explicit offset; None when the string is in any other form."""
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        try:
            moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is None or re.search(r"-0000\s*$", raw):
        return None
    return moment.astimezone(UTC)


@pytest.mark.slow
def test_corpus_dates_match_an_independent_reading_of_their_offsets(
    swept: dict[str, FeedOutcome],
) -> None:
    """Each dated entry's UTC instant equals what its raw date string says, zone included."""
    import feedparser  # the test's oracle needs the raw strings feedparser found

    checked = 0
    for path in corpus_files():
        parsed = swept[path.name].parsed
        if parsed is None:  # the non-feeds; the sweep above checks those
            continue
        raw_entries = feedparser.parse(path.read_bytes()).entries
        if not raw_entries:  # a feed curator reads and feedparser alone does not (UTF-16)
            continue
        assert len(parsed.entries) == min(len(raw_entries), MAX_ENTRIES), path.name
        for raw, entry in zip(raw_entries, parsed.entries, strict=False):
            key = next(
                (k for k in ("published", "created", "updated") if raw.get(f"{k}_parsed")), None
            )
            if key is None:
                assert entry.published is None, path.name
                continue
            expected = oracle_date(raw[key])
            if expected is not None:
                assert entry.published == expected, (path.name, raw[key])
                checked += 1
    assert checked > 200
