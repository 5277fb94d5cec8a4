"""Fetching and storing feeds: the first half of ``send``, ``preview`` and ``fetch``.

Fetch every due feed (HTTP in :mod:`curator.fetch`), parse each body (:mod:`curator.parse`),
and record what came back in the store: validators, feed health and new entries, in one
transaction. Per-feed failures are values (:class:`FeedOutcome` with an ``error``), never
exceptions that abort the batch. A feed that keeps failing rests (see :mod:`curator.health`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from curator import select
from curator.errors import ParseError
from curator.models import Config, FeedConfig, FeedOutcome, FetchResult, Validators
from curator.store import RunLock, Store

if TYPE_CHECKING:
    import httpx

# Below this many feeds to parse, a process pool costs more to start than it saves.
PARSE_POOL_MIN = 8

Progress = Callable[[FeedOutcome], None]


async def _fetch_and_parse(
    feeds: Sequence[FeedConfig],
    validators: dict[str, Validators],
    config: Config,
    client: httpx.AsyncClient | None,
    progress: Progress | None,
) -> list[FeedOutcome]:
    from curator.fetch import Fetcher, client_for
    from curator.parse import ParsePool

    cpus = os.cpu_count() or 1
    # feedparser is CPU-bound: with many feeds, parse in other processes while this one
    # keeps fetching; with few, a thread is enough and starts at once.
    parser = ParsePool(min(4, cpus) if len(feeds) >= PARSE_POOL_MIN and cpus > 1 else 0)

    async def one(fetcher: Fetcher, feed: FeedConfig) -> FeedOutcome:
        try:
            outcome = await read(fetcher, feed)
        except Exception as exc:
            # Fetch and parse turn every failure they know into a value; this is a bug in
            # curator or a library, said as that feed's error so the issue still goes out.
            failed = FetchResult(feed, "failed", error=f"unexpected {type(exc).__name__}")
            outcome = FeedOutcome(
                feed, failed, error=f"unexpected error: {type(exc).__name__}: {exc}"
            )
        if progress is not None:
            progress(outcome)
        return outcome

    async def read(fetcher: Fetcher, feed: FeedConfig) -> FeedOutcome:
        result = await fetcher.fetch(feed, validators.get(feed.url, Validators()))
        if result.status != "ok" or result.body is None:
            return FeedOutcome(feed, result, error=result.error)
        url = result.final_url or feed.url
        try:
            parsed = await parser.parse(result.body, url, result.content_type)
        except ParseError as exc:
            return FeedOutcome(feed, result, error=str(exc))
        return FeedOutcome(feed, result, parsed=parsed)

    try:
        async with client_for(config.fetch, client) as http:
            fetcher = Fetcher(http, config.fetch)
            return list(await asyncio.gather(*(one(fetcher, feed) for feed in feeds)))
    finally:
        parser.close()


def _backed_off(
    config: Config, store: Store, now: datetime
) -> tuple[list[FeedConfig], dict[str, FeedOutcome]]:
    """Split the enabled feeds into those due now (likely-slow first) and those left alone
    by the backoff."""
    from curator.health import fetch_due, fetch_order

    period = select.period_for(now, config.newsletter.cadence, config.newsletter.timezone)
    health = store.feed_health()
    due: list[FeedConfig] = []
    resting: dict[str, FeedOutcome] = {}
    for feed in config.enabled_feeds:
        known = health.get(feed.url)
        decision = fetch_due(
            failures=known.consecutive_failures if known else 0,
            last_attempt=known.last_attempt if known else None,
            now=now,
            period_start=period.start,
        )
        if decision.due or known is None or decision.next_try is None:
            due.append(feed)
            continue
        times = "once" if decision.failures == 1 else f"{decision.failures} times in a row"
        note = (
            f"failed {times}, next try after {decision.next_try:%Y-%m-%d %H:%M} UTC; "
            f"last error: {known.last_error}"
        )
        resting[feed.url] = FeedOutcome(feed, FetchResult(feed, "skipped", error=note))
    failures = {url: h.consecutive_failures for url, h in health.items()}
    elapsed = {url: h.last_elapsed for url, h in health.items() if h.last_elapsed is not None}
    by_url = {feed.url: feed for feed in due}
    return [by_url[url] for url in fetch_order(list(by_url), failures, elapsed)], resting


def fetch_feeds(
    config: Config,
    store: Store,
    now: datetime,
    *,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    honour_backoff: bool = True,
) -> list[FeedOutcome]:
    """Fetch every enabled feed, store what is new, and return one outcome per feed.

    A feed that keeps failing is left alone until its backoff interval has passed (see
    :mod:`curator.health`), but never for a whole issue period: every feed is tried at least
    once before each issue. ``honour_backoff=False`` tries every feed now.
    """
    feeds: list[FeedConfig] = list(config.enabled_feeds)
    resting: dict[str, FeedOutcome] = {}
    if honour_backoff:
        feeds, resting = _backed_off(config, store, now)
        if progress is not None:
            for outcome in resting.values():
                progress(outcome)
    fetched_now = asyncio.run(_fetch_and_parse(feeds, store.validators(), config, client, progress))
    by_url = {o.feed.url: o for o in fetched_now}
    # One commit for the whole batch: with synchronous=FULL, one per feed costs an fsync each.
    with store.transaction():
        outcomes = [_store_outcome(store, f, by_url, resting, now) for f in config.enabled_feeds]
    # A feed listed by bare URL is shown by its own title, once any fetch has given one.
    titles = store.feed_titles()
    return [
        replace(o, feed=replace(o.feed, name=titles[o.feed.url]))
        if not o.feed.named and o.feed.url in titles
        else o
        for o in outcomes
    ]


def _store_outcome(
    store: Store,
    feed: FeedConfig,
    by_url: dict[str, FeedOutcome],
    resting: dict[str, FeedOutcome],
    now: datetime,
) -> FeedOutcome:
    """Record one feed's fetch (validators, health) and its new entries."""
    if feed.url in resting:
        return resting[feed.url]
    outcome = by_url[feed.url]
    fetched = _without_body(outcome.fetch)
    parsed = outcome.parsed
    if outcome.error is not None and fetched.ok:
        # Fetched but not a feed: a failure for the feed's health, and its validators
        # are not kept, so the next run reads (and judges) the body again.
        failed = replace(fetched, status="failed", error=outcome.error)
        store.record_fetch(failed, now)
    else:
        store.record_fetch(fetched, now, parsed.title if parsed else None)
    new = 0
    if parsed is not None:
        name = source_name(feed, parsed.title)
        new = store.save_entries(outcome.feed.url, name, parsed.entries, now)
    return replace(outcome, new_entries=new, fetch=fetched)


def source_name(feed: FeedConfig, title: str | None) -> str:
    """What readers see as a source: its name in feeds.yaml, else the feed's own title."""
    return feed.name if feed.named or not title else title


def _without_body(result: FetchResult) -> FetchResult:
    return replace(result, body=None) if result.body is not None else result


def run_fetch(
    config: Config,
    now: datetime,
    *,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    retry_failed: bool = False,
) -> list[FeedOutcome]:
    """``curator fetch``: fetch and store only; ``retry_failed`` ignores the backoff."""
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        return fetch_feeds(
            config, store, now, client=client, progress=progress, honour_backoff=not retry_failed
        )
