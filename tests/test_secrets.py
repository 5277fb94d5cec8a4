"""Secrets (the SMTP password, the Postmark token) never appear in output, tracebacks, the
state file, the outbox, the archive or a preview, even with --debug and when things fail."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from typer.testing import CliRunner

from conftest import FeedServer, Item, rss, utc, write_config
from curator.cli import app
from curator.redact import redact, secret_forms
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


def _echoing_auth_server() -> Any:
    """An aiosmtpd server on 127.0.0.1 that refuses every login with a 535 quoting the base64
    AUTH string it was sent (PLAIN, then LOGIN's password), as some servers do."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from conftest import free_port
    from mail_kit import Mailbox, _HoldingHandler

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        plain = base64.b64encode(b"\0" + data.login + b"\0" + data.password).decode()
        login = base64.b64encode(data.password).decode()
        echo = plain if mechanism == "PLAIN" else login
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 rejected {echo}")

    box = Mailbox()
    box.port = free_port()
    controller = Controller(
        _HoldingHandler(box),
        hostname="127.0.0.1",
        port=box.port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    return controller, box


@pytest.mark.parametrize("username", ["d", "di", "digest"])
def test_a_535_that_echoes_the_auth_string_shows_no_password(
    feed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    """With --debug, a refused login whose reply quotes the base64 AUTH string: neither the
    password nor any base64 form of it is printed, recorded or chained."""
    monkeypatch.setenv("CURATOR_SMTP_PASSWORD", PASSWORD)
    controller, box = _echoing_auth_server()
    controller.start()
    try:
        config = write_config(
            tmp_path,
            "newsletter:\n  to: [a@example.org]\n"
            f"delivery:\n  method: smtp\n  smtp:\n    host: 127.0.0.1\n    port: {box.port}\n"
            f"    security: none\n    username: {username}\nfeeds:\n  - url: {feed_url}\n",
        )
        shown = _invoke(config, "send", *NOW)
    finally:
        controller.stop()
    assert "refused the login" in shown
    assert "Traceback" in shown  # --debug did print the chain
    plain = base64.b64encode(f"\0{username}\0{PASSWORD}".encode()).decode()
    leaks = [*secret_forms(PASSWORD), plain, base64.b64encode(PASSWORD.encode()).decode()]
    for leak in leaks:
        assert leak not in shown
        assert leak.encode() not in _everything_written(tmp_path)


@pytest.mark.parametrize("debug", [True, False])
def test_a_postmark_401_that_echoes_the_token_shows_no_token(
    feed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug: bool
) -> None:
    """Postmark's 401 `Message` quoting the token: not printed, with or without --debug."""
    monkeypatch.setenv("CURATOR_POSTMARK_TOKEN", TOKEN)
    config = write_config(
        tmp_path,
        "newsletter:\n  to: [a@example.org]\n"
        f"delivery:\n  method: postmark\nfeeds:\n  - url: {feed_url}\n",
    )
    answer = {"ErrorCode": 10, "Message": f"Bad or missing Server API token: {TOKEN}"}
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()
        mock.post("https://api.postmarkapp.com/email/batch").mock(
            return_value=httpx.Response(401, json=answer)
        )
        args = ["--config", str(config), *(["--debug"] if debug else []), "send", *NOW]
        result = CliRunner().invoke(app, args)
    shown = result.stdout + result.stderr
    assert "Postmark refused the server token (401)" in shown
    assert "[redacted]" in shown
    for leak in secret_forms(TOKEN):
        assert leak not in shown
        assert leak.encode() not in _everything_written(tmp_path)


@pytest.mark.parametrize(
    ("endpoint", "env", "ok"),
    [
        ("https://api.postmarkapp.com/email/batch", {}, True),
        ("https://eu.postmarkapp.com/email/batch", {}, True),
        ("https://collector.example/email/batch", {}, False),
        ("https://postmarkapp.com.evil.example/batch", {}, False),
        ("https://proxy.example/email/batch", {"CURATOR_POSTMARK_ANY_HOST": "1"}, True),
    ],
)
def test_the_postmark_token_goes_only_to_postmark_unless_told(
    tmp_path: Path, endpoint: str, env: dict[str, str], ok: bool
) -> None:
    """delivery.postmark.endpoint must be a postmarkapp.com host, or the operator says so."""
    from curator.config import load_config
    from curator.errors import ConfigError

    path = write_config(
        tmp_path,
        "newsletter:\n  to: [a@example.org]\n"
        f"delivery:\n  method: postmark\n  postmark:\n    endpoint: {endpoint}\n"
        "feeds:\n  - url: https://a.example/\n",
    )
    if ok:
        assert load_config(path, env=env).delivery.postmark.endpoint == endpoint
    else:
        with pytest.raises(ConfigError, match=r"is not a postmarkapp\.com address"):
            load_config(path, env=env)


@pytest.mark.parametrize("prefix", ["", "\0", "\0u\0", "\0us\0", "\0user\0"])
def test_every_base64_alignment_of_a_secret_is_redacted(prefix: str) -> None:
    """Wherever the secret sits inside an encoded string, the encoding gives nothing away."""
    encoded = base64.b64encode(f"{prefix}{PASSWORD}".encode()).decode()
    shown = redact(f"535 {encoded} rejected", [PASSWORD])
    left = shown.split()[1].replace("[redacted]", "")
    # At most the two characters at each end that also carry the neighbours' bits remain.
    assert len(encoded) - len(left) >= len(PASSWORD) * 4 // 3 - 2


def test_a_secret_too_short_to_be_one_is_not_masked_all_over_the_text() -> None:
    """A one-letter key must not turn every "e" of a message into a mask (garbling it and
    spelling the key out); a real secret is still removed in every form."""
    from curator.redact import MASK, redact

    text = "cannot decrypt the state file: wrong CURATOR_STATE_KEY"
    assert redact(text, ["e"]) == text
    assert MASK in redact("the token s3cr3t-t0ken was refused", ["s3cr3t-t0ken"])
