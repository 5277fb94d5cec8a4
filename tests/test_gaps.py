"""Behaviours a mutation run found untested: each test here failed on the mutated code.

Periods cut in the reader's own zone, the redirect cap at exactly its configured value, and
the archive's Atom feed escaping what a title may hold.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import pytest

from conftest import FeedServer, Item, Route, rss, utc
from curator.fetch import fetch_all
from curator.models import (
    ArchivedIssue,
    ArchivedPost,
    Cadence,
    FeedConfig,
    FetchConfig,
    NewsletterConfig,
)
from curator.render import render_archive
from curator.select import period_for


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("now", "cadence", "zone", "key", "start", "end"),
    [
        # Sunday noon in UTC is already Monday in Auckland: the new week there.
        ("2026-03-01T12:00:00Z", "weekly", "Pacific/Auckland", "2026-W10",
         "2026-03-02T00:00:00+13:00", "2026-03-09T00:00:00+13:00"),
        # Monday 03:00 UTC is still Sunday evening in New York: the old week.
        ("2026-03-02T03:00:00Z", "weekly", "America/New_York", "2026-W09",
         "2026-02-23T00:00:00-05:00", "2026-03-02T00:00:00-05:00"),
        # A week across Berlin's change to summer time is 167 hours long.
        ("2026-03-29T12:00:00Z", "weekly", "Europe/Berlin", "2026-W13",
         "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
        ("2026-03-01T20:00:00Z", "daily", "Asia/Tokyo", "2026-03-02",
         "2026-03-02T00:00:00+09:00", "2026-03-03T00:00:00+09:00"),
        # 1 April 03:00 UTC is the evening of 31 March in Los Angeles.
        ("2026-04-01T03:00:00Z", "monthly", "America/Los_Angeles", "2026-03",
         "2026-03-01T00:00:00-08:00", "2026-04-01T00:00:00-07:00"),
    ],
)  # fmt: skip
def test_periods_are_cut_at_midnight_in_the_newsletters_zone(  # noqa: PLR0917 - one table row
    now: str, cadence: Cadence, zone: str, key: str, start: str, end: str
) -> None:
    """The period's key, start and end follow the local calendar of newsletter.timezone."""
    period = period_for(z(now), cadence, zone)
    assert (period.key, period.start, period.end) == (key, z(start), z(end))


BODY = rss([Item("A post", "https://example.org/a", utc("2026-11-20T10:00:00"))])


def _chain(server: FeedServer, name: str, hops: int) -> FeedConfig:
    """A feed reached after ``hops`` redirects."""
    for i in range(hops):
        server.add(f"/{name}{i}", Route(status=302, headers={"Location": f"/{name}{i + 1}"}))
    return FeedConfig(
        name, server.add(f"/{name}{hops}", BODY) if hops else server.add(f"/{name}0", BODY)
    )


@pytest.mark.parametrize(("hops", "status"), [(0, "ok"), (5, "ok"), (6, "failed")])
def test_redirects_are_capped_at_exactly_five(
    feed_server: FeedServer, hops: int, status: str
) -> None:
    """Five redirects are followed; the sixth is refused (httpx alone would allow twenty)."""
    feed = _chain(feed_server, "r", hops)
    start = FeedConfig("r", feed_server.url("/r0"))
    (result,) = asyncio.run(fetch_all([start], {}, FetchConfig(retries=0)))
    assert result.status == status, result.error
    if status == "failed":
        assert result.error == "too many redirects"
    assert feed.url.endswith(f"/r{hops}")


def test_the_archive_feed_escapes_ampersands_and_angle_brackets() -> None:
    """A title with & and < makes a well-formed Atom feed that reads back the same title."""
    title = "Trust & teams: when <b>less</b> is more"
    issue = ArchivedIssue(
        period="2026-W10",
        subject=title,
        built_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        html="<p>x</p>",
        question="Q & A <now>?",
        posts=(ArchivedPost(title, "https://a.example/?x=1&y=2", "A & B"),),
    )
    files = render_archive([issue], NewsletterConfig(title="Lead & <Learn>"))
    root = ET.fromstring(files["feed.xml"])  # raises on a bare & or <
    atom = "{http://www.w3.org/2005/Atom}"
    assert root.findtext(f"{atom}title") == "Lead & <Learn>"
    entry = root.find(f"{atom}entry")
    assert entry is not None
    assert entry.findtext(f"{atom}title") == title
