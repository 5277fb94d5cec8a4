"""Pure policy for feeds that keep failing: when to try them again.

A feed that fails is tried less and less often (1 h after the first failure, then 2 h, 4 h ...
up to a day), so an hourly ``curator fetch`` does not keep knocking on a dead server. The backoff
never hides a feed for a whole issue period: a feed not yet tried in the current period is
always due, so every feed is tried at least once before each issue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

BACKOFF_FIRST = timedelta(hours=1)
BACKOFF_MAX = timedelta(days=1)


def backoff_interval(failures: int) -> timedelta:
    """How long to leave a feed alone after ``failures`` failures in a row."""
    if failures <= 0:
        return timedelta(0)
    # Capped before the power so a feed failing for years cannot overflow anything.
    doublings: int = min(failures - 1, 16)
    return min(BACKOFF_FIRST * (1 << doublings), BACKOFF_MAX)


@dataclass(frozen=True)
class Due:
    """Whether a feed should be fetched now, and if not, from when."""

    due: bool
    next_try: datetime | None = None
    failures: int = 0


def fetch_due(
    *, failures: int, last_attempt: datetime | None, now: datetime, period_start: datetime
) -> Due:
    """Decide whether a feed with this health record is fetched now.

    Due when it has not failed, was never tried, was not tried yet in the period that starts
    at ``period_start``, or its backoff interval has passed since its last attempt.
    """
    if failures <= 0 or last_attempt is None or last_attempt < period_start:
        return Due(True, failures=max(0, failures))
    next_try = last_attempt + backoff_interval(failures)
    if now >= next_try:
        return Due(True, failures=failures)
    return Due(False, next_try, failures)


def fetch_order(
    urls: Sequence[str], failures: Mapping[str, int], elapsed: Mapping[str, float]
) -> list[str]:
    """The order to start fetches in: the likely-slow first.

    The global limit queues feeds behind one another; a feed that will take its whole deadline
    should not start last, or the run lasts the queue plus the deadline. So: feeds never
    fetched, then failing feeds (a failure is often a timeout), then the rest by how long they
    took last time, slowest first (longest-job-first keeps the run short). Ties keep the
    order of feeds.yaml.
    """

    def rank(item: tuple[int, str]) -> tuple[int, float, int]:
        index, url = item
        if url not in elapsed:
            return (0, 0.0, index)
        if failures.get(url, 0) > 0:
            return (1, -elapsed[url], index)
        return (2, -elapsed[url], index)

    return [url for _, url in sorted(enumerate(urls), key=rank)]
