"""Pure policy for feeds that keep failing: when to try them again.

A feed that fails is tried less and less often (1 h after the first failure, then 2 h, 4 h ...
up to a day), so an hourly ``curator fetch`` does not keep knocking on a dead server. The backoff
never hides a feed for a whole issue period: a feed not yet tried in the current period is
always due, so every feed is tried at least once before each issue.
"""

from __future__ import annotations

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
