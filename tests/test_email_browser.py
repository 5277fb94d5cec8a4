"""The week of real-shaped feeds, rendered and opened in a real headless Chromium.

Pictures are served by a local HTTP server at the sizes their URLs and feeds declare (an MP3
would be served as audio), so the browser lays the issue out as a reader's mail client
would. At 375 and 1024 px, light and dark, nothing may scroll sideways, no picture may be
wider than the card or drawn wider than it really is, and every picture must be an image.
Screenshots land in screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import functools
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from curator.normalize import size_from_url
from curator.render import render_issue
from digest_samples import NEWSLETTER, SOURCES
from email_week import ARCHIVE_URL, week_draft
from test_browser import CHROMIUM, SCREENSHOTS, Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium at /usr/bin/chromium"),
]

# Every picture as the reader sees it, and the page's widths.
MEASURE = """(() => {
  const card = document.querySelector('.card').getBoundingClientRect();
  const images = [...document.images].map(img => {
    const r = img.getBoundingClientRect();
    return {src: img.currentSrc || img.src, width: r.width, left: r.left, right: r.right,
            natural: img.naturalWidth, complete: img.complete};
  });
  return {width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
          height: document.documentElement.scrollHeight, cardWidth: card.width,
          cardRight: card.right, images};
})()"""


@functools.cache
def png(width: int, height: int) -> bytes:
    """A PNG of a soft vertical gradient: something that looks like a photograph's sky."""
    rows = b"".join(
        b"\0" + bytes((70 + y * 120 // height, 110 + y * 60 // height, 150)) * width
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


class PictureServer:
    """Serves /HOST/PATH as the picture (or audio file) the original URL names."""

    def __init__(self) -> None:
        served: list[tuple[str, str]] = []
        self.served = served

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                original = "https://" + self.path.lstrip("/")
                if re.search(r"\.(mp3|m4a|mp4|mov)(?:$|[?#])", original):
                    kind, body = "audio/mpeg", b"ID3" + b"\0" * 2048
                else:
                    width, height = size_from_url(original)
                    width = width or 1200
                    kind, body = "image/png", png(width, height or width * 2 // 3)
                served.append((original, kind))
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"


@pytest.fixture(scope="module")
def pictures() -> Iterator[PictureServer]:
    server = PictureServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium = Browser(
        tmp_path_factory.mktemp("chromium-profile"), "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    )
    yield chromium
    chromium.close()


def served_locally(html: str, base: str) -> str:
    """The issue with each picture's https address pointed at the local picture server."""
    return re.sub(
        r'(<img\b[^>]*\bsrc=")https://([^"]+)"',
        lambda m: f'{m.group(1)}{base}{m.group(2)}"',
        html,
    )


@pytest.mark.parametrize("width", [375, 1024])
def test_a_real_week_fits_the_card_and_every_picture_is_a_real_image(
    browser: Browser, pictures: PictureServer, tmp_path: Path, width: int
) -> None:
    """No sideways scrolling, no picture wider than the card or stretched past its own
    width, and every picture's source is an image that the browser could draw."""
    issue = render_issue(week_draft(), NEWSLETTER, sources=SOURCES, archive_url=ARCHIVE_URL)
    sources = re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', issue.html)
    assert sources, "the week has pictures to show"
    for src in sources:
        assert not re.search(r"(?i)\.(mp3|m4a|mp4|mov|ogg|wav)(?:$|[?#])", urlsplit(src).path)
    page = tmp_path / "issue.html"
    page.write_text(served_locally(issue.html, pictures.base), encoding="utf-8")
    SCREENSHOTS.mkdir(exist_ok=True)

    for dark in (False, True):
        browser.open(page.as_uri(), width, 900, dark=dark)
        found = browser.evaluate(MEASURE)
        assert found["scrollWidth"] <= width, "the page scrolls sideways"
        for image in found["images"]:
            assert image["complete"] and image["natural"] > 0, f"not an image: {image['src']}"
            assert image["width"] <= found["cardWidth"], f"wider than the card: {image['src']}"
            assert image["right"] <= found["cardRight"] + 0.5, image["src"]
            assert image["width"] <= image["natural"] + 0.5, f"stretched: {image['src']}"
        browser.resize(width, found["height"])
        shot = SCREENSHOTS / f"email-week-{width}-{'dark' if dark else 'light'}.png"
        browser.screenshot(shot)
        assert shot.stat().st_size > 10_000
    assert all(kind.startswith("image/") for _, kind in pictures.served)
