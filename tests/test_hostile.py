"""Hardening: hostile corpus files, broken servers and local faults change nothing they should
not. Each runs the real CLI against a real feed server on 127.0.0.1."""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import (
    CORPUS,
    FeedServer,
    Item,
    Route,
    corpus_dir,
    rss,
    run_cli,
    utc,
    write_config,
)
from curator.parse import parse_feed
from safety import header_problems, html_problems, message_parts

run = run_cli


def _check_outbox(folder: Path) -> list[str]:
    """Every message in ``folder`` has whole headers and inert HTML."""
    problems: list[str] = []
    for path in folder.glob("*.eml"):
        raw = path.read_bytes()
        problems += header_problems(raw)
        problems += html_problems(message_parts(raw)[1])
    return problems


# ---------------------------------------------------------------- the hostile corpus


def _hostile_folders() -> list[str]:
    root = CORPUS / "hostile"
    if not root.is_dir():
        return ["(absent)"]
    folders = {p.parent.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    return sorted(folders)


def _sweep(files: list[Path], feed_server: FeedServer, tmp_path: Path) -> str:
    """Serve each file as a feed, send a dry run, and check what comes out; return the
    messages written, as text."""
    feeds = []
    for i, path in enumerate(files):
        url = feed_server.add(f"/{i}.xml", Route(body=path.read_bytes(), content_type="text/xml"))
        feeds.append(f"  - name: f{i}\n    url: {url}\n")
    config = write_config(
        tmp_path,
        "newsletter:\n  to: [reader@example.org]\n  max_posts: 200\n  max_posts_per_feed: 50\n"
        "fetch:\n  timeout: 10\n  retries: 0\nfeeds:\n" + "".join(feeds),
    )
    # Corpus entries are dated 1999-2019; a clock in 2000 makes every dated one count as new
    # (a post dated after `now` counts as published at `now`), so all of them get rendered.
    code, out, err = run(config, "send", "--dry-run", "--now", "2000-01-05T00:00:00Z")
    assert "Traceback" not in out + err
    skipped = [line for line in err.splitlines() if line.startswith("feed 'f")]
    assert len(skipped) == len({line.split("'")[1] for line in skipped}), "one line per feed"
    # Exit 1 exactly when every feed failed (nothing new can be sent), else 0.
    assert code == (1 if len(skipped) == len(files) else 0), err
    assert _check_outbox(tmp_path / "outbox") == []
    return "".join(
        p.read_bytes().decode("utf-8", "replace") for p in (tmp_path / "outbox").glob("*.eml")
    )


OWN_HOSTILE = Path(__file__).parent / "data" / "hostile"


def test_our_hostile_feeds_give_safe_email_or_clear_reasons(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Each of tests/data/hostile served as a feed: no traceback, one line per broken feed,
    an email with inert HTML and whole headers, and no entity expanded or file read."""
    files = sorted(OWN_HOSTILE.iterdir())
    assert len(files) >= 7
    written = _sweep(files, feed_server, tmp_path)
    assert "Whole post" in written  # the readable part of a cut-off feed still goes out
    assert "lollollol" not in written
    hostname = Path("/etc/hostname")
    if hostname.is_file() and hostname.read_text().strip():
        assert f"Look: {hostname.read_text().strip()}" not in written


@pytest.mark.corpus
@pytest.mark.parametrize("folder", _hostile_folders())
def test_hostile_corpus_gives_safe_email_or_clear_reasons(
    folder: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    """Every hostile file served as a feed: no traceback, exit 0 or 1, one line per broken
    feed, and an email with inert HTML and whole headers."""
    root = corpus_dir() / "hostile" / folder
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix != ".md")
    _sweep(files, feed_server, tmp_path)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']>\n<rss version="2.0"><channel><title>t</title><item><title>&lol9;</title>'
    + b"<link>https://example.org/a</link></item></channel></rss>"
)


def test_billion_laughs_is_never_expanded() -> None:
    """Nested entity declarations stay unexpanded: memory stays small."""
    tracemalloc.start()
    try:
        parsed = parse_feed(BILLION_LAUGHS, "https://example.org/feed")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
    assert all(len(e.title) < 10_000 for e in parsed.entries)


def test_external_entities_are_never_read(tmp_path: Path) -> None:
    """A SYSTEM entity or DTD pointing at a local file never brings its content in."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{secret}">\n'
        f'<!ENTITY % ext SYSTEM "file://{secret}"> %ext;\n]>\n'
        '<rss version="2.0"><channel><title>t &xxe;</title><item><title>a &xxe;</title>'
        "<link>https://example.org/a</link><description>&xxe;</description></item>"
        "</channel></rss>"
    ).encode()
    parsed = parse_feed(body, "https://example.org/feed")
    text = repr(parsed)
    assert "TOP-SECRET-MARKER" not in text


# ---------------------------------------------------------------- broken servers


def _redirect_to(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(302)
        request.send_header("Location", location)
        request.send_header("Content-Length", "0")
        request.end_headers()

    return handler


def test_server_faults_each_end_in_bound_and_healthy_feeds_still_send(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """All faults in one run beside two healthy feeds: each is reported once, the issue goes
    out with the healthy posts, and nothing hangs."""
    good = rss([Item("Healthy post one", "https://good.example/1", utc("2026-11-25T10:00"))])
    good2 = rss([Item("Healthy post two", "https://good.example/2", utc("2026-11-25T11:00"))])
    latin = rss([Item("Café crème", "https://good.example/3", utc("2026-11-25T12:00"))])
    faults: dict[str, Route] = {
        "/reset": Route(body=good * 50, reset=True),
        "/endless": Route(endless=True),
        "/drip": Route(body=good, drip=0.5),
        "/bomb": Route(body=b"\0" * (40 * 1024 * 1024), gzip=True),
        "/loop": Route(handler=_redirect_to("/loop")),
        "/to-ftp": Route(handler=_redirect_to("ftp://example.org/feed")),
        "/to-js": Route(handler=_redirect_to("javascript:alert(1)")),
        "/html": Route(
            body=b"<!doctype html><html><body>Hello</body></html>", content_type="text/html"
        ),
        "/empty": Route(body=b""),
    }
    healthy: dict[str, Route] = {
        "/good": Route(body=good),
        "/no-type": Route(body=good2, content_type=""),
        "/wrong-charset": Route(
            body=latin.decode().encode("latin-1", "replace").replace(b"utf-8", b"iso-8859-1"),
            content_type="application/rss+xml; charset=utf-16",
        ),
    }
    lines = []
    for path, route in {**faults, **healthy}.items():
        url = feed_server.add(path, route)
        lines.append(f"  - name: {path.strip('/')}\n    url: {url}\n")
    tls = feed_server.url("/good").replace("http://", "https://")
    lines.append(f"  - name: tls-mismatch\n    url: {tls}\n")
    config = write_config(
        tmp_path,
        "newsletter:\n  to: [reader@example.org]\n"
        "fetch:\n  timeout: 2\n  connect_timeout: 1\n  retries: 1\n  max_bytes: 1048576\n"
        "feeds:\n" + "".join(lines),
    )
    started = time.monotonic()
    code, out, err = run(config, "send", "--dry-run", "--now", "2026-11-26T08:00:00Z")
    elapsed = time.monotonic() - started
    # A hang guard, not a speed claim: every fault is bounded by the 2 s feed deadline, and
    # they run concurrently.
    assert elapsed < 30
    assert code == 0, (out, err)
    for name in [*(p.strip("/") for p in faults), "tls-mismatch"]:
        reported = [line for line in err.splitlines() if line.startswith(f"feed '{name}'")]
        assert len(reported) == 1, (name, err)
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    text, html = message_parts(eml.read_bytes())
    assert "Healthy post one" in text and "Healthy post two" in text
    assert html_problems(html) == []


# ---------------------------------------------------------------- local faults

CONFIG = """\
newsletter:
  to: [ann@example.org, bob@example.org]
feeds:
  - name: Ron
    url: {url}
"""


@pytest.fixture
def one_feed(feed_server: FeedServer, tmp_path: Path) -> Path:
    url = feed_server.add(
        "/ron.xml", rss([Item("A post", "https://ron.example/a", utc("2026-11-25T10:00"))])
    )
    return write_config(tmp_path, CONFIG.format(url=url))


NOW = ("--now", "2026-11-26T08:00:00Z")


def test_unwritable_outbox_loses_no_delivery(one_feed: Path) -> None:
    """An outbox that cannot be written is a clear error, exit 1; nobody is marked sent, and
    the next run, once fixed, delivers to everyone exactly once."""
    (one_feed.parent / "outbox").write_text("a file where the folder should be")
    code, _, err = run(one_feed, "send", *NOW)
    assert code == 1
    assert "outbox" in err and "Traceback" not in err
    state = sqlite3.connect(one_feed.parent / ".curator" / "state.db")
    statuses = [r[0] for r in state.execute("SELECT status FROM deliveries")]
    state.close()
    assert statuses == ["pending", "pending"]
    (one_feed.parent / "outbox").unlink()
    code, _, err = run(one_feed, "send", *NOW)
    assert code == 0, err
    assert len(list((one_feed.parent / "outbox").glob("*.eml"))) == 2
    # A rewrite under the same name would hide a second copy from a count: empty the
    # outbox first, so anything the next run writes shows.
    for path in (one_feed.parent / "outbox").glob("*.eml"):
        path.unlink()
    assert run(one_feed, "send", *NOW)[0] == 0
    assert list((one_feed.parent / "outbox").glob("*.eml")) == []


def test_state_path_that_is_a_folder_is_a_clear_error(one_feed: Path) -> None:
    """A state path that cannot be a database gives one line and exit 1."""
    (one_feed.parent / "odd").mkdir()
    code, _, err = run(one_feed, "--state", str(one_feed.parent / "odd"), "send", *NOW)
    assert code == 1
    assert "state" in err and "Traceback" not in err


def test_state_locked_by_another_run_exits_at_once(one_feed: Path) -> None:
    """While another run holds the lock, send says so and exits 1 without sending."""
    from curator.store import RunLock

    with RunLock(one_feed.parent / ".curator" / "state.db"):
        code, _, err = run(one_feed, "send", *NOW)
    assert code == 1
    assert "another curator run" in err
    assert not (one_feed.parent / "outbox").exists()


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{% for x in %}", "issue.html.j2:1: "),
        ("{{ no_such_variable }}", "'no_such_variable' is undefined"),
    ],
    ids=["syntax-error", "missing-variable"],
)
def test_broken_user_template_is_a_clear_error_and_records_nothing(
    one_feed: Path, template: str, expected: str
) -> None:
    """A broken template stops the run before anything is frozen or sent."""
    folder = one_feed.parent / "mytemplates"
    folder.mkdir()
    (folder / "issue.html.j2").write_text(template)
    one_feed.write_text(one_feed.read_text() + "templates: mytemplates\n")
    code, _, err = run(one_feed, "send", *NOW)
    assert code == 1
    assert expected in err
    assert "no issues yet" in run(one_feed, "history")[2]
    assert not (one_feed.parent / "outbox").exists()
