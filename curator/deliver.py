"""Build one email per recipient and hand it to a :class:`Sender`.

Senders (one protocol, one class each):

- :class:`OutboxSender` writes ``.eml`` files; the default, so curator works with no mail account.
- :class:`SmtpSender` talks to a mail server (starttls, ssl or none), one connection for all.

A sender yields one :class:`DeliveryResult` per message as soon as it is known, so the caller can
record it in the ledger before the next message goes out. ``sent`` means the server (or the
outbox) took it; ``failed`` means it will never take it (a 5xx refusal); ``pending`` means try
again on the next run (a 4xx refusal or a lost connection).

To add another backend: write a class with ``deliver(messages)`` and ``close()``, yield a result
per message, raise :class:`DeliveryError` only when nothing can be sent at all (bad login, no
server), and add it to :func:`make_sender`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from curator.errors import DeliveryError
from curator.models import DeliveryConfig, DeliveryResult, NewsletterConfig, SmtpConfig


@dataclass(frozen=True)
class Outgoing:
    """One message for one recipient."""

    recipient: str
    message: EmailMessage
    name: str  # a stable file-name stem: the same issue and recipient always gives the same one


class Sender(Protocol):
    def deliver(self, messages: Sequence[Outgoing]) -> Iterator[DeliveryResult]: ...

    def close(self) -> None: ...


def _one_line(text: str) -> str:
    """A header value that cannot split or add a header.

    Control characters become spaces. ``=?`` is broken up too: the email package decodes
    RFC 2047 encoded words in values it is given, so a feed title holding
    ``=?utf-8?q?x=0D=0ABcc=3A_y?=`` would otherwise come out as a second header.
    """
    flat = re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", text).strip()
    return flat.replace("=?", "= ?")


def _domain(address: str) -> str:
    _, addr = parseaddr(address)
    domain = addr.rpartition("@")[2].strip().lower()
    return re.sub(r"[^a-z0-9.-]", "", domain) or "localhost"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "curator"


def message_id(from_addr: str, period: str, round_: int, recipient: str) -> str:
    """A Message-ID on the sender's domain, the same every time for one issue and recipient,
    so a resend after a crash is recognisable as the same message."""
    digest = hashlib.sha256(recipient.lower().encode()).hexdigest()[:16]
    return f"<curator.{_slug(period)}.{round_}.{digest}@{_domain(from_addr)}>"


def build_message(
    *,
    newsletter: NewsletterConfig,
    recipient: str,
    subject: str,
    html: str,
    text: str,
    period: str,
    round_: int,
    date: datetime,
) -> Outgoing:
    """One ``multipart/alternative`` message (text, then HTML) for one recipient."""
    message = EmailMessage(policy=SMTP)
    message["From"] = _one_line(newsletter.from_addr)
    message["To"] = _one_line(recipient)
    message["Subject"] = _one_line(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id(newsletter.from_addr, period, round_, recipient)
    list_name = _one_line(newsletter.title).replace('"', "'")
    message["List-Id"] = (
        f'"{list_name}" <{_slug(newsletter.title)}.{_domain(newsletter.from_addr)}>'
    )
    if newsletter.unsubscribe:
        target = newsletter.unsubscribe
        message["List-Unsubscribe"] = f"<{_one_line(target)}>"
        if urlsplit(target).scheme == "https":
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["MIME-Version"] = "1.0"
    # Quoted-printable keeps every line under SMTP's 998-octet limit whatever the content.
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    digest = hashlib.sha256(recipient.lower().encode()).hexdigest()[:10]
    name = f"{_slug(period)}-r{round_}-{_slug(recipient.split('@', maxsplit=1)[0])}-{digest}"
    return Outgoing(recipient=recipient, message=message, name=name)


class OutboxSender:
    """Writes each message as ``NAME.eml`` under a folder. Writing the same message again
    replaces the file, so a retried delivery never leaves two copies."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, messages: Sequence[Outgoing]) -> Iterator[DeliveryResult]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create the outbox folder {self.folder}: {exc.strerror or exc}",
                hint="fix its permissions or set delivery.outbox_dir",
            ) from exc
        for item in messages:
            target = self.folder / f"{item.name}.eml"
            try:
                _atomic_write(target, item.message.as_bytes())
            except OSError as exc:
                raise DeliveryError(
                    f"cannot write to the outbox {self.folder}: {exc.strerror or exc}",
                    hint="fix its permissions or set delivery.outbox_dir",
                ) from exc
            yield DeliveryResult(item.recipient, "sent", f"written to {target}")

    def close(self) -> None:
        return None


def _atomic_write(target: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class SmtpSender:
    """Sends over one SMTP connection, reconnecting once if the server drops it."""

    def __init__(self, config: SmtpConfig, envelope_from: str) -> None:
        self.config = config
        self.envelope_from = parseaddr(envelope_from)[1]
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        where = f"{c.host}:{c.port}"
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if c.security == "ssl":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=context)
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
                if c.security == "starttls":
                    smtp.starttls(context=context)
            if c.username:
                if not c.password:
                    smtp.close()
                    raise DeliveryError(
                        "delivery.smtp.username is set but CURATOR_SMTP_PASSWORD is empty",
                        hint="export CURATOR_SMTP_PASSWORD before running curator",
                    )
                smtp.login(c.username, c.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"the mail server {where} refused the login for {c.username} ({exc.smtp_code})",
                hint="check delivery.smtp.username and CURATOR_SMTP_PASSWORD",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"the mail server {where} does not offer STARTTLS",
                hint="set delivery.smtp.security to ssl (port 465) or none",
            ) from exc
        except ssl.SSLError as exc:
            hint = (
                "this port may expect STARTTLS: set delivery.smtp.security to starttls (587)"
                if c.security == "ssl"
                else "this port may expect TLS from the start: set security to ssl (465)"
            )
            raise DeliveryError(f"TLS with {where} failed: {exc.reason}", hint=hint) from None
        except smtplib.SMTPServerDisconnected as exc:
            hint = (
                "the port may expect TLS from the start: set delivery.smtp.security to ssl"
                if c.security != "ssl"
                else "check delivery.smtp.host and port"
            )
            raise DeliveryError(
                f"the mail server {where} closed the connection", hint=hint
            ) from exc
        except socket.gaierror:
            raise DeliveryError(
                f"unknown mail server host {c.host!r}", hint="check delivery.smtp.host"
            ) from None
        except ConnectionRefusedError:
            raise DeliveryError(
                f"the mail server {where} refused the connection",
                hint="check delivery.smtp.host and port, and that the server is running",
            ) from None
        except TimeoutError:
            raise DeliveryError(
                f"the mail server {where} did not answer in {c.timeout:g} s",
                hint="check delivery.smtp.host and port",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"cannot talk to the mail server {where}: {exc}") from None
        return smtp

    def _session(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def deliver(self, messages: Sequence[Outgoing]) -> Iterator[DeliveryResult]:
        for item in messages:
            reconnected = False
            while True:
                smtp = self._session()
                try:
                    refused = smtp.send_message(
                        item.message, from_addr=self.envelope_from, to_addrs=[item.recipient]
                    )
                except smtplib.SMTPRecipientsRefused as exc:
                    code, reason = next(iter(exc.recipients.values()))
                    yield _refusal(item.recipient, code, reason)
                    break
                except smtplib.SMTPResponseException as exc:
                    yield _refusal(item.recipient, exc.smtp_code, exc.smtp_error)
                    if isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code >= 500:
                        raise DeliveryError(
                            f"the mail server refused the sender {self.envelope_from}",
                            hint="check newsletter.from: the server may not let you send as it",
                        ) from None
                    break
                except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
                    self._drop()
                    if reconnected:
                        yield DeliveryResult(item.recipient, "pending", f"connection lost: {exc}")
                        break
                    reconnected = True
                    continue
                if refused:
                    code, reason = refused[item.recipient]
                    yield _refusal(item.recipient, code, reason)
                else:
                    yield DeliveryResult(item.recipient, "sent", "250 accepted")
                break

    def _drop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError):
                self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._drop()


def _refusal(recipient: str, code: int, reason: bytes | str) -> DeliveryResult:
    text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    detail = f"{code} {_one_line(text)}"
    # 4xx is "try again later": keep it pending for the next run. 5xx is final.
    return DeliveryResult(recipient, "pending" if 400 <= code < 500 else "failed", detail)


def make_sender(config: DeliveryConfig, from_addr: str) -> Sender:
    """The sender that delivery.method names."""
    if config.method == "smtp":
        return SmtpSender(config.smtp, from_addr)
    if config.method == "postmark":
        from curator.postmark import PostmarkSender

        return PostmarkSender(config.postmark)
    return OutboxSender(config.outbox_dir)
