"""Build one email per recipient and hand it to a :class:`Sender`.

Senders (one protocol, one class each):

- :class:`OutboxSender` writes ``.eml`` files; the default, so curator works with no mail account.
- :class:`SmtpSender` talks to a mail server (starttls, ssl or none), one connection for all.
- :class:`curator.postmark.PostmarkSender` calls Postmark's batch API, 500 messages a call.

A sender yields one :class:`DeliveryResult` per message as soon as it is known, so the caller can
record it in the ledger before the next message goes out. ``sent`` means the server (or the
outbox) took it; ``failed`` means it will never take it (a 5xx refusal); ``pending`` means try
again on the next run (a 4xx refusal or a lost connection). Just before a message can be
accepted, the sender calls ``handover`` with its recipients, so the ledger knows which
recipients were in flight if the process dies before their result is recorded.

To add another backend: write a class with ``deliver(messages, handover)`` and ``close()``; call
``handover`` right before the service could accept a message; yield a result per message; raise
:class:`DeliveryError` only when nothing more can be sent in this run (bad login, no server,
the sender address refused); and add it to :func:`curator.sending.make_sender`. The protocol and
the message type live in :mod:`curator.sender`, which every backend imports.

Longer than the ~450 lines a module should keep to, on purpose: each way an SMTP exchange can
fail gets its own words and hint (:meth:`SmtpSender._connect_error`), which is most of its length.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import smtplib
import socket
import ssl
from collections.abc import Iterator, Sequence
from datetime import datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from curator.errors import DeliveryError
from curator.files import atomic_write
from curator.models import DeliveryResult, NewsletterConfig, SmtpConfig

# Re-exported (noqa: PLC0414) so that imports from before the seam moved keep working.
from curator.sender import Handover as Handover  # noqa: PLC0414
from curator.sender import Outgoing as Outgoing  # noqa: PLC0414
from curator.sender import Sender as Sender  # noqa: PLC0414
from curator.sender import no_handover as no_handover  # noqa: PLC0414


def _one_line(text: str) -> str:
    # Every character str.splitlines() breaks on is here (C0, DEL, C1 such as NEL, and the
    # Unicode separators): the email package refuses or splits a header on any of them.
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", text).strip()


def header_text(text: str) -> str:
    """Text that can go into a header as it reads: one line, with no RFC 2047 encoded word.

    Python's email package decodes ``=?charset?q?...?=`` in a value as the value is set; an
    encoded CR LF then comes out raw when the message is written (Python 3.11.7 does this) and
    adds a header. A zero-width space after ``=`` keeps such text literal, and keeps it readable.
    """
    return _one_line(text).replace("=?", "=\u200b?")


# Python's email folder drops the quotes of a display name it has to split across lines, and
# what was one quoted name parses back as other addresses. A name this short is never split.
DISPLAY_NAME_MAX = 64


def _address(text: str, key: str) -> Address:
    name, addr = parseaddr(_one_line(text))
    if len(name) > DISPLAY_NAME_MAX:
        name = name[:DISPLAY_NAME_MAX].rsplit(" ", 1)[0].rstrip(" ,;:")
    try:
        # An Address object is stored as given: its display name is never parsed for encoded
        # words, and the folder quotes or encodes it as needed.
        return Address(display_name=header_text(name), addr_spec=addr)
    except (ValueError, IndexError, MessageError) as exc:
        raise DeliveryError(
            f"cannot write {text!r} as an email address: {exc}", hint=f"check {key}"
        ) from exc


def _domain(address: str) -> str:
    _, addr = parseaddr(address)
    domain = addr.rpartition("@")[2].strip().lower()
    return re.sub(r"[^a-z0-9.-]", "", domain) or "localhost"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "curator"


def message_id(newsletter: NewsletterConfig, period: str, round_: int, recipient: str) -> str:
    """A Message-ID on the sender's domain, the same every time for one issue and recipient,
    so a resend after a crash is recognisable as the same message.

    The list's title is part of the hash, so two newsletters sent from one domain to one reader
    in the same period never share an id (a mail service would drop one as a duplicate).
    """
    seed = f"{newsletter.title}\0{recipient.lower()}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
    return f"<curator.{_slug(period)}.{round_}.{digest}@{_domain(newsletter.from_addr)}>"


# SMTP's line limit is 998 octets; at the usual 78 Python's folder turns a long structured value
# it cannot split (List-Unsubscribe's <URI> list) into RFC 2047 encoded words, which mail
# programs do not read as URIs. A value is folded only past 998, where nothing of ours goes.
_POLICY = SMTP.clone(max_line_length=998)


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
    headers: Sequence[tuple[str, str]] = (),
) -> Outgoing:
    """One ``multipart/alternative`` message (text, then HTML) for one recipient.

    Every header value passes through :func:`header_text` or is an :class:`Address`, so no
    title or name (from a feed or from feeds.yaml) can split a header or add one. ``headers``
    are this reader's own (``Reply-To``, ``List-Unsubscribe``), made by curator: a
    ``List-Unsubscribe`` there replaces the one ``newsletter.unsubscribe`` gives.
    """
    own = dict(headers)
    message = EmailMessage(policy=_POLICY)
    message["From"] = _address(newsletter.from_addr, "newsletter.from")
    message["To"] = _address(recipient, "newsletter.to")
    message["Subject"] = header_text(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id(newsletter, period, round_, recipient)
    list_name = header_text(newsletter.title).replace('"', "'").replace("\\", "/")
    message["List-Id"] = (
        f'"{list_name}" <{_slug(newsletter.title)}.{_domain(newsletter.from_addr)}>'
    )
    if "Reply-To" in own:
        message["Reply-To"] = _address(own["Reply-To"], "replies.address")
    targets = []
    one_click = newsletter.unsubscribe and urlsplit(newsletter.unsubscribe).scheme == "https"
    if newsletter.unsubscribe and (one_click or "List-Unsubscribe" not in own):
        # An https address comes first: mail programs offer one-click unsubscribe with it.
        targets.append(f"<{_one_line(newsletter.unsubscribe)}>")
    if "List-Unsubscribe" in own:
        # The reader's own mailto (replies configured): works without a web server.
        targets.append(_one_line(own["List-Unsubscribe"]))
    if targets:
        message["List-Unsubscribe"] = ", ".join(targets)
    if one_click:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    # Asks Exchange and Outlook not to answer the digest with out-of-office replies.
    message["X-Auto-Response-Suppress"] = "All"
    message["MIME-Version"] = "1.0"
    # Quoted-printable keeps every line under SMTP's 998-octet limit whatever the content.
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    digest = hashlib.sha256(recipient.lower().encode()).hexdigest()[:10]
    local = parseaddr(recipient)[1].split("@", maxsplit=1)[0]
    name = f"{_slug(period)}-r{round_}-{_slug(local)}-{digest}"
    return Outgoing(recipient=recipient, message=message, name=name)


# ---------------------------------------------------------------- outbox


class OutboxSender:
    """Writes each message as ``NAME.eml`` under a folder. Writing the same message again
    replaces the file, so a retried delivery never leaves two copies."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(
        self, messages: Sequence[Outgoing], handover: Handover = no_handover
    ) -> Iterator[DeliveryResult]:
        # No handover call: rewriting a file under the same name is idempotent, so a crash
        # between the write and the ledger update can never leave a second copy.
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
                atomic_write(target, item.message.as_bytes())
            except OSError as exc:
                raise DeliveryError(
                    f"cannot write to the outbox {self.folder}: {exc.strerror or exc}",
                    hint="fix its permissions or set delivery.outbox_dir",
                ) from exc
            yield DeliveryResult(item.recipient, "sent", f"written to {target}")

    def close(self) -> None:
        return None


# ---------------------------------------------------------------- SMTP


POSSIBLE_SECOND_COPY = (
    "sent again after the connection died while the server was taking it: this may be a second copy"
)


class _ConnectionLost(Exception):
    """The SMTP connection died (or the server said 421) in the middle of one message."""

    def __init__(self, reason: str, *, during_data: bool = False) -> None:
        super().__init__(reason)
        # True once DATA began: the server may have taken the message before the line died.
        self.during_data = during_data


def _reply(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:200]


class SmtpSender:
    """Sends over one SMTP connection, reconnecting once if the server drops it.

    Each message is its own transaction (MAIL, RCPT, DATA), so a refusal is known per
    recipient: 4xx stays pending for the next run, 5xx is failed for good. A server that
    drops the connection again right after a reconnect ends the run; the recipients not yet
    delivered stay pending.
    """

    def __init__(self, config: SmtpConfig, envelope_from: str) -> None:
        self.config = config
        self.envelope_from = parseaddr(envelope_from)[1]
        self._smtp: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.username and not c.password:
            raise DeliveryError(
                "delivery.smtp.username is set but CURATOR_SMTP_PASSWORD is empty",
                hint="export CURATOR_SMTP_PASSWORD before running curator",
            )
        context = ssl.create_default_context()
        smtp: smtplib.SMTP | None = None
        step = "connect"
        try:
            if c.security == "ssl":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=context)
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
                if c.security == "starttls":
                    step = "starttls"
                    smtp.starttls(context=context)
            if c.username and c.password:
                step = "login"
                smtp.login(c.username, c.password)
            smtp.ehlo_or_helo_if_needed()
        except Exception as exc:
            if smtp is not None:
                with contextlib.suppress(OSError):
                    smtp.close()
            raise self._connect_error(exc, step) from exc
        return smtp

    def _connect_error(self, exc: Exception, step: str) -> DeliveryError:
        """The one line (and hint) that says what to change for a failed connection."""
        c = self.config
        where = self.where
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return DeliveryError(
                f"the mail server {where} refused the login for {c.username} ({exc.smtp_code})",
                hint="check delivery.smtp.username and CURATOR_SMTP_PASSWORD",
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError) and step == "login":
            return DeliveryError(
                f"the mail server {where} offers no login (AUTH) on this connection",
                hint="set delivery.smtp.security to starttls or ssl, or remove "
                "delivery.smtp.username",
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryError(
                f"the mail server {where} does not offer STARTTLS",
                hint="set delivery.smtp.security to ssl (usually port 465), or none on a "
                "trusted network",
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryError(
                f"the certificate of {where} cannot be trusted: {exc.verify_message}",
                hint="check delivery.smtp.host (it must match the certificate); for a private "
                "CA, point SSL_CERT_FILE at its certificate",
            )
        if isinstance(exc, ssl.SSLError):
            hint = (
                "this port does not speak TLS from the start: set delivery.smtp.security to "
                "starttls (usually port 587)"
                if c.security == "ssl"
                else "set delivery.smtp.security to ssl if this port expects TLS from the start"
            )
            return DeliveryError(f"TLS with {where} failed: {exc.reason or exc}", hint=hint)
        if isinstance(exc, socket.gaierror):
            return DeliveryError(
                f"unknown mail server host {c.host!r}", hint="check delivery.smtp.host"
            )
        if isinstance(exc, ConnectionRefusedError):
            return DeliveryError(
                f"the mail server {where} refused the connection",
                hint="check delivery.smtp.host and delivery.smtp.port, and that the server runs",
            )
        if isinstance(exc, TimeoutError | smtplib.SMTPServerDisconnected) and (
            c.security != "ssl" and step == "connect"
        ):
            # A plain client waits for the greeting while an implicit-TLS server waits for a
            # TLS hello: the usual sign of starttls/none pointed at port 465.
            what = "sent no greeting" if isinstance(exc, TimeoutError) else "hung up"
            return DeliveryError(
                f"the mail server {where} {what} (waited {c.timeout:g} s)",
                hint="if this port expects TLS from the start (usually 465), set "
                "delivery.smtp.security to ssl; otherwise check delivery.smtp.host and port",
            )
        if isinstance(exc, TimeoutError):
            return DeliveryError(
                f"the mail server {where} did not answer in {c.timeout:g} s",
                hint="check delivery.smtp.host and port, or raise delivery.smtp.timeout",
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryError(
                f"the mail server {where} closed the connection during {step}",
                hint="check delivery.smtp.host, port and security",
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            answer = _text(exc.smtp_error)
            return DeliveryError(
                f"the mail server {where} refused {step}: {exc.smtp_code} {answer}",
                hint="check delivery.smtp settings against your mail provider's instructions",
            )
        return DeliveryError(
            f"cannot talk to the mail server {where}: {exc}",
            hint="check delivery.smtp.host, port and security",
        )

    def probe(self, recipient: str | None) -> str:
        """Do everything a send does short of sending: connect, secure, log in, then offer the
        envelope (MAIL FROM, and RCPT TO ``recipient`` when given) and withdraw it with RSET.
        No DATA is ever sent, so nothing is delivered. Returns what was checked; a problem is
        raised as DeliveryError with what to change (a refusal may quote the recipient: the
        caller, doctor, hides it)."""
        c = self.config
        smtp = self._connect()
        done = [f"connected to {self.where}"]
        if c.security != "none":
            done.append("TLS" if c.security == "ssl" else "STARTTLS")
        if c.username:
            done.append(f"logged in as {c.username}")
        try:
            code, reply = smtp.mail(self.envelope_from)
            if code >= 400:
                raise DeliveryError(
                    f"the mail server {self.where} refuses the sender {self.envelope_from} "
                    f"({code} {_reply(reply)})",
                    hint="set newsletter.from to an address this server lets you send from",
                )
            done.append("sender accepted")
            if recipient:
                code, reply = smtp.rcpt(recipient)
                if code >= 400:
                    raise DeliveryError(
                        f"the mail server {self.where} refuses the first recipient "
                        f"({code} {_reply(reply)})",
                        hint="check newsletter.to, and that the server relays for this login",
                    )
                done.append("recipient accepted")
            smtp.rset()
        except (smtplib.SMTPException, OSError) as exc:
            raise self._connect_error(exc, "probe") from exc
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            with contextlib.suppress(OSError):
                smtp.close()
        return ", ".join(done) + "; nothing sent"

    def _session(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def deliver(
        self, messages: Sequence[Outgoing], handover: Handover = no_handover
    ) -> Iterator[DeliveryResult]:
        for item in messages:
            # Set when a connection died during DATA: the server may have taken the message
            # before the line went, so the copy sent after reconnecting may be a second one.
            doubt = False
            for attempt in (1, 2):
                smtp = self._session()
                try:
                    result = self._transaction(smtp, item, handover)
                except _ConnectionLost as lost:
                    self._drop()
                    doubt = doubt or lost.during_data
                    if attempt == 1:
                        continue
                    yield DeliveryResult(item.recipient, "pending", f"connection lost: {lost}")
                    raise DeliveryError(
                        f"the mail server {self.where} dropped the connection again right "
                        f"after a reconnect ({lost})",
                        hint="run curator send again later; undelivered recipients stay pending",
                    ) from None
                if doubt and result.status == "sent":
                    result = DeliveryResult(
                        result.recipient, "sent", f"{result.detail}; {POSSIBLE_SECOND_COPY}"
                    )
                yield result
                break

    def _transaction(
        self, smtp: smtplib.SMTP, item: Outgoing, handover: Handover
    ) -> DeliveryResult:
        recipient = parseaddr(item.recipient)[1] or item.recipient
        data = item.message.as_bytes()
        try:
            code, reply = smtp.mail(self.envelope_from)
            if code != 250:
                return self._refused_sender(smtp, item, code, reply)
            code, reply = smtp.rcpt(recipient)
            if code not in {250, 251}:
                return self._refused(smtp, item, code, reply)
            # From here the server may accept the message: the ledger must know it was in
            # flight in case this process dies before the result is recorded.
            handover([item.recipient])
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _ConnectionLost(str(exc) or type(exc).__name__) from exc
        try:
            code, reply = smtp.data(data)
        except smtplib.SMTPDataError as exc:
            return self._refused(smtp, item, exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise _ConnectionLost(reason, during_data=True) from exc
        if code != 250:
            return self._refused(smtp, item, code, reply)
        return DeliveryResult(item.recipient, "sent", f"{code} {_text(reply)}")

    def _refused(
        self, smtp: smtplib.SMTP, item: Outgoing, code: int, reply: bytes | str
    ) -> DeliveryResult:
        if code == 421:
            # "Service not available, closing channel": a drop, not an answer about this
            # recipient.
            raise _ConnectionLost(f"{code} {_text(reply)}")
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.rset()
        return _refusal(item.recipient, code, reply)

    def _refused_sender(
        self, smtp: smtplib.SMTP, item: Outgoing, code: int, reply: bytes | str
    ) -> DeliveryResult:
        if 500 <= code < 600:
            # The envelope sender is refused for every recipient alike: nobody is to blame
            # but the configuration, so nobody is marked failed.
            raise DeliveryError(
                f"the mail server {self.where} refused the sender {self.envelope_from}: "
                f"{code} {_text(reply)}",
                hint="check newsletter.from: the server may not let this login send as it",
            )
        return self._refused(smtp, item, code, reply)

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


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return _one_line(text)


def _refusal(recipient: str, code: int, reason: bytes | str) -> DeliveryResult:
    detail = f"{code} {_text(reason)}"
    # 4xx is "try again later": keep it pending for the next run. 5xx is final.
    return DeliveryResult(recipient, "pending" if 400 <= code < 500 else "failed", detail)
