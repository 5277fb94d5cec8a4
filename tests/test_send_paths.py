"""A full send over SMTP (a real aiosmtpd server) and one with feeds served by respx."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import httpx
import respx

from conftest import FeedServer, Item, SmtpInbox, rss, utc, write_config
from curator.app import SendOptions, run_send
from curator.config import load_config

SMTP_CONFIG = """\
newsletter:
  title: Lead Weekly
  from: "Lead Weekly <digest@example.org>"
  to: [ann@example.org, bob@example.org, cy@example.org]
delivery:
  method: smtp
  smtp:
    host: 127.0.0.1
    port: {port}
    security: none
feeds:
  - name: Ron
    url: {feed}
"""


def test_smtp_send_delivers_once_to_each_recipient(
    feed_server: FeedServer, smtp_server: SmtpInbox, tmp_path: Path
) -> None:
    """Every recipient gets exactly one message over SMTP, addressed to them alone."""
    feed = feed_server.add(
        "/ron.xml", rss([Item("Lead well", "https://ron.example/a", utc("2026-11-25T10:00"))])
    )
    path = write_config(tmp_path, SMTP_CONFIG.format(port=smtp_server.port, feed=feed))
    config = load_config(path, env={})
    now = datetime(2026, 11, 26, 8, tzinfo=UTC)
    report = run_send(config, SendOptions(), now)
    assert report.exit_code == 0, report.lines
    assert len(smtp_server.messages) == 3
    for recipient in ("ann@example.org", "bob@example.org", "cy@example.org"):
        (data,) = smtp_server.to(recipient)
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert message["To"] == recipient
        assert message.get_content_type() == "multipart/alternative"
        assert "Lead well" in data.decode("utf-8", "replace")
    again = run_send(config, SendOptions(), now)
    assert again.exit_code == 0
    assert len(smtp_server.messages) == 3


RESPX_CONFIG = """\
newsletter:
  to: [ann@example.org]
feeds:
  - name: Ron
    url: https://ron.example/feed/
  - name: Mike
    url: https://mike.example/feed/
"""


def test_send_with_feeds_served_by_respx(tmp_path: Path) -> None:
    """The whole pipeline over mocked HTTP: both feeds' posts land in the outbox message."""
    path = write_config(tmp_path, RESPX_CONFIG)
    config = load_config(path, env={})
    ron = rss([Item("Ron's post", "https://ron.example/p1", utc("2026-11-25T10:00"))])
    mike = rss([Item("Mike's post", "https://mike.example/p1", utc("2026-11-24T10:00"))])
    with respx.mock(assert_all_called=True) as mock:
        mock.get("https://ron.example/feed/").mock(return_value=httpx.Response(200, content=ron))
        mock.get("https://mike.example/feed/").mock(return_value=httpx.Response(200, content=mike))
        report = run_send(config, SendOptions(), datetime(2026, 11, 26, 8, tzinfo=UTC))
    assert report.exit_code == 0, report.lines
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    text = eml.read_bytes().decode()
    assert "Ron's post" in text and "Mike's post" in text


def test_an_error_quoting_an_address_is_told_without_it() -> None:
    """An error a server worded with a reader's address is said with "a recipient" instead,
    whatever the case or display name."""
    from curator.sending import without_addresses

    text = "421 <BOB@x.org> over quota; ann@x.org too"
    said = without_addresses(text, ["Bob <bob@x.org>", "ann@x.org", "cy@x.org"])
    assert said == "421 <a recipient> over quota; a recipient too"
