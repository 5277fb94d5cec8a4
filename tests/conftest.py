"""Shared test parts: a real HTTP feed server on 127.0.0.1, a real SMTP server (aiosmtpd),
feed builders and a config writer. Nothing here touches the internet."""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed set of examples so a red build always reproduces;
# locally every run explores new ones (and remembers failures in .hypothesis/).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# CURATOR_CORPUS points elsewhere, e.g. from a git worktree that is not beside shared/.
CORPUS = Path(
    os.environ.get("CURATOR_CORPUS")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """In CI (CURATOR_ONLY_BROWSER_SKIPS=1) a skip of anything but a browser test fails: a
    behaviour that silently skips on one runner is a behaviour that runner never tests."""
    report = yield
    strict = os.environ.get("CURATOR_ONLY_BROWSER_SKIPS") == "1"
    if strict and report.skipped and item.get_closest_marker("browser") is None:
        report.outcome = "failed"
        report.longrepr = (
            f"only browser tests may skip in CI, and this one skipped: {report.longrepr}"
        )
    return report


def corpus_dir() -> Path:
    """The shared corpus folder, or skip the test when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is not present")
    return CORPUS


# ---------------------------------------------------------------- feeds


@dataclass
class Item:
    title: str
    link: str
    published: datetime | None
    guid: str | None = None
    description: str = "A post worth reading."
    categories: tuple[str, ...] = ()
    author: str | None = None


def rss(items: list[Item], title: str = "A Feed", link: str = "https://example.org/") -> bytes:
    """An RSS 2.0 document with ``items``."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>{escape(link)}</link>",
        "<description>test feed</description>",
    ]
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item.title)}</title><link>{escape(item.link)}</link>")
        if item.guid:
            parts.append(f"<guid>{escape(item.guid)}</guid>")
        if item.published:
            parts.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
        if item.author:
            parts.append(f"<author>{escape(item.author)}</author>")
        for category in item.categories:
            parts.append(f"<category>{escape(category)}</category>")
        parts.append(f"<description>{escape(item.description)}</description>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---------------------------------------------------------------- HTTP server


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    delay: float = 0.0  # seconds before answering
    drip: float | None = None  # seconds between single bytes of the body
    endless: bool = False  # stream zeros forever
    reset: bool = False  # drop the connection half-way through the body
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class _ListeningServer(ThreadingHTTPServer):
    # The default backlog of 5 overflows when dozens of feeds connect at once; the kernel
    # then drops SYNs and the client retries a second later, which looks like a slow server.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is what several tests do on purpose. The default
        # prints a traceback to stderr, where CliRunner would mix it into curator's own output.
        return None


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 with routes set by the test."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.stop_event = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                server.requests.append(
                    Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                if route.handler is not None:
                    route.handler(self)
                    return
                if route.delay:
                    server.stop_event.wait(route.delay)
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self._send(304, b"", None, route)
                    return
                if (
                    route.last_modified
                    and not route.etag
                    and self.headers.get("If-Modified-Since") == route.last_modified
                ):
                    self._send(304, b"", None, route)
                    return
                self._send(route.status, route.body, route.content_type, route)

            def _send(
                self, status: int, body: bytes, ctype: str | None, route: Route | None = None
            ) -> None:
                try:
                    self.send_response(status)
                    headers = dict(route.headers) if route else {}
                    if route and route.etag:
                        headers.setdefault("ETag", route.etag)
                    if route and route.last_modified:
                        headers.setdefault("Last-Modified", route.last_modified)
                    if ctype and status != 304:
                        headers.setdefault("Content-Type", ctype)
                    if route and route.gzip and status == 200:
                        body = gzip.compress(body)
                        headers["Content-Encoding"] = "gzip"
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if route and route.endless:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        chunk = b"0" * 65536
                        while not server.stop_event.is_set():
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        return
                    if status == 304:
                        self.end_headers()
                        return
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if route and route.reset:
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return
                    if route and route.drip is not None:
                        for byte in body:
                            if server.stop_event.wait(route.drip):
                                return
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    return

        self.httpd = _ListeningServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def add(self, path: str, route: Route | bytes) -> str:
        self.routes[path] = route if isinstance(route, Route) else Route(body=route)
        return self.url(path)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def running_server() -> Iterator[FeedServer]:
    """A FeedServer that runs for the block."""
    server = FeedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with running_server() as server:
        yield server


# ---------------------------------------------------------------- SMTP server


@dataclass
class SmtpInbox:
    """What the test SMTP server received, and how it should answer."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> "451 ..." / "550 ..."
    drop_after: int | None = None  # close the connection after this many accepted messages
    port: int = 0

    def to(self, recipient: str) -> list[bytes]:
        return [data for _, rcpts, data in self.messages if recipient in rcpts]


class _Handler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.inbox.refuse:
            return self.inbox.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.inbox.drop_after is not None and len(self.inbox.messages) >= self.inbox.drop_after:
            server.transport.close()
            return "421 closing"
        self.inbox.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[SmtpInbox]:
    from aiosmtpd.controller import Controller

    inbox = SmtpInbox(port=free_port())
    controller = Controller(_Handler(inbox), hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


# ---------------------------------------------------------------- config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CliResult = tuple[int, str, str]


def run_cli(config: Path | None, *args: str) -> CliResult:
    """Run curator's CLI in-process: exit code, stdout, stderr. A crash (anything but a clean
    exit) is raised again, so a test sees the traceback it would otherwise hide in a code."""
    from typer.testing import CliRunner

    from curator.cli import app

    head = ["--config", str(config)] if config is not None else []
    result = CliRunner().invoke(app, [*head, *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cli_run() -> Callable[..., CliResult]:
    """:func:`run_cli`, for tests that take their parts as fixtures."""
    return run_cli


def write_config(folder: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's CURATOR_* settings."""
    for name in (
        "CURATOR_CONFIG",
        "CURATOR_STATE",
        "CURATOR_TO",
        "CURATOR_SMTP_PASSWORD",
        "CURATOR_POSTMARK_TOKEN",
        "CURATOR_IMAP_PASSWORD",
        "CURATOR_NOW",
        # A test of a send must not turn into a test of the CI refusal because it runs in CI.
        "CI",
        "GITHUB_ACTIONS",
        "GITHUB_STEP_SUMMARY",
    ):
        monkeypatch.delenv(name, raising=False)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll a condition a real process or thread will make true (not a clock we own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def feed(feed_server: FeedServer) -> str:
    """One feed with one post of the week of 2026-11-23: what the delivery tests send."""
    return feed_server.add(
        "/ron.xml",
        rss([Item("Lead from the middle", "https://ron.example/m/", utc("2026-11-24T10:00"))]),
    )


@pytest.fixture
def mailbox() -> Iterator[Any]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""
    from mail_kit import mail_server

    with mail_server() as box:
        yield box


# Runs a command in a grandchild with a 1 GB address-space limit and writes its exit code and
# peak memory (kB) to a file. A launcher this small sits between pytest and the command
# because a child forked from pytest starts with pytest's own (large) resident set, and that
# high-water mark would count as the command's.
_MEASURED = """
import json, os, resource, subprocess, sys
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
child = subprocess.Popen(sys.argv[2:], preexec_fn=limit)
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_maxrss], out)
"""


@dataclass(frozen=True)
class Measured:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_kb: int


def run_measured(
    argv: list[str], *, env: dict[str, str], folder: Path, timeout: float = 60
) -> Measured:
    """Run ``argv`` with its time and its own peak memory measured (memory capped at 1 GB)."""
    import json
    import subprocess
    import sys

    result = folder / "measured.json"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(result), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    seconds = time.monotonic() - started
    code, peak_kb = json.loads(result.read_text())
    return Measured(code, done.stdout, done.stderr, seconds, peak_kb)
