"""Real SMTP servers (aiosmtpd on 127.0.0.1) for the delivery tests, beyond conftest's plain one:
a server that holds a DATA until the test lets go, counts connections, asks for a login, or
speaks TLS (implicit or STARTTLS) with a certificate made for the test by trustme."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import curator
from conftest import SmtpInbox, _Handler, free_port


@dataclass
class Mailbox(SmtpInbox):
    """An :class:`SmtpInbox` that also counts connections and can hold one DATA."""

    hold_at: int | None = None  # hold the Nth DATA (1-based) until ``release`` is set
    drop_once_at: int | None = None  # hang up on the Nth DATA (1-based), once
    refuse_sender: str | None = None  # the answer to every MAIL FROM, e.g. "553 ..."
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    sessions: list[object] = field(default_factory=list)
    data_seen: int = 0

    def copies(self) -> dict[str, int]:
        """How many messages each recipient received."""
        counts: dict[str, int] = {}
        for _, rcpts, _ in self.messages:
            for rcpt in rcpts:
                counts[rcpt] = counts.get(rcpt, 0) + 1
        return counts


class _HoldingHandler(_Handler):
    inbox: Mailbox

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any
    ) -> str:
        if self.inbox.refuse_sender:
            return self.inbox.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if not any(s is session for s in self.inbox.sessions):
            self.inbox.sessions.append(session)
        answer: str = await super().handle_RCPT(server, session, envelope, address, rcpt_options)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.inbox.data_seen += 1
        if self.inbox.data_seen == self.inbox.drop_once_at:
            server.transport.close()
            return "421 closing"
        if self.inbox.hold_at is not None and self.inbox.data_seen == self.inbox.hold_at:
            self.inbox.held.set()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.inbox.release.wait, 30)
            # The client that sent this was killed while waiting: nothing is accepted.
            return "451 held and dropped by the test"
        answer: str = await super().handle_DATA(server, session, envelope)
        return answer


@contextlib.contextmanager
def mail_server(
    mailbox: Mailbox | None = None,
    *,
    implicit_tls: ssl.SSLContext | None = None,
    starttls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[Mailbox]:
    """Run an aiosmtpd server on 127.0.0.1 for the block; yield its mailbox."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    box = mailbox or Mailbox()
    box.port = free_port()
    kwargs: dict[str, Any] = {}
    if implicit_tls is not None:
        kwargs["ssl_context"] = implicit_tls
    if starttls is not None:
        kwargs["tls_context"] = starttls
    if login is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == login
            )
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticator
        kwargs["auth_require_tls"] = False
    controller = Controller(_HoldingHandler(box), hostname="127.0.0.1", port=box.port, **kwargs)
    controller.start()
    try:
        yield box
    finally:
        box.release.set()
        controller.stop()


@dataclass(frozen=True)
class Tls:
    """A server context with a certificate for 127.0.0.1 and the CA file that trusts it."""

    server: ssl.SSLContext
    ca_file: Path


def make_tls(folder: Path) -> Tls:
    import trustme

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = folder / "test-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return Tls(context, ca_file)


# ---------------------------------------------------------------- curator as a process


def curator_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a ``python -m curator`` child: this one, plus the folder that holds
    the ``curator`` package this test run imports, so the child runs the same code whether it
    comes from a source tree or an installed wheel."""
    env = dict(os.environ)
    root = str(Path(curator.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def start_curator(config: Path, *args: str, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start ``python -m curator --config CONFIG ARGS...`` in the config's folder."""
    return subprocess.Popen(  # the interpreter running the tests, with fixed arguments
        [sys.executable, "-m", "curator", "--config", str(config), *args],
        cwd=config.parent,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
