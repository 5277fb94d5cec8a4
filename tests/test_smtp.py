"""`curator send` over SMTP against a real aiosmtpd server on 127.0.0.1, through the CLI:
exactly one copy per recipient across refusals, dropped connections and configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import free_port, run_cli, write_config
from mail_kit import Mailbox, Tls, mail_server, make_tls

NOW = "2026-11-26T08:00:00Z"
PEOPLE = ["ann@example.org", "bob@example.org", "cat@example.org", "dan@example.org"]

CONFIG = """\
newsletter:
  title: Lead Weekly
  from: "Lead Weekly <digest@example.org>"
  to: [{to}]
delivery:
  method: smtp
  smtp:
    host: {host}
    port: {port}
    security: {security}
    timeout: {timeout}
{extra}feeds:
  - name: Ron
    url: {feed}
"""


run = run_cli


def history_counts(config: Path) -> tuple[int, int, int]:
    """(delivered, failed, pending) of the one issue `curator history` shows."""
    code, out, err = run(config, "history")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "2026-W48" in line]
    assert len(rows) == 1, out
    cells = rows[0].split("\t")  # off a terminal: tab-separated
    # period, round, built, posts, delivered, failed, pending, question
    return int(cells[4]), int(cells[5]), int(cells[6])


def smtp_config(
    folder: Path,
    feed: str,
    port: int,
    *,
    to: list[str] = PEOPLE,
    security: str = "none",
    host: str = "127.0.0.1",
    extra: str = "",
    timeout: float = 3,
) -> Path:
    return write_config(
        folder,
        CONFIG.format(
            to=", ".join(to),
            host=host,
            port=port,
            security=security,
            extra=extra,
            feed=feed,
            timeout=timeout,
        ),
    )


def test_every_recipient_gets_one_copy_over_one_connection(
    mailbox: Mailbox, feed: str, tmp_path: Path
) -> None:
    """All recipients are delivered once, over one SMTP connection, and history says so."""
    config = smtp_config(tmp_path, feed, mailbox.port)
    code, out, err = run(config, "send", "--now", NOW)
    assert code == 0, err
    assert mailbox.copies() == dict.fromkeys(PEOPLE, 1)
    assert len(mailbox.sessions) == 1
    assert history_counts(config) == (4, 0, 0)
    code, out, _ = run(config, "send", "--now", NOW)
    assert code == 0
    assert "already sent" in out
    assert mailbox.copies() == dict.fromkeys(PEOPLE, 1)


def test_451_is_retried_next_run_and_550_is_not(
    mailbox: Mailbox, feed: str, tmp_path: Path
) -> None:
    """A 451 refusal stays pending and is retried by the next run; a 550 is failed for good."""
    config = smtp_config(tmp_path, feed, mailbox.port)
    # The 550 quotes the address back, as many servers do: the output must not repeat it.
    mailbox.refuse = {
        "bob@example.org": "451 4.7.1 try later",
        "cat@example.org": "550 <cat@example.org>: no such",
    }
    code, _, err = run(config, "send", "--now", NOW)
    assert code == 1
    # Readers are named by number, never by address: a send's output may be a public log.
    assert "will retry reader #2 on the next run: 451" in err
    assert "failed for good: reader #3: 550" in err
    assert "@example.org" not in err
    assert history_counts(config) == (2, 1, 1)

    mailbox.refuse = {}
    code, out, err = run(config, "send", "--now", "2026-11-26T09:00:00Z")
    assert code == 0, err
    assert "1 recipient left" in out
    assert mailbox.copies() == {"ann@example.org": 1, "bob@example.org": 1, "dan@example.org": 1}
    assert history_counts(config) == (3, 1, 0)


def test_a_connection_dropped_for_good_is_completed_by_the_next_run(
    feed: str, tmp_path: Path
) -> None:
    """A server that hangs up after two messages leaves the rest pending; the next run sends
    them, and nobody gets two copies."""
    with mail_server(Mailbox(drop_after=2)) as box:
        config = smtp_config(tmp_path, feed, box.port)
        code, _, err = run(config, "send", "--now", NOW)
        assert code == 1
        assert "dropped the connection again" in err
        assert "2 of 4 delivered so far, 2 pending" in err
        assert box.copies() == {"ann@example.org": 1, "bob@example.org": 1}
        assert history_counts(config) == (2, 0, 2)

        box.drop_after = None
        code, _, err = run(config, "send", "--now", "2026-11-26T09:00:00Z")
        assert code == 0, err
        assert box.copies() == dict.fromkeys(PEOPLE, 1)
        assert history_counts(config) == (4, 0, 0)


def test_one_dropped_connection_is_reconnected_within_the_run(feed: str, tmp_path: Path) -> None:
    """A single drop costs one reconnect: the run still delivers everyone, and says that the
    message in flight when the line died may have arrived twice."""
    with mail_server(Mailbox(drop_once_at=3)) as box:
        config = smtp_config(tmp_path, feed, box.port)
        code, out, err = run(config, "send", "--now", NOW)
        assert code == 0, err
        assert "note: reader #3:" in out and "may be a second copy" in out
        assert box.copies() == dict.fromkeys(PEOPLE, 1)
        assert len(box.sessions) == 2
        assert history_counts(config) == (4, 0, 0)


def test_a_sender_refused_with_5xx_stops_the_run_and_marks_nobody_failed(
    mailbox: Mailbox, feed: str, tmp_path: Path
) -> None:
    """A 5xx to MAIL FROM is a configuration problem: everyone stays pending, exit 1."""
    config = smtp_config(tmp_path, feed, mailbox.port)
    mailbox.refuse_sender = "553 5.7.1 sender not allowed"
    code, _, err = run(config, "send", "--now", NOW)
    assert code == 1
    assert "refused the sender digest@example.org" in err
    assert "newsletter.from" in err
    assert mailbox.messages == []
    assert history_counts(config) == (0, 0, 4)


# ---------------------------------------------------------------- errors that say what to change


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


def assert_nothing_sent(config: Path, err: str, *, says: str, hint: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("curator: error: "), err
    assert says in lines[0], err
    assert hint in err, err
    assert len(lines) <= 2, err
    assert "Traceback" not in err
    assert history_counts(config) == (0, 0, 2)


@pytest.mark.parametrize(
    ("client", "server", "says", "hint"),
    [
        ("starttls", "implicit", "hung up", "set delivery.smtp.security to ssl"),
        ("none", "implicit", "hung up", "set delivery.smtp.security to ssl"),
        ("ssl", "starttls", "TLS with 127.0.0.1", "set delivery.smtp.security to starttls"),
        ("ssl", "plain", "TLS with 127.0.0.1", "set delivery.smtp.security to starttls"),
        ("starttls", "plain", "does not offer STARTTLS", "set delivery.smtp.security to ssl"),
    ],
)
def test_tls_mismatch_says_which_security_to_set(  # noqa: PLR0917 - pytest fixtures
    client: str, server: str, says: str, hint: str, tls: Tls, feed: str, tmp_path: Path
) -> None:
    """starttls against an implicit-TLS port and the reverse: one line naming the setting to
    change, exit 1, nothing marked sent."""
    contexts = {"implicit": {"implicit_tls": tls.server}, "starttls": {"starttls": tls.server}}
    with mail_server(**contexts.get(server, {})) as box:  # type: ignore[arg-type]  # keys are mail_server's TLS keywords
        # A short timeout: a plain client waits this long for an implicit-TLS greeting.
        config = smtp_config(tmp_path, feed, box.port, to=PEOPLE[:2], security=client, timeout=1)
        code, _, err = run(config, "send", "--now", NOW)
        assert code == 1
        assert box.messages == []
    assert_nothing_sent(config, err, says=says, hint=hint)


@pytest.mark.parametrize(("security", "server"), [("ssl", "implicit"), ("starttls", "starttls")])
def test_tls_delivers_when_the_certificate_is_trusted(  # noqa: PLR0917 - pytest fixtures
    security: str,
    server: str,
    tls: Tls,
    feed: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With security matching the port and a trusted certificate, TLS delivery works."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    contexts = {"implicit": {"implicit_tls": tls.server}, "starttls": {"starttls": tls.server}}
    with mail_server(**contexts[server]) as box:  # type: ignore[arg-type]  # keys are mail_server's TLS keywords
        config = smtp_config(tmp_path, feed, box.port, to=PEOPLE[:2], security=security)
        code, _, err = run(config, "send", "--now", NOW)
        assert code == 0, err
        assert box.copies() == dict.fromkeys(PEOPLE[:2], 1)


def test_an_untrusted_certificate_names_the_host_setting(
    tls: Tls, feed: str, tmp_path: Path
) -> None:
    """A certificate nobody vouches for is refused with a hint, and nothing is sent."""
    with mail_server(implicit_tls=tls.server) as box:
        config = smtp_config(tmp_path, feed, box.port, to=PEOPLE[:2], security="ssl")
        code, _, err = run(config, "send", "--now", NOW)
        assert code == 1
    assert_nothing_sent(config, err, says="cannot be trusted", hint="SSL_CERT_FILE")


def test_a_refused_login_names_the_credentials(
    feed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong password: one line naming the username and the variable, exit 1."""
    monkeypatch.setenv("CURATOR_SMTP_PASSWORD", "wrong-secret")
    with mail_server(login=("digest", "right-secret")) as box:
        config = smtp_config(
            tmp_path, feed, box.port, to=PEOPLE[:2], extra="    username: digest\n"
        )
        code, out, err = run(config, "send", "--now", NOW)
        assert code == 1
        assert box.messages == []
    assert "wrong-secret" not in out + err
    assert_nothing_sent(
        config, err, says="refused the login for digest", hint="CURATOR_SMTP_PASSWORD"
    )


def test_the_right_login_delivers(
    feed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the right password from CURATOR_SMTP_PASSWORD, the login works and mail goes."""
    monkeypatch.setenv("CURATOR_SMTP_PASSWORD", "right-secret")
    with mail_server(login=("digest", "right-secret")) as box:
        config = smtp_config(
            tmp_path, feed, box.port, to=PEOPLE[:2], extra="    username: digest\n"
        )
        code, _, err = run(config, "send", "--now", NOW)
        assert code == 0, err
        assert box.copies() == dict.fromkeys(PEOPLE[:2], 1)


def test_a_username_without_password_says_which_variable_to_set(
    mailbox: Mailbox, feed: str, tmp_path: Path
) -> None:
    """A username with no CURATOR_SMTP_PASSWORD is a config error (exit 2) before any fetch,
    so no issue is frozen that could not be sent."""
    config = smtp_config(
        tmp_path, feed, mailbox.port, to=PEOPLE[:2], extra="    username: digest\n"
    )
    code, _, err = run(config, "send", "--now", NOW)
    assert code == 2
    assert mailbox.sessions == []
    assert "delivery.smtp.username: is set but CURATOR_SMTP_PASSWORD is empty" in err
    assert "export CURATOR_SMTP_PASSWORD" in err
    assert "no issues yet" in run(config, "history")[2]


@pytest.mark.parametrize(
    ("host", "port", "says", "hint"),
    [
        ("smtp.nowhere.invalid", 25, "unknown mail server host", "check delivery.smtp.host"),
        ("127.0.0.1", None, "refused the connection", "delivery.smtp.port"),
    ],
)
def test_an_unreachable_server_names_host_or_port(  # noqa: PLR0917 - pytest fixtures
    host: str, port: int | None, says: str, hint: str, feed: str, tmp_path: Path
) -> None:
    """An unknown host or a closed port: one line naming what to check, exit 1."""
    config = smtp_config(tmp_path, feed, port or free_port(), to=PEOPLE[:2], host=host)
    code, _, err = run(config, "send", "--now", NOW)
    assert code == 1
    assert_nothing_sent(config, err, says=says, hint=hint)


def test_after_fixing_the_config_the_next_run_sends_the_frozen_issue(
    mailbox: Mailbox, feed: str, tmp_path: Path
) -> None:
    """A run that could not connect leaves the issue frozen and pending; once the port is
    right, the next run delivers that same issue to everyone."""
    config = smtp_config(tmp_path, feed, free_port(), to=PEOPLE[:2])
    assert run(config, "send", "--now", NOW)[0] == 1
    config = smtp_config(tmp_path, feed, mailbox.port, to=PEOPLE[:2])
    code, out, err = run(config, "send", "--now", "2026-11-26T10:00:00Z")
    assert code == 0, err
    assert "completing 2026-W48" in out
    assert mailbox.copies() == dict.fromkeys(PEOPLE[:2], 1)
    assert history_counts(config) == (2, 0, 0)
