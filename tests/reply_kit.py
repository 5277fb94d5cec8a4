"""Shared helpers for the reflection-loop tests: a state with issues and readers, reply
emails addressed with a token, and a real IMAP server (pymap) to append them to."""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme
from imapclient import IMAPClient

from conftest import free_port, wait_for
from curator.models import Config, FeedConfig, ReplyConfig
from curator.store import Store
from curator.tokens import make_token, tagged_address

ADDRESS = "reflect@example.org"
USER, PASSWORD = "reflect", "demo-secret-pw"  # the IMAP server's demo user
_folders = itertools.count()


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
    date: str = "Tue, 04 Mar 2026 07:12:00 +0000",
    html: str | None = None,
    attachment: bytes | None = None,
) -> bytes:
    """A reply as a mail client sends it (plain, HTML-only, or with an attachment)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Re: Lead Weekly"
    message["Message-ID"] = message_id
    message["Date"] = date
    if html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="notes.pdf"
        )
    return bytes(message)


# ---------------------------------------------------------------- a real IMAP server


@dataclass
class ImapServer:
    port: int
    context: ssl.SSLContext
    ca_file: Path  # the CA that signed the server's certificate (for SSL_CERT_FILE)

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=5)
        client.starttls(self.context)
        client.login(USER, PASSWORD)
        return client

    def append(self, folder: str, *messages: bytes) -> None:
        client = self.client()
        try:
            for raw in messages:
                client.append(folder, raw)
        finally:
            client.logout()

    def new_folder(self) -> str:
        name = f"Replies{next(_folders)}"
        client = self.client()
        try:
            client.create_folder(name)
        finally:
            client.logout()
        return name

    def rebuild(self, folder: str) -> None:
        """Delete and re-create the folder: the server gives it a new UIDVALIDITY."""
        client = self.client()
        try:
            client.delete_folder(folder)
            client.create_folder(folder)
        finally:
            client.logout()

    def uids(self, folder: str) -> list[int]:
        client = self.client()
        try:
            client.select_folder(folder, readonly=True)
            return list(client.search(["ALL"]))
        finally:
            client.logout()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def running_imap(folder: Path) -> Iterator[ImapServer]:
    """pymap on 127.0.0.1 offering STARTTLS with a throwaway CA, one demo user, for the block."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from pymap.main import main; main()",
         "--host", "127.0.0.1", "--port", str(port),
         "--cert", str(folder / "cert.pem"), "--key", str(folder / "key.pem"),
         "dict", "--demo-user", USER, "--demo-password", PASSWORD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if not wait_for(lambda: _accepts(port), timeout=20):
            pytest.fail("pymap did not start")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        yield ImapServer(port, context, folder / "ca.pem")
    finally:
        process.terminate()
        process.wait(timeout=10)
