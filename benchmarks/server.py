"""A local feed server for the benchmark: many feeds, each on its own loopback address.

Each feed lives on its own address in 127.1.0.0/16 (all loopback on Linux), on one shared port,
the way each writer's blog is its own host on the web. That matters: curator limits requests per
host (``fetch.per_host``, 2 by default), so 200 feeds behind one address would measure that
politeness limit, not the fetcher.

What it serves, per feed: a generated body (see :mod:`benchmarks.feeds`), gzip when the client
accepts it, an ETag and a Last-Modified that it honours with 304 Not Modified, and a fixed
latency before every answer. A fixed share of the feeds is broken on purpose (see
:func:`kind_of`): HTTP 500, a malformed body, a 301 redirect to the real address; and extra
"hanging" feeds accept the request and never answer. ``/_stats`` and ``/_reset`` on any address
read and clear the request and byte counters.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import random
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from benchmarks.feeds import Feed, make_feed, malformed

_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    304: "Not Modified",
    404: "Not Found",
    500: "Internal Server Error",
}


def host_of(index: int) -> str:
    """The loopback address of feed ``index``: 127.1.0.1, 127.1.0.2, ... 250 per /24."""
    return f"127.1.{index // 250}.{1 + index % 250}"


def kind_of(index: int) -> str:
    """What feed ``index`` is: a fixed pattern, so any first-N subset has the same mix.

    Per hundred feeds: 2 redirects, 1 malformed body, 1 HTTP 500, the rest healthy.
    """
    if index % 50 == 1:
        return "redirect"
    if index % 100 == 2:
        return "malformed"
    if index % 100 == 3:
        return "error"
    return "ok"


@dataclass
class Entry:
    """One feed as the server holds it: plain and gzip bodies, validators, behaviour."""

    kind: str
    feed: Feed | None
    body: bytes = b""
    gz: bytes = b""
    etag: str = ""


@dataclass
class Stats:
    requests: int = 0
    bytes_sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    hanging: int = 0
    stalled: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "bytes_sent": self.bytes_sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "hanging": self.hanging,
        }


class FeedServer:
    """Serves ``feeds`` regular feeds plus ``hanging`` feeds that never answer and
    ``stalling`` feeds that stay silent for ``stall`` seconds, then hang up."""

    def __init__(  # noqa: PLR0917 - the server's knobs
        self,
        feeds: int,
        hanging: int,
        seed: int,
        latency: float,
        stalling: int = 0,
        stall: float = 5.0,
    ) -> None:
        self.stalling = stalling
        self.stall = stall
        self.latency = latency
        self.stats = Stats()
        self.port = 0
        self.entries: dict[str, Entry] = {}
        self.feeds = feeds
        self.hanging = hanging
        self.seed = seed

    def build(self) -> None:
        """Generate every body once, before the port opens: serving costs no CPU for it."""
        for index in range(self.feeds + self.hanging + self.stalling):
            if index >= self.feeds + self.hanging:
                self.entries[host_of(index)] = Entry("stall", None)
                continue
            if index >= self.feeds:
                self.entries[host_of(index)] = Entry("hang", None)
                continue
            kind = kind_of(index)
            feed = make_feed(self.seed, index, f"http://{host_of(index)}")
            body = malformed(feed) if kind == "malformed" else feed.body
            self.entries[host_of(index)] = Entry(
                kind,
                feed,
                body=body,
                gz=gzip.compress(body, compresslevel=6, mtime=0),
                etag='"' + hashlib.sha1(body, usedforsecurity=False).hexdigest()[:20] + '"',
            )

    def url(self, index: int) -> str:
        """The address to put in feeds.yaml for feed ``index`` (redirects start one hop off)."""
        path = "/feed" if index < self.feeds and kind_of(index) == "redirect" else "/feed/"
        return f"http://{host_of(index)}:{self.port}{path}"

    async def start(self) -> list[asyncio.Server]:
        """Bind one listening socket per feed address on a port free on all of them."""
        rng = random.Random()  # a port number, not a secret
        for _ in range(20):
            port = rng.randint(20_000, 60_000)
            servers: list[asyncio.Server] = []
            try:
                for host in self.entries:
                    servers.append(await asyncio.start_server(self._serve, host, port))
            except OSError:
                for server in servers:
                    server.close()
                continue
            self.port = port
            return servers
        raise OSError("no port free on every loopback address")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                request_line, *lines = head.decode("latin-1").split("\r\n")
                parts = request_line.split(" ")
                if len(parts) != 3:
                    return
                path = parts[1]
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                if path in ("/_stats", "/_reset"):
                    if path == "/_reset":
                        self.stats = Stats()
                    payload = json.dumps(self.stats.as_dict()).encode()
                    await self._send(writer, 200, {"Content-Type": "application/json"}, payload)
                    continue
                self.stats.requests += 1
                entry = self.entries.get(host)
                if entry is not None and entry.kind == "hang":
                    self.stats.hanging += 1
                    # Never answer; wait for the client to give up and close.
                    await reader.read()
                    return
                if entry is not None and entry.kind == "stall":
                    # Silent for a while, then hang up without a word.
                    self.stats.stalled += 1
                    await asyncio.sleep(self.stall)
                    return
                await asyncio.sleep(self.latency)
                await self._answer(writer, host, path, headers, entry)
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        host: str,
        path: str,
        headers: dict[str, str],
        entry: Entry | None,
    ) -> None:
        if entry is None or entry.feed is None or path not in ("/feed", "/feed/"):
            await self._send(writer, 404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        if path == "/feed":
            if entry.kind != "redirect":
                await self._send(writer, 404, {"Content-Type": "text/plain"}, b"not found\n")
                return
            location = f"http://{host}:{self.port}/feed/"
            await self._send(writer, 301, {"Location": location}, b"")
            return
        if entry.kind == "error":
            await self._send(writer, 500, {"Content-Type": "text/html"}, b"<h1>Error</h1>\n")
            return
        validators = {"ETag": entry.etag, "Last-Modified": entry.feed.last_modified}
        if _not_modified(headers, entry.etag, entry.feed.last_modified):
            await self._send(writer, 304, validators, b"")
            return
        out = {"Content-Type": entry.feed.content_type, "Vary": "Accept-Encoding", **validators}
        if "gzip" in headers.get("accept-encoding", ""):
            out["Content-Encoding"] = "gzip"
            await self._send(writer, 200, out, entry.gz)
        else:
            await self._send(writer, 200, out, entry.body)

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if status != 304:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer.write(head + body)
        await writer.drain()
        self.stats.statuses[status] += 1
        self.stats.bytes_sent += len(head) + len(body)


def _not_modified(headers: dict[str, str], etag: str, last_modified: str) -> bool:
    """RFC 9110: If-None-Match decides when present; otherwise If-Modified-Since."""
    if "if-none-match" in headers:
        tags = [t.strip() for t in headers["if-none-match"].split(",")]
        return etag in tags or "*" in tags
    since = headers.get("if-modified-since")
    if since:
        try:
            return parsedate_to_datetime(since) >= parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
    return False


async def _main(  # noqa: PLR0917 - the server's knobs
    feeds: int, hanging: int, seed: int, latency: float, stalling: int, stall: float
) -> None:
    server = FeedServer(feeds, hanging, seed, latency, stalling, stall)
    server.build()
    listeners = await server.start()
    ready = {
        "port": server.port,
        "feeds": [server.url(i) for i in range(feeds)],
        "kinds": [kind_of(i) for i in range(feeds)],
        "hanging": [server.url(i) for i in range(feeds, feeds + hanging)],
        "stalling": [server.url(i) for i in range(feeds + hanging, feeds + hanging + stalling)],
        "stats": f"http://{host_of(0)}:{server.port}/_stats",
    }
    print(json.dumps(ready), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The runner closes our stdin when it is done (or dies): stop then, never linger.
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    for listener in listeners:
        listener.close()


def serve(  # noqa: PLR0917 - the server's knobs
    feeds: int, hanging: int, seed: int, latency: float, stalling: int = 0, stall: float = 5.0
) -> None:
    """Build the feeds, print one JSON line with the addresses, serve until stopped."""
    asyncio.run(_main(feeds, hanging, seed, latency, stalling, stall))
