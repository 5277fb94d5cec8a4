"""The library entry points of ``curator feeds``: add, remove, check, import, export.

Each command is one function here that the CLI calls. The network goes through
:class:`curator.fetch.Fetcher` (the same bounds as every feed fetch), pages are read by the
pure :mod:`curator.discover`, feeds by :mod:`curator.parse`, OPML by :mod:`curator.opml`, and
every change to feeds.yaml is made by :mod:`curator.sources`, which keeps the user's lines.

Longer than the ~450 lines a module should keep to, on purpose: ``feeds add`` and ``feeds check``
share one way of probing a URL (fetch, parse or discover, suggest), kept in one file so the two
commands can never judge the same URL differently.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from curator import discover, sources
from curator import normalize as nz
from curator.config import likely_url, load_config, url_problem
from curator.errors import ConfigError, CuratorError, ParseError, SourcesError
from curator.files import atomic_write
from curator.models import Config, FeedConfig, FeedHealth, FetchConfig, FetchResult, Validators
from curator.store import Store

if TYPE_CHECKING:
    import httpx

    from curator.fetch import Fetcher

# A source with no post for this long is flagged as quiet by `feeds check`.
QUIET_AFTER = timedelta(days=183)


# ---------------------------------------------------------------- discovery


T = TypeVar("T")


@dataclass(frozen=True)
class Candidate:
    """A feed found for a site, confirmed by fetching it."""

    url: str
    kind: discover.FeedKind
    title: str
    via: str  # how it was found, for people: "the address itself", "a <link> on the page"...
    posts: int = 0


@dataclass(frozen=True)
class Discovery:
    """The feed to follow for an address, and the other feeds the site offers."""

    requested: str
    main: Candidate
    others: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class _Probe:
    result: FetchResult
    candidate: Candidate | None = None
    problem: str | None = None
    html: bool = False


def _kind(body: bytes) -> discover.FeedKind:
    if body.lstrip()[:1] == b"{":
        return "json"
    head = body[:2048].lower()
    if b"<feed" in head:
        return "atom"
    if b"<rdf" in head:
        return "rdf"
    return "rss"


def _read(result: FetchResult, url: str, via: str) -> _Probe:
    """What a fetched body is: a feed curator can read, a page, or nothing."""
    from curator.parse import parse_feed

    if not result.ok or result.body is None:
        return _Probe(result, problem=result.error or f"HTTP {result.http_status}")
    body = result.body
    # Keep the address as given unless every redirect on the way was permanent.
    address = result.permanent_redirect or url
    if discover.looks_like_html(body, result.content_type):
        return _Probe(result, problem="the address serves an HTML page, not a feed", html=True)
    try:
        parsed = parse_feed(body, result.final_url or url, result.content_type)
    except ParseError as exc:
        return _Probe(result, problem=str(exc))
    candidate = Candidate(address, _kind(body), parsed.title or "", via, posts=len(parsed.entries))
    return _Probe(result, candidate)


async def _probe(fetcher: Fetcher, url: str, via: str) -> _Probe:
    result = await fetcher.fetch(FeedConfig(name=url, url=url), Validators())
    return _read(result, url, via)


async def _discover_in_page(
    fetcher: Fetcher, requested: str, page_url: str, body: bytes, content_type: str | None
) -> Discovery:
    """Find the feed a fetched HTML page announces, else one at the usual paths."""
    html = discover.decode_page(body, content_type)
    links = discover.feed_links(html, page_url)
    tried: list[str] = []
    probes = await asyncio.gather(
        *(_probe(fetcher, link.url, "a <link> on the page") for link in links)
    )
    found = [
        replace(p.candidate, title=p.candidate.title or link.title)
        for p, link in zip(probes, links, strict=True)
        if p.candidate is not None
    ]
    tried += [
        f"{link.url} ({p.problem})" for p, link in zip(probes, links, strict=True) if p.problem
    ]
    if not found:
        seen = {nz.url_identity(link.url) for link in links}
        guesses = [u for u in discover.guess_urls(page_url) if nz.url_identity(u) not in seen]
        guessed = await asyncio.gather(*(_probe(fetcher, u, "a usual feed path") for u in guesses))
        found += [p.candidate for p in guessed if p.candidate is not None]
        if not any(p.candidate for p in guessed):
            tried.append("the usual paths " + ", ".join(discover.COMMON_PATHS))
    if not found:
        raise SourcesError(
            f"no feed found at {requested}: the page announces none that answers"
            + (f"; tried {'; '.join(tried)}" if tried else ""),
            hint="pass the feed's own address if you know it (often linked as RSS on the site)",
        )
    order = {id(c): n for n, c in enumerate(found)}
    # Posts before comments; RSS and Atom before JSON Feed, which fewer readers take on export.
    main = min(
        found,
        key=lambda c: (discover.is_comments_feed(c.url, c.title), c.kind == "json", order[id(c)]),
    )
    return Discovery(requested, main, tuple(c for c in found if c is not main))


async def discover_feed(fetcher: Fetcher, url: str) -> Discovery:
    """The feed behind ``url``: the address itself when it is a feed, else the one its page
    announces (``<link rel="alternate">``), else one at the usual paths; confirmed by parsing."""
    first = await _probe(fetcher, url, "the address itself")
    if first.candidate is not None:
        return Discovery(url, first.candidate)
    if not first.html or first.result.body is None:
        raise SourcesError(f"cannot use {url}: {first.problem}")
    page = first.result.final_url or url
    return await _discover_in_page(fetcher, url, page, first.result.body, first.result.content_type)


async def _with_fetcher(
    config: FetchConfig,
    client: httpx.AsyncClient | None,
    work: Callable[[Fetcher], Awaitable[T]],
) -> T:
    """Run ``work`` with a Fetcher on ``client``, or on a client of its own that it closes."""
    from curator.fetch import Fetcher, client_for

    async with client_for(config, client) as http:
        return await work(Fetcher(http, config))


# ---------------------------------------------------------------- add and remove


@dataclass(frozen=True)
class FeedsReport:
    """What a feeds command did, in lines a person reads, and its exit code."""

    lines: tuple[str, ...]
    exit_code: int = 0


def _same_url(a: str, b: str) -> bool:
    return nz.url_identity(a) == nz.url_identity(b)


def _refuse_duplicate(listed: Sequence[sources.Listed], url: str) -> None:
    for feed in listed:
        if _same_url(feed.url, url):
            raise SourcesError(
                f"already listed: {url} is the feed {feed.name!r} ({feed.url})",
                hint="nothing was changed",
            )


def _refuse_name(listed: Sequence[sources.Listed], name: str) -> None:
    for feed in listed:
        if feed.name.casefold() == name.casefold():
            raise SourcesError(
                f"a feed named {name!r} is already listed ({feed.url})",
                hint="choose another name with --name",
            )


def _reformatted_line(edited: sources.Edited, path: Path) -> list[str]:
    if not edited.reformatted:
        return []
    return [f"note: {path} was re-indented by the YAML writer; every comment was kept"]


def run_feeds_add(
    path: Path,
    url: str,
    *,
    name: str | None = None,
    tags: Sequence[str] = (),
    client: httpx.AsyncClient | None = None,
) -> FeedsReport:
    """``curator feeds add``: find the feed behind ``url`` and append it to feeds.yaml."""
    url = url.strip()
    assumed: list[str] = []
    problem = url_problem(url)
    guess = likely_url(url) if problem else None
    if guess:
        # A bare address (example.org/feed) is what people type; https is the safe reading.
        assumed.append(f"no scheme given: assuming {guess}")
        url, problem = guess, None
    if problem:
        raise ConfigError(
            f"{url!r} {problem}",
            key="URL",
            hint="give the feed's or the site's whole address: https://...",
        )
    tags = tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))
    original = sources.read_feeds_file(path)
    listed = sources.listed_feeds(original.text, original.display)
    _refuse_duplicate(listed, url)
    if name:
        _refuse_name(listed, name)
    # The file must be valid, apart from what is being added, before any network traffic.
    probe = sources.add_feeds(original.text, original.display, [FeedConfig(name or url, url)])
    config = sources.check_text(probe.text, path)

    async def work(fetcher: Fetcher) -> Discovery:
        return await discover_feed(fetcher, url)

    found: Discovery = asyncio.run(_with_fetcher(config.fetch, client, work))
    main = found.main
    if not _same_url(main.url, url):
        _refuse_duplicate(listed, main.url)
    feed_name = nz.single_line(name or main.title or "", 200) or nz.host_name(main.url)
    _refuse_name(listed, feed_name)
    feed = FeedConfig(feed_name, main.url, tags)
    edited = sources.add_feeds(original.text, original.display, [feed])
    sources.write_feeds_file(original, edited.text)
    lines = [
        *assumed,
        f"added {feed_name!r}: {main.url} ({main.kind}, {main.posts} posts, via {main.via})",
    ]
    for other in found.others:
        label = f" {other.title!r}" if other.title else ""
        lines.append(f"  the site also offers{label}: {other.url} ({other.kind})")
    return FeedsReport(tuple(lines + _reformatted_line(edited, path)))


def _match(listed: Sequence[sources.Listed], key: str, titles: Mapping[str, str]) -> sources.Listed:
    key = key.strip()
    # An unnamed feed answers to its own title as well as to its host, once fetched.
    listed = [
        replace(f, name=titles[f.url]) if not f.named and f.url in titles else f for f in listed
    ]
    by_name = [f for f in listed if f.name.casefold() == key.casefold()]
    by_url = [f for f in listed if url_problem(key) is None and _same_url(f.url, key)]
    matches = by_name or by_url
    if len(matches) == 1:
        return matches[0]
    if matches:
        where = ", ".join(f"{m.name!r} ({m.url})" for m in matches)
        raise SourcesError(f"{key!r} matches several feeds: {where}", hint="give the URL instead")
    close = difflib.get_close_matches(key, [f.name for f in listed], n=1, cutoff=0.6)
    raise SourcesError(
        f"no feed named or at {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
        hint="`curator feeds list` shows the names and URLs",
    )


def known_titles(path: Path, state_path: Path | None, env: Mapping[str, str]) -> dict[str, str]:
    """Each feed's own title (by URL) as the state last saw it; empty when feeds.yaml or the
    state cannot be read, since a removal must still work by name or URL then."""
    try:
        config = load_config(path, env=env, state_path=state_path)
        if not config.state_path.exists():
            return {}
        with Store.open(config.state_path) as store:
            return store.feed_titles()
    except CuratorError:
        return {}


def run_feeds_remove(
    path: Path, key: str, *, titles: Mapping[str, str] | None = None
) -> FeedsReport:
    """``curator feeds remove``: delete one feed, by name or URL, from feeds.yaml.

    ``titles`` (URL to the feed's own title) lets an unnamed feed be removed by its title."""
    original = sources.read_feeds_file(path)
    if original.digest is None:
        raise ConfigError("no such file", path=str(path))
    target = _match(sources.listed_feeds(original.text, original.display), key, titles or {})
    edited = sources.remove_feed(original.text, original.display, target.index)
    sources.write_feeds_file(original, edited.text)
    lines = [f"removed {target.name!r} ({target.url})", *_reformatted_line(edited, path)]
    return FeedsReport(tuple(lines))


# ---------------------------------------------------------------- check


@dataclass(frozen=True)
class CheckRow:
    """One source's health, as `feeds check` found it just now."""

    index: int
    feed: FeedConfig
    failed: bool
    status: str  # "ok", "quiet", "moved", "failed", "HTTP 404" ... a word or two for the table
    posts: int = 0
    last_post: datetime | None = None
    error: str | None = None
    suggestions: tuple[str, ...] = ()
    fix_url: str | None = None  # what --fix would write as the feed's url
    fixed: bool = False


def _last_post(parsed_dates: Sequence[datetime | None]) -> datetime | None:
    dates = [d for d in parsed_dates if d is not None]
    return max(dates) if dates else None


async def _check_one(fetcher: Fetcher, index: int, feed: FeedConfig, now: datetime) -> CheckRow:
    from curator.parse import parse_feed

    result = await fetcher.fetch(feed, Validators())
    suggestions: list[str] = []
    if not result.ok or result.body is None:
        status = f"HTTP {result.http_status}" if result.http_status else "failed"
        if result.http_status in (404, 410):
            suggestions.append(f"remove it: curator feeds remove {feed.url}")
        return CheckRow(
            index, feed, True, status, error=result.error, suggestions=tuple(suggestions)
        )
    body = result.body
    page = result.final_url or feed.url
    if discover.looks_like_html(body, result.content_type):
        error = "the address serves an HTML page, not a feed"
        try:
            found = await _discover_in_page(fetcher, feed.url, page, body, result.content_type)
        except SourcesError as exc:
            advice = f"{exc.message}; find the feed's address or remove it"
            return CheckRow(index, feed, True, "not a feed", error=error, suggestions=(advice,))
        return CheckRow(
            index, feed, True, "not a feed", error=error, fix_url=found.main.url,
            suggestions=(f"use its feed: {found.main.url} (--fix does it)",),
        )  # fmt: skip
    try:
        parsed = parse_feed(body, page, result.content_type)
    except ParseError as exc:
        return CheckRow(index, feed, True, "bad feed", error=str(exc))
    last = _last_post([e.published or e.updated for e in parsed.entries])
    status = "ok"
    fix_url = None
    if result.permanent_redirect and not _same_url(result.permanent_redirect, feed.url):
        status, fix_url = "moved", result.permanent_redirect
        suggestions.append(f"moved permanently to {fix_url}: use it (--fix does it)")
    if not parsed.entries:
        suggestions.append("the feed lists no posts")
    elif last is not None and now - last > QUIET_AFTER:
        status = "quiet" if status == "ok" else status
        suggestions.append(f"quiet: no post since {last:%Y-%m-%d}")
    if not feed.named and parsed.title:
        # A feed listed by bare URL is shown by its own title, as everywhere else.
        feed = replace(feed, name=parsed.title)
    return CheckRow(
        index, feed, False, status, posts=len(parsed.entries), last_post=last,
        error=parsed.warning, suggestions=tuple(suggestions), fix_url=fix_url,
    )  # fmt: skip


@dataclass(frozen=True)
class CheckReport:
    rows: tuple[CheckRow, ...]
    lines: tuple[str, ...]
    exit_code: int


def run_feeds_check(
    config: Config,
    now: datetime,
    *,
    fix: bool = False,
    client: httpx.AsyncClient | None = None,
) -> CheckReport:
    """``curator feeds check``: fetch every source now; report health and what to do; with
    ``fix``, write the redirect and discovery suggestions into feeds.yaml."""
    original = sources.read_feeds_file(config.path) if fix else None

    async def work(fetcher: Fetcher) -> list[CheckRow]:
        return list(
            await asyncio.gather(
                *(_check_one(fetcher, i, feed, now) for i, feed in enumerate(config.feeds))
            )
        )

    rows: list[CheckRow] = asyncio.run(_with_fetcher(config.fetch, client, work))
    lines: list[str] = []
    if original is not None:
        rows, lines = _apply_fixes(original, config, rows)
    failing = [r for r in rows if r.failed and not r.fixed]
    total = len(rows)
    lines.append(
        f"{total - len(failing)} of {total} sources healthy"
        + (f"; {len(failing)} failing" if failing else "")
    )
    return CheckReport(tuple(rows), tuple(lines), 1 if failing else 0)


def _apply_fixes(
    original: sources.FeedsFile, config: Config, rows: list[CheckRow]
) -> tuple[list[CheckRow], list[str]]:
    listed = sources.listed_feeds(original.text, original.display)
    if [item.url for item in listed] != [feed.url for feed in config.feeds]:
        raise SourcesError(
            f"{config.path} changed while curator was checking it; nothing was written",
            hint="run the command again",
        )
    text, reformatted, lines = original.text, False, []
    fixed: list[CheckRow] = []
    taken = {nz.url_identity(f.url) for f in config.feeds}
    for row in rows:
        if row.fix_url is None:
            fixed.append(row)
            continue
        if nz.url_identity(row.fix_url) in taken:
            lines.append(f"not fixed {row.feed.name!r}: {row.fix_url} is already listed")
            fixed.append(row)
            continue
        edited = sources.set_feed_url(text, original.display, row.index, row.fix_url)
        text, reformatted = edited.text, reformatted or edited.reformatted
        taken.add(nz.url_identity(row.fix_url))
        lines.append(f"fixed {row.feed.name!r}: {row.feed.url} -> {row.fix_url}")
        fixed.append(replace(row, fixed=True))
    if text != original.text:
        sources.write_feeds_file(original, text)
        if reformatted:
            lines.append(_reformatted_line(sources.Edited("", True), config.path)[0])
    return fixed, lines


# ---------------------------------------------------------------- OPML


def run_feeds_import(path: Path, opml_path: Path) -> FeedsReport:
    """``curator feeds import``: add the feeds an OPML file lists; no network."""
    from curator.opml import parse_opml

    try:
        data = opml_path.read_bytes()
    except OSError as exc:
        raise SourcesError(f"cannot read {opml_path}: {exc.strerror or exc}") from exc
    try:
        document = parse_opml(data)
    except ParseError as exc:
        raise SourcesError(f"{opml_path}: {exc}") from exc
    original = sources.read_feeds_file(path)
    listed = sources.listed_feeds(original.text, original.display)
    urls = {nz.url_identity(f.url): f.name for f in listed}
    names = {f.name.casefold() for f in listed}
    added: list[FeedConfig] = []
    skipped = [f"  skipped {s.label!r}: {s.reason}" for s in document.skipped]
    for entry in document.feeds:
        identity = nz.url_identity(entry.url)
        if identity in urls:
            skipped.append(
                f"  skipped {entry.name!r}: {entry.url} is already listed as {urls[identity]!r}"
            )
            continue
        name = _unique_name(entry.name, entry.url, names)
        names.add(name.casefold())
        urls[identity] = name
        added.append(FeedConfig(name, entry.url, entry.tags))
    lines = []
    if document.repaired:
        lines.append(
            f"note: {opml_path} is not well-formed ({document.repaired}); read it leniently"
        )
    if added:
        edited = sources.add_feeds(original.text, original.display, added)
        sources.write_feeds_file(original, edited.text)
        lines.append(f"imported {len(added)} feeds from {opml_path} into {path}")
        lines += _reformatted_line(edited, path)
    else:
        lines.append(f"nothing to import from {opml_path}")
    if skipped:
        lines.append(f"skipped {len(skipped)}:")
        lines += skipped
    return FeedsReport(tuple(lines))


def _unique_name(name: str, url: str, taken: set[str]) -> str:
    if name.casefold() not in taken:
        return name
    host = nz.host_name(url)
    candidate = f"{name} ({host})"
    number = 2
    while candidate.casefold() in taken:
        candidate = f"{name} ({host} {number})"
        number += 1
    return candidate


@dataclass(frozen=True)
class ExportReport:
    document: bytes
    lines: tuple[str, ...] = ()


def run_feeds_export(config: Config, now: datetime, out: Path | None = None) -> ExportReport:
    """``curator feeds export``: every source as an OPML 2.0 document, written to ``out``
    (atomically) when given, else returned for the caller to print."""
    from curator.opml import render_opml

    document = render_opml(config.feeds, config.newsletter.title, now)
    if out is None:
        return ExportReport(document)
    try:
        atomic_write(out, document, mode=0o644)
    except OSError as exc:
        raise SourcesError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return ExportReport(document, (f"exported {len(config.feeds)} feeds to {out}",))


def run_feeds_list(config: Config) -> list[tuple[FeedConfig, FeedHealth | None]]:
    """``curator feeds list``: each source with what the state knows of it.

    A listing only reads: with no state file yet, every source is simply never fetched, and no
    file is created."""
    health: dict[str, FeedHealth] = {}
    if config.state_path.exists():
        with Store.open(config.state_path) as store:
            health = store.feed_health()
    shown = []
    for feed in config.feeds:
        h = health.get(feed.url)
        if not feed.named and h is not None and h.title:
            feed = replace(feed, name=h.title)  # noqa: PLW2901 - shown by its own title
        shown.append((feed, h))
    return shown
