"""Shared helpers for the reflection-loop tests: a state with issues and readers, and reply
emails addressed with a token."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from curator.models import Config, FeedConfig, ReplyConfig
from curator.store import Store
from curator.tokens import make_token, tagged_address

ADDRESS = "reflect@example.org"


def replies_config(tmp_path: Path, **replies: object) -> Config:
    """A config whose replies go to ADDRESS, with the given sources."""
    return Config(
        path=tmp_path / "feeds.yaml",
        feeds=(FeedConfig("A", "https://example.org/feed"),),
        state_path=tmp_path / "state.db",
        replies=ReplyConfig(address=ADDRESS, **replies),  # type: ignore[arg-type] # test kwargs
    )


def freeze(store: Store, period: str, built_at: datetime, question: str, *to: str) -> int:
    """An issue of ``period`` built at ``built_at`` for ``to``; returns its id."""
    issue = store.freeze_issue(
        period=period,
        built_at=built_at,
        subject=f"Lead Weekly: {period}",
        html="<p>x</p>",
        text="x",
        question=question,
        question_reason="test",
        post_ids=[],
        recipients=list(to),
    )
    return issue.id


def reply_to(store: Store, issue_id: int, reader: str, now: datetime) -> str:
    """The Reply-To address of ``reader``'s copy of ``issue_id``."""
    reader_id = store.reader_ids([reader], now)[reader]
    key = store.signing_key(now)
    return tagged_address(ADDRESS, make_token(key, "reply", issue_id, reader_id))


def unsubscribe_to(store: Store, reader: str, now: datetime) -> str:
    reader_id = store.reader_ids([reader], now)[reader]
    key = store.signing_key(now)
    return tagged_address(ADDRESS, make_token(key, "unsubscribe", 0, reader_id))


def reply_email(
    to: str,
    body: str,
    *,
    sender: str = "ann@example.com",
    message_id: str = "<r1@mail.example.com>",
    html: str | None = None,
    attachment: bytes | None = None,
) -> bytes:
    """A reply as a mail client sends it (plain, HTML-only, or with an attachment)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Re: Lead Weekly"
    message["Message-ID"] = message_id
    message["Date"] = "Tue, 04 Mar 2026 07:12:00 +0000"
    if html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="notes.pdf"
        )
    return bytes(message)
