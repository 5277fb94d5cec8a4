"""Fetch feeds over HTTP(S), concurrently, politely and within bounds. The only stage that
imports httpx for feeds.

Every fetch ends as a :class:`FetchResult` value: a slow, broken or hostile server costs at most
its own deadline and never stops the other feeds.

Bounds per feed: a connect timeout; a total deadline that also ends slow-drip and endless
bodies; a cap on the decoded body (so a small gzip bomb cannot grow past it); a cap on redirects;
only http and https, on every hop.

Longer than the ~450 lines a module should keep to, on purpose: it is the one module that speaks
HTTP for feeds (the style keeps httpx here), and each bound and each refused redirect is a few
lines of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import random
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from curator import HOMEPAGE, __version__
from curator.models import FeedConfig, FetchConfig, FetchResult, Validators

USER_AGENT = f"curator/{__version__} (+{HOMEPAGE})"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
# Answers worth a second try within the run: overload and gateway trouble. A plain 500 is
# a broken server more often than a passing fault; the next run tries it again.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_BASE = 0.5

Sleep = Callable[[float], Awaitable[None]]


class _TooLarge(Exception):
    pass


class _RefusedRedirect(Exception):
    """A redirect hop curator will not follow; the text says why."""


ORIGIN = "curator.origin"  # request extension: the configured URL, kept across redirects


def _private(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_multicast
    )


async def _addresses(host: str) -> list[str]:
    """The addresses ``host`` stands for: itself when it is one, else what DNS answers."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return [bare]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(bare, None)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


async def _is_private_host(host: str) -> bool:
    if host.strip("[]").lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    return any(_private(a) for a in await _addresses(host))


async def check_hop(request: httpx.Request) -> None:
    """Refuse a redirect hop that leaves http(s), or that leads a feed configured at a public
    address into private, loopback or link-local space (a cloud metadata service, the LAN).

    Runs before every request the client sends; the first request of a fetch is the
    configured URL itself and is always allowed (feeds.yaml may name a private address).
    """
    origin = request.extensions.get(ORIGIN)
    if origin is None or str(request.url) == origin:
        return
    if request.url.scheme not in ("http", "https"):
        raise _RefusedRedirect(f"redirected to {request.url.scheme}:, which is not http(s)")
    host = request.url.host
    if not await _is_private_host(host):
        return
    origin_host = urlsplit(origin).hostname or ""
    if await _is_private_host(origin_host):
        return
    raise _RefusedRedirect(
        f"redirected from a public address into a private one ({host}); not followed"
    )


class _BadEncoding(Exception):
    pass


class BoundedDecoder:
    """Undoes ``Content-Encoding`` (identity, gzip, deflate) and never yields more than
    ``limit`` bytes in total, however small the compressed input.

    httpx's own decoders inflate each network chunk whole, so a 64 KiB chunk of a gzip bomb
    becomes tens of MiB before anyone can count it; here zlib is asked for at most the room
    left plus one byte, so memory stays at the cap.
    """

    def __init__(self, encoding: str | None, limit: int) -> None:
        codings = [c.strip().lower() for c in (encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise _BadEncoding(encoding or "")
        self.coding = codings[0] if codings else None
        self.room = limit
        self._zlib = self._inflater(raw_deflate=False) if self.coding else None
        self._sniffed = False

    def _inflater(self, *, raw_deflate: bool) -> zlib._Decompress:
        if self.coding == "deflate":
            # "deflate" should carry a zlib header; some servers send raw deflate instead.
            return zlib.decompressobj(-zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS)
        return zlib.decompressobj(zlib.MAX_WBITS | 16)

    def feed(self, data: bytes) -> bytes:
        """Decode the next raw chunk; raise _TooLarge once the output passes the limit."""
        inflater = self._zlib
        if inflater is None:
            return self._take(data)
        out: list[bytes] = []
        while data:
            try:
                piece = inflater.decompress(data, self.room + 1)
            except zlib.error as exc:
                if self.coding == "deflate" and not self._sniffed:
                    self._sniffed = True
                    inflater = self._zlib = self._inflater(raw_deflate=True)
                    continue
                raise _BadEncoding(str(exc)) from exc
            self._sniffed = True
            out.append(self._take(piece))
            # Input zlib has not looked at yet (because max_length was hit) or, for gzip, the
            # next member of a multi-member stream.
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            elif inflater.eof and inflater.unused_data:
                data = inflater.unused_data
                inflater = self._zlib = self._inflater(raw_deflate=False)
            else:
                data = b""
        return b"".join(out)

    def _take(self, piece: bytes) -> bytes:
        if len(piece) > self.room:
            raise _TooLarge
        self.room -= len(piece)
        return piece


def make_client(config: FetchConfig) -> httpx.AsyncClient:
    """One client for the whole run: keep-alive, compression, redirects capped."""
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        # The feed's total deadline (asyncio.timeout in Fetcher.fetch) is the real bound; httpx's
        # own read/write/pool timeouts sit just behind it as a backstop, so a stalled server is
        # reported by the deadline with one clear message.
        timeout=httpx.Timeout(config.timeout + 1, connect=config.connect_timeout),
        follow_redirects=True,
        max_redirects=config.max_redirects,
        limits=httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        ),
        trust_env=False,
        event_hooks={"request": [check_hop]},
    )


@contextlib.asynccontextmanager
async def client_for(
    config: FetchConfig, client: httpx.AsyncClient | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """``client`` as given (its owner closes it), or a client of its own, closed on the way out.

    Tests pass a client wired to their own servers; a run passes none.
    """
    if client is not None:
        yield client
        return
    own = make_client(config)
    try:
        yield own
    finally:
        await own.aclose()


def conditional_headers(validators: Validators) -> dict[str, str]:
    """The request headers that let a server answer 304 Not Modified."""
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks us to wait (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    # isdigit() alone accepts "²" and other digits float() refuses.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter around it: 0.5 s, 1 s, 2 s ... times 0.5-1.5."""
    return float(BACKOFF_BASE * (2**attempt) * rng.uniform(0.5, 1.5))


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}"


def _host_of(exc: httpx.RequestError) -> str:
    try:
        return exc.request.url.host
    except RuntimeError:  # httpx raises it when the error carries no request
        return "the host"


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "could not connect in time"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if (
            "Name or service not known" in text
            or "nodename nor servname" in text
            or ("Temporary failure in name resolution" in text)
        ):
            return f"cannot resolve {_host_of(exc)} (no DNS answer: offline, or a typo in the URL?)"
        if "Connection refused" in text:
            return "the server refused the connection (nothing listens on that port)"
        return f"could not connect: {text}".rstrip(": ")
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "redirected to a URL that is not http(s)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP exchange: {exc}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "the connection was lost mid-answer"
    if isinstance(exc, httpx.TimeoutException):
        return "the server stopped answering"
    if isinstance(exc, httpx.DecodingError):
        return "the body could not be decompressed"
    return f"{type(exc).__name__}: {exc}"


# A failed attempt that took this long (or a quarter of the feed's timeout, if less) is a
# stall, not a passing fault: it is not retried in the run.
STALL_SECONDS = 2.0

# Transient: the next attempt may well work. A read timeout is not retried: the feed's whole
# deadline already bounds it, and a server that stalls once usually stalls again.
_RETRYABLE_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
)


class Fetcher:
    """Fetches many feeds at once with a global and a per-host limit."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: FetchConfig,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.config = config
        self.sleep = sleep
        self.monotonic = monotonic
        # An attempt that fails after this long stalled first; see _fetch_with_retries.
        self.stall_seconds = min(STALL_SECONDS, config.timeout / 4)
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.clock = clock
        self._global = asyncio.Semaphore(config.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        key = _host_key(url)
        if key not in self._hosts:
            self._hosts[key] = asyncio.Semaphore(self.config.per_host)
        return self._hosts[key]

    async def fetch(self, feed: FeedConfig, validators: Validators) -> FetchResult:
        """Fetch one feed; never raises for anything the network or server does."""
        # The deadline starts once this feed holds its slots, so waiting behind other feeds
        # on the same host does not eat its time.
        async with self._host_limit(feed.url), self._global:
            started = time.monotonic()
            attempts = [0]
            try:
                async with asyncio.timeout(self.config.timeout):
                    result = await self._fetch_with_retries(feed, validators, started, attempts)
            except TimeoutError:
                result = FetchResult(
                    feed,
                    "failed",
                    error=f"no complete answer within {self.config.timeout:g} s",
                    validators=validators,
                )
            elapsed = time.monotonic() - started
            return replace(result, elapsed=elapsed, attempts=max(1, attempts[0]))

    async def _fetch_with_retries(
        self, feed: FeedConfig, validators: Validators, started: float, attempts: list[int]
    ) -> FetchResult:
        attempt = 0
        while True:
            attempts[0] = attempt + 1
            delay: float | None = None
            tried = self.monotonic()
            try:
                result = await self._fetch_once(feed, validators)
            except _RETRYABLE_ERRORS as exc:
                result = FetchResult(feed, "failed", error=_describe(exc), validators=validators)
                stalled = self.monotonic() - tried
                if stalled >= self.stall_seconds:
                    # A failure after a stall is a read timeout in all but name: a server that
                    # kept the line silent this long and then dropped it will do so again, so
                    # it is not retried in this run. Only fast failures are.
                    return replace(result, error=f"{result.error} after {stalled:.0f} s")
                delay = backoff_delay(attempt, self.rng)
            except httpx.HTTPError as exc:
                return FetchResult(feed, "failed", error=_describe(exc), validators=validators)
            except _RefusedRedirect as exc:
                return FetchResult(feed, "failed", error=str(exc), validators=validators)
            except httpx.InvalidURL as exc:
                # Config validates feed URLs; this is a redirect to an address httpx refuses.
                error = f"redirected to an invalid URL: {exc}"
                return FetchResult(feed, "failed", error=error, validators=validators)
            except _BadEncoding as exc:
                error = f"the body could not be decoded ({exc})"
                return FetchResult(feed, "failed", error=error, validators=validators)
            except _TooLarge:
                limit = self.config.max_bytes
                return FetchResult(
                    feed,
                    "failed",
                    error=f"the body is larger than the {_size(limit)} limit",
                    validators=validators,
                )
            else:
                if result.http_status not in RETRY_STATUSES:
                    return result
                delay = backoff_delay(attempt, self.rng)
                asked = retry_after_seconds(result.retry_after, self.clock())
                if asked is not None:
                    delay = asked
            remaining = self.config.timeout - (time.monotonic() - started)
            if attempt >= self.config.retries:
                return result
            if delay >= remaining:
                # Waiting would outlast the feed's deadline: give up now rather than sleep
                # into a timeout, and say why when the server asked for the wait.
                if result.retry_after is not None:
                    return replace(result, error=f"{result.error}; asked to wait {delay:.0f} s")
                return result
            attempt += 1
            await self.sleep(delay)

    async def _fetch_once(self, feed: FeedConfig, validators: Validators) -> FetchResult:
        headers = conditional_headers(validators)
        extensions = {ORIGIN: str(httpx.URL(feed.url))}
        async with self.client.stream(
            "GET", feed.url, headers=headers, extensions=extensions
        ) as response:
            permanent = _permanent_redirect(response)
            status = response.status_code
            if status == 304:
                return FetchResult(
                    feed,
                    "not_modified",
                    http_status=304,
                    final_url=str(response.url),
                    validators=_merge_validators(validators, response.headers),
                    permanent_redirect=permanent,
                )
            if status != 200:
                return FetchResult(
                    feed,
                    "failed",
                    http_status=status,
                    final_url=str(response.url),
                    validators=validators,
                    permanent_redirect=permanent,
                    gone=status == 410,
                    error=_status_error(status, response.reason_phrase),
                    retry_after=response.headers.get("retry-after"),
                )
            body = await self._read_capped(response)
            digest = hashlib.sha256(body).hexdigest()
            new_validators = Validators(
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                content_hash=digest,
            )
            unchanged = validators.content_hash == digest
            return FetchResult(
                feed,
                "unchanged" if unchanged else "ok",
                http_status=200,
                body=None if unchanged else body,
                final_url=str(response.url),
                content_type=response.headers.get("content-type"),
                validators=new_validators,
                permanent_redirect=permanent,
            )

    async def _read_capped(self, response: httpx.Response) -> bytes:
        limit = self.config.max_bytes
        declared = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding")
        if encoding is None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        decoder = BoundedDecoder(encoding, limit)
        chunks = [decoder.feed(raw) async for raw in response.aiter_raw()]
        return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MiB" if n >= 1024 * 1024 else f"{n / 1024:g} KiB"


def _status_error(status: int, reason: str) -> str:
    text = f"HTTP {status} {reason}".strip()
    if status == 410:
        return f"{text}: the feed is gone for good"
    if status == 404:
        return f"{text}: check the URL"
    if status in (401, 403):
        return f"{text}: the server refuses curator"
    return text


def _permanent_redirect(response: httpx.Response) -> str | None:
    """The final URL when every hop was a permanent redirect (301 or 308)."""
    if response.url.scheme not in ("http", "https"):
        return None  # never suggest a feed address curator would not fetch
    if response.history and all(r.status_code in (301, 308) for r in response.history):
        return str(response.url)
    return None


def _merge_validators(old: Validators, headers: httpx.Headers) -> Validators:
    return Validators(
        etag=headers.get("etag") or old.etag,
        last_modified=headers.get("last-modified") or old.last_modified,
        content_hash=old.content_hash,
    )


async def fetch_all(
    feeds: Iterable[FeedConfig],
    validators: Mapping[str, Validators],
    config: FetchConfig,
    *,
    client: httpx.AsyncClient | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> list[FetchResult]:
    """Fetch every feed concurrently; results in the order of ``feeds``."""
    feeds = list(feeds)
    async with client_for(config, client) as http:
        fetcher = Fetcher(http, config, sleep=sleep, rng=rng)
        return list(
            await asyncio.gather(
                *(fetcher.fetch(f, validators.get(f.url, Validators())) for f in feeds)
            )
        )
