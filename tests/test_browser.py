"""A real headless Chromium opens a rendered issue on a phone and a desktop width.

It proves what no string check can: nothing scrolls sideways and every post link is on
screen. Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
NUL-separated JSON on file descriptors 3 and 4), so the test needs nothing beyond the
standard library. Headless windows cannot be narrower than 500 px, so the phone width is set
with device emulation, as DevTools does. Screenshots land in screenshots/ (git-ignored).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from curator.render import render_issue
from digest_samples import NEWSLETTER, SOURCES, sample_draft

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="no Chromium at /usr/bin/chromium (apt install chromium)",
    ),
]

# Measures the page as a reader sees it: its widths and where each post's link sits.
MEASURE = """(() => {
  const width = window.innerWidth, doc = document.documentElement;
  const links = [...document.querySelectorAll('.lead-title a, .post-title a, .more-item a')];
  const hidden = links.filter(a => {
    const r = a.getBoundingClientRect(), s = getComputedStyle(a);
    return !(r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= width + 0.5
             && s.visibility !== 'hidden' && s.display !== 'none');
  }).map(a => a.href);
  return {width, scrollWidth: doc.scrollWidth, height: doc.scrollHeight,
          links: links.map(a => a.href), hidden};
})()"""


def _high(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """Just enough of the DevTools protocol to load a page, measure it and photograph it."""

    def __init__(self, profile: Path, resolver_rules: str = "MAP * ~NOTFOUND") -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Above 4, so placing them on 3 and 4 in the child cannot overwrite one with the other.
        to_browser_r = _high(to_browser_r)
        from_browser_w = _high(from_browser_w)

        def wire_pipes() -> None:  # runs in the child: Chromium reads fd 3, writes fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                # Images in the issue point at the web; resolve nothing so nothing waits
                # (or, given other rules, send them to a local server).
                f"--host-resolver-rules={resolver_rules}",
                "about:blank",
            ],
            preexec_fn=wire_pipes,  # noqa: PLW1509 - only dup2 runs between fork and exec
            pass_fds=(3, 4),  # the pipes, once wire_pipes has put them there
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def wait_for(self, event: str) -> None:
        while self._read_message().get("method") != event:
            pass

    def open(self, url: str, width: int, height: int, dark: bool = False) -> None:
        if self.session is None:
            targets = self.call("Target.getTargets")["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
            self.session = attached["sessionId"]
            self.call("Page.enable")
        self.resize(width, height)
        scheme = "dark" if dark else "light"
        self.call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": scheme}],
        )
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def resize(self, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"][
            "value"
        ]

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    chromium = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.mark.parametrize("width", [375, 1024])
def test_issue_fits_the_screen_and_every_post_link_is_visible(
    browser: Browser, tmp_path: Path, width: int
) -> None:
    """At 375 and 1024 px nothing scrolls sideways and every post's link is on screen."""
    issue = render_issue(sample_draft(), NEWSLETTER, sources=SOURCES)
    page = tmp_path / "issue.html"
    page.write_text(issue.html, encoding="utf-8")
    SCREENSHOTS.mkdir(exist_ok=True)
    draft = sample_draft()
    expected = sorted(p.link or "" for p in (*draft.posts, *draft.more))

    for dark in (False, True):
        browser.open(page.as_uri(), width, 800, dark=dark)
        found = browser.evaluate(MEASURE)
        assert found["width"] == width
        assert found["scrollWidth"] <= width, "the page scrolls sideways"
        assert sorted(found["links"]) == expected
        assert found["hidden"] == []
        # A page-tall viewport photographs the whole issue in one image.
        browser.resize(width, found["height"])
        shot = SCREENSHOTS / f"issue-{width}-{'dark' if dark else 'light'}.png"
        browser.screenshot(shot)
        assert shot.stat().st_size > 10_000
