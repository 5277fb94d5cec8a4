"""Secrets (the SMTP password, the Postmark token) never appear in output, tracebacks, the
state file, the outbox, the archive or a preview, even with --debug and when things fail."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import respx
from typer.testing import CliRunner

from conftest import FeedServer, Item, rss, utc, write_config
from curator.cli import app
from mail_kit import mail_server

PASSWORD = "pw-Sekr1t-7f3a9c"
TOKEN = "tok-Sekr1t-b81e42"
NOW = ("--now", "2026-11-26T08:00:00Z")


def _everything_written(folder: Path) -> bytes:
    """Every byte curator left under ``folder`` (state with its WAL, outbox, archive...)."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _invoke(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), "--debug", *args])
    shown = result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        shown += repr(result.exception) + str(result.exception.__dict__)
    return shown


@pytest.fixture
def feed_url(feed_server: FeedServer) -> str:
    return feed_server.add(
        "/f.xml", rss([Item("A post", "https://example.org/a", utc("2026-11-25T10:00"))])
    )


def _assert_clean(text: str, folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    for secret in (PASSWORD, TOKEN):
        assert secret not in text
        assert secret.encode() not in _everything_written(folder)
        assert secret not in caplog.text


@pytest.mark.parametrize("right_password", [True, False], ids=["login-ok", "login-refused"])
def test_smtp_password_never_leaks(
    feed_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    right_password: bool,
) -> None:
    """A good and a refused SMTP login, with --debug: the password is nowhere to be seen."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CURATOR_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("CURATOR_POSTMARK_TOKEN", TOKEN)
    expected = PASSWORD if right_password else "something-else"
    with mail_server(login=("digest", expected)) as box:
        config = write_config(
            tmp_path,
            "newsletter:\n  to: [a@example.org, b@example.org]\n"
            f"delivery:\n  method: smtp\n  smtp:\n    host: 127.0.0.1\n    port: {box.port}\n"
            f"    security: none\n    username: digest\nfeeds:\n  - url: {feed_url}\n",
        )
        shown = _invoke(config, "send", *NOW)
        shown += _invoke(config, "history")
        shown += _invoke(config, "preview", *NOW)
    assert ("sent 2026-W48" in shown) == right_password
    _assert_clean(shown, tmp_path, caplog)


@pytest.mark.parametrize("status", [200, 401, 500])
def test_postmark_token_never_leaks(
    feed_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    """Postmark accepting, refusing the token or failing: the token is nowhere to be seen."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CURATOR_POSTMARK_TOKEN", TOKEN)
    monkeypatch.setenv("CURATOR_SMTP_PASSWORD", PASSWORD)
    config = write_config(
        tmp_path,
        "newsletter:\n  to: [a@example.org]\n"
        f"delivery:\n  method: postmark\nfeeds:\n  - url: {feed_url}\n",
    )
    answer = (
        [{"ErrorCode": 0, "Message": "OK", "MessageID": "m-1", "To": "a@example.org"}]
        if status == 200
        else {"ErrorCode": 10, "Message": "Bad or missing Server API token."}
    )
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()
        route = mock.post("https://api.postmarkapp.com/email/batch").mock(
            return_value=httpx.Response(status, json=answer)
        )
        shown = _invoke(config, "send", *NOW)
        shown += _invoke(config, "history")
    assert route.called
    assert route.calls[0].request.headers["X-Postmark-Server-Token"] == TOKEN
    _assert_clean(shown, tmp_path, caplog)
