"""Rules of `send` that span runs: what an unsent issue leaves behind, what is still owed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import FeedServer, Item, SmtpInbox, rss, utc, write_config
from safety import message_parts, squash
from test_send import run

SMTP = """\
newsletter:
  to: [ann@example.org, bob@example.org]
  empty_week: {empty_week}
delivery:
  method: smtp
  smtp: {{host: 127.0.0.1, port: {port}, security: none}}
feeds:
  - name: Ron
    url: {url}
questions:
  - First question?
  - Second question?
"""


@pytest.fixture
def ron(feed_server: FeedServer) -> FeedServer:
    feed_server.add(
        "/ron.xml", rss([Item("Week one post", "https://ron.example/1", utc("2026-11-25T10:00"))])
    )
    return feed_server


def _config(tmp_path: Path, server: FeedServer, port: int, empty_week: str = "skip") -> Path:
    text = SMTP.format(empty_week=empty_week, port=port, url=server.url("/ron.xml"))
    return write_config(tmp_path, text)


def _statuses(config: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(config.parent / ".curator" / "state.db")
    try:
        return list(
            db.execute(
                "SELECT i.period, d.recipient, d.status FROM deliveries d "
                "JOIN issues i ON i.id = d.issue_id ORDER BY i.id, d.recipient"
            )
        )
    finally:
        db.close()


def test_a_question_is_used_only_by_an_issue_that_reached_someone(
    ron: FeedServer, smtp_server: SmtpInbox, tmp_path: Path
) -> None:
    """Every recipient refused for good: the question stays first in line for next week."""
    smtp_server.refuse = dict.fromkeys(("ann@example.org", "bob@example.org"), "550 no such user")
    config = _config(tmp_path, ron, smtp_server.port)
    code, _, _ = run(config, "send", "--now", "2026-11-26T08:00:00Z")
    assert code == 1
    smtp_server.refuse = {}
    ron.add(
        "/ron.xml", rss([Item("Week two post", "https://ron.example/2", utc("2026-12-01T10:00"))])
    )
    code, _, err = run(config, "send", "--now", "2026-12-02T08:00:00Z")
    assert code == 0, err
    (data,) = smtp_server.to("ann@example.org")
    assert b"First question?" in data


def test_recipients_left_pending_get_last_period_s_issue_in_the_next_run(
    ron: FeedServer, smtp_server: SmtpInbox, tmp_path: Path
) -> None:
    """A 451 in week one is retried by the week-two run, before week two's own issue."""
    smtp_server.refuse = {"bob@example.org": "451 try later"}
    config = _config(tmp_path, ron, smtp_server.port)
    assert run(config, "send", "--now", "2026-11-26T08:00:00Z")[0] == 1
    smtp_server.refuse = {}
    ron.add(
        "/ron.xml", rss([Item("Week two post", "https://ron.example/2", utc("2026-12-01T10:00"))])
    )
    code, out, err = run(config, "send", "--now", "2026-12-02T08:00:00Z")
    assert code == 0, err
    assert "completing 2026-W48: 1 recipient left" in out
    bob = smtp_server.to("bob@example.org")
    assert len(bob) == 2
    assert b"Week one post" in bob[0] and b"Week two post" in bob[1]
    assert len(smtp_server.to("ann@example.org")) == 2
    assert all(status == "sent" for _, _, status in _statuses(config))


def test_force_replaces_what_the_earlier_round_still_owed(
    ron: FeedServer, smtp_server: SmtpInbox, tmp_path: Path
) -> None:
    """After --force, the first round's pending rows are closed as replaced, not left open."""
    smtp_server.refuse = {"bob@example.org": "451 try later"}
    config = _config(tmp_path, ron, smtp_server.port)
    assert run(config, "send", "--now", "2026-11-26T08:00:00Z")[0] == 1
    smtp_server.refuse = {}
    code, _, err = run(config, "send", "--force", "--now", "2026-11-26T09:00:00Z")
    assert code == 0, err
    assert _statuses(config) == [
        ("2026-W48", "ann@example.org", "sent"),
        ("2026-W48", "bob@example.org", "failed"),
        ("2026-W48", "ann@example.org", "sent"),
        ("2026-W48", "bob@example.org", "sent"),
    ]


@pytest.mark.parametrize("empty_week", ["question", "archive"])
def test_every_feed_failing_sends_no_empty_week_issue(
    feed_server: FeedServer, smtp_server: SmtpInbox, tmp_path: Path, empty_week: str
) -> None:
    """With every source down, an empty-week issue is not sent: exit 1, the period stays open."""
    feed_server.add("/ron.xml", rss([]))
    feed_server.routes["/ron.xml"].status = 503
    config = _config(tmp_path, feed_server, smtp_server.port, empty_week)
    code, _, err = run(config, "send", "--now", "2026-11-26T08:00:00Z")
    assert code == 1
    assert "every feed failed" in err
    assert smtp_server.messages == []
    assert _statuses(config) == []


def test_a_feed_without_a_name_is_shown_by_its_own_title(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Two bare URLs on one host are told apart by their feeds' titles, not the host twice."""
    one = feed_server.add(
        "/a.xml",
        rss([Item("Post A", "https://a.example/1", utc("2026-11-25T10:00"))], title="Alpha Blog"),
    )
    two = feed_server.add(
        "/b.xml",
        rss([Item("Post B", "https://b.example/1", utc("2026-11-25T11:00"))], title="Beta Notes"),
    )
    config = write_config(
        tmp_path, f"newsletter:\n  to: [ann@example.org]\nfeeds:\n  - {one}\n  - url: {two}\n"
    )
    code, _, err = run(config, "send", "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    text = squash(message_parts(eml.read_bytes())[0])
    assert "-- ALPHA BLOG --" in text or "Alpha Blog ·" in text
    assert "Read this week: Alpha Blog, Beta Notes." in text
