"""HTTP protocol behaviour of the fetcher, as a table: validators in the state x what the server
answers -> the request headers curator sends and what the state holds afterwards.

respx stands in for the network (this is a unit of HTTP logic); the state is a real SQLite file.
Sleeps are recorded, never slept.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import respx

from curator import HOMEPAGE, __version__
from curator.fetch import Fetcher, backoff_delay, make_client, retry_after_seconds
from curator.models import FeedConfig, FetchConfig, FetchResult, Validators
from curator.store import Store

URL = "https://feeds.example/feed.xml"
MOVED = "https://new.example/feed.xml"
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
OLD_BODY = BODY.replace(b"<title>T<", b"<title>Old<")
LM_OLD = "Mon, 23 Nov 2026 10:00:00 GMT"
LM_NEW = "Wed, 25 Nov 2026 10:00:00 GMT"


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def ok(
    body: bytes = BODY, *, etag: str | None = None, modified: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/rss+xml"}
    if etag:
        headers["ETag"] = etag
    if modified:
        headers["Last-Modified"] = modified
    return httpx.Response(200, content=body, headers=headers)


KNOWN = Validators(etag='"v1"', last_modified=LM_OLD, content_hash=sha(OLD_BODY))
SAME_BODY_KNOWN = Validators(etag='"v1"', last_modified=LM_OLD, content_hash=sha(BODY))


@dataclass
class Case:
    state: Validators
    answers: list[httpx.Response]
    sent: Mapping[str, str | None]  # header -> value expected on the first request (None: absent)
    status: str
    stored: Validators
    last_status: int | None = 200
    failures: int = 0
    redirect_to: str | None = None
    gone: bool = False
    sleeps: list[float] = field(default_factory=list)
    moved: list[httpx.Response] = field(default_factory=list)  # what MOVED answers
    error: str | None = None


NO_VALIDATORS = {"if-none-match": None, "if-modified-since": None}
VALIDATORS_SENT = {"if-none-match": '"v1"', "if-modified-since": LM_OLD}

CASES = {
    "200 on a first fetch stores the new validators": Case(
        state=Validators(),
        answers=[ok(etag='"v2"', modified=LM_NEW)],
        sent=NO_VALIDATORS,
        status="ok",
        stored=Validators('"v2"', LM_NEW, sha(BODY)),
    ),
    "200 with validators sent replaces them": Case(
        state=KNOWN,
        answers=[ok(etag='"v2"', modified=LM_NEW)],
        sent=VALIDATORS_SENT,
        status="ok",
        stored=Validators('"v2"', LM_NEW, sha(BODY)),
    ),
    "200 without validators drops the old ones": Case(
        state=KNOWN,
        answers=[ok()],
        sent=VALIDATORS_SENT,
        status="ok",
        stored=Validators(None, None, sha(BODY)),
    ),
    "304 keeps validators and hash": Case(
        state=KNOWN,
        answers=[httpx.Response(304, headers={"ETag": '"v1"'})],
        sent=VALIDATORS_SENT,
        status="not_modified",
        stored=KNOWN,
        last_status=304,
    ),
    "200 with the same body is skipped by its hash": Case(
        state=SAME_BODY_KNOWN,
        answers=[ok(etag='"v9"')],
        sent=VALIDATORS_SENT,
        status="unchanged",
        stored=Validators('"v9"', None, sha(BODY)),
    ),
    "301 records the permanent redirect": Case(
        state=Validators(),
        answers=[httpx.Response(301, headers={"Location": MOVED})],
        moved=[ok()],
        sent=NO_VALIDATORS,
        status="ok",
        stored=Validators(None, None, sha(BODY)),
        redirect_to=MOVED,
    ),
    "308 records the permanent redirect": Case(
        state=KNOWN,
        answers=[httpx.Response(308, headers={"Location": MOVED})],
        moved=[ok()],
        sent=VALIDATORS_SENT,
        status="ok",
        stored=Validators(None, None, sha(BODY)),
        redirect_to=MOVED,
    ),
    "302 is followed but not recorded as a move": Case(
        state=Validators(),
        answers=[httpx.Response(302, headers={"Location": MOVED})],
        moved=[ok()],
        sent=NO_VALIDATORS,
        status="ok",
        stored=Validators(None, None, sha(BODY)),
    ),
    "410 marks the feed gone and keeps its validators": Case(
        state=KNOWN,
        answers=[httpx.Response(410)],
        sent=VALIDATORS_SENT,
        status="failed",
        stored=KNOWN,
        last_status=410,
        failures=1,
        gone=True,
        error="gone for good",
    ),
    "429 with Retry-After seconds waits that long, then succeeds": Case(
        state=Validators(),
        answers=[httpx.Response(429, headers={"Retry-After": "7"}), ok()],
        sent=NO_VALIDATORS,
        status="ok",
        stored=Validators(None, None, sha(BODY)),
        sleeps=[7.0],
    ),
    "503 with a Retry-After date waits until then": Case(
        state=Validators(),
        answers=[
            httpx.Response(
                503,
                headers={"Retry-After": format_datetime(NOW + timedelta(seconds=20), usegmt=True)},
            ),
            ok(),
        ],
        sent=NO_VALIDATORS,
        status="ok",
        stored=Validators(None, None, sha(BODY)),
        sleeps=[20.0],
    ),
    "429 asking for longer than the deadline gives up at once": Case(
        state=KNOWN,
        answers=[httpx.Response(429, headers={"Retry-After": "3600"})],
        sent=VALIDATORS_SENT,
        status="failed",
        stored=KNOWN,
        last_status=429,
        failures=1,
        error="asked to wait 3600 s",
    ),
    "500 is not retried in the run: a broken server, tried again next run": Case(
        state=Validators(),
        answers=[httpx.Response(500)],
        sent=NO_VALIDATORS,
        status="failed",
        stored=Validators(),
        last_status=500,
        failures=1,
        error="HTTP 500",
    ),
    "502 then 200 retries once after a jittered pause": Case(
        state=Validators(),
        answers=[httpx.Response(502), ok()],
        sent=NO_VALIDATORS,
        status="ok",
        stored=Validators(None, None, sha(BODY)),
        sleeps=[backoff_delay(0, random.Random(7))],
    ),
    "gateway errors every time fail after the bounded retries": Case(
        state=KNOWN,
        answers=[httpx.Response(504), httpx.Response(502), httpx.Response(503)],
        sent=VALIDATORS_SENT,
        status="failed",
        stored=KNOWN,
        last_status=503,
        failures=1,
        sleeps=[backoff_delay(0, r := random.Random(7)), backoff_delay(1, r)],
        error="HTTP 503",
    ),
}


def run_case(case: Case, state_path: Path) -> tuple[FetchResult, list[httpx.Request], list[float]]:
    feed = FeedConfig("Feed", URL)
    config = FetchConfig(timeout=30, retries=2)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> FetchResult:
        client = make_client(config)
        try:
            fetcher = Fetcher(client, config, sleep=sleep, rng=random.Random(7), clock=lambda: NOW)
            return await fetcher.fetch(feed, case.state)
        finally:
            await client.aclose()

    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(URL).mock(side_effect=case.answers)
        moved = mock.get(MOVED).mock(side_effect=case.moved or [httpx.Response(404)])
        result = asyncio.run(go())
    requests = [call.request for call in route.calls] + [call.request for call in moved.calls]
    return result, requests, slept


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_server_answer_sets_request_headers_and_stored_state(case: Case, tmp_path: Path) -> None:
    """Each row: the conditional headers sent, the fetch outcome and the feed's stored record."""
    state_path = tmp_path / "state.db"
    with Store.open(state_path) as store:
        if case.state != Validators():
            earlier = FetchResult(
                FeedConfig("Feed", URL), "ok", http_status=200, validators=case.state
            )
            store.record_fetch(earlier, NOW - timedelta(days=7))
        assert store.validators().get(URL, Validators()) == case.state
        result, requests, slept = run_case(case, state_path)
        store.record_fetch(result, NOW)
        stored = store.validators()[URL]
        health = store.feed_health()[URL]

    first = requests[0]
    for header, value in case.sent.items():
        assert first.headers.get(header) == value, header
    assert result.status == case.status, result.error
    assert (result.body is not None) == (case.status == "ok")
    assert slept == pytest.approx(case.sleeps)
    assert result.attempts == len(case.answers)
    if case.error:
        assert result.error is not None
        assert case.error in result.error
    assert stored == case.stored
    assert health.last_status == case.last_status
    assert health.consecutive_failures == case.failures
    assert health.redirect_to == case.redirect_to
    assert health.gone is case.gone
    assert (health.last_success == NOW) is (case.failures == 0)


def test_every_request_names_curator_its_version_and_home_page() -> None:
    """The User-Agent carries curator's name, version and home page on every request."""
    case = CASES["429 with Retry-After seconds waits that long, then succeeds"]
    _, requests, _ = run_case(case, Path("unused"))
    assert len(requests) == 2
    for request in requests:
        agent = request.headers["user-agent"]
        assert agent.startswith(f"curator/{__version__} ")
        assert HOMEPAGE in agent
        assert "gzip" in request.headers["accept-encoding"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Thu, 26 Nov 2026 08:01:30 GMT", 90.0),
        ("Wed, 25 Nov 2026 08:00:00 GMT", 0.0),  # a date in the past means now
        ("soon", None),
        ("²", None),  # a Unicode digit that str.isdigit() accepts and float() refuses
        ("１２", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, expected: float | None
) -> None:
    """Retry-After as delta-seconds or an HTTP date becomes seconds to wait; junk is ignored."""
    assert retry_after_seconds(header, NOW) == expected


def test_backoff_delay_grows_and_stays_jittered_within_bounds() -> None:
    """Attempt n waits 0.5 s x 2^n, times a jitter factor between 0.5 and 1.5."""
    rng = random.Random(1)
    for attempt in range(5):
        for _ in range(50):
            delay = backoff_delay(attempt, rng)
            assert 0.25 * 2**attempt <= delay <= 0.75 * 2**attempt
