"""A reader's own words out of a reply email: pure, bytes or text in, values out.

The quoted original, the "On ... wrote:" line (in the languages and clients readers use),
Outlook's header block, signatures and phone footers are removed. mail-parser-reply does most
of the cutting; the rules here catch what it leaves (footers, a wrapped Gmail "wrote:" line,
Outlook's underscore rule, inline replies under quoted lines). What comes out is plain text:
it is data, and every place that shows it escapes it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

MAX_MESSAGE_BYTES = 1024 * 1024  # a bigger message is not a reply worth reading
MAX_ANSWER_CHARS = 4000

# Languages mail-parser-reply knows the "wrote:" and header lines of.
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs"]

# A line (or two or three joined: Gmail wraps long ones) that introduces the quoted original.
_WROTE = re.compile(
    r"^\s*(?:"
    r"On\s.{1,300}\swrote\s*:"
    r"|Am\s.{1,300}\sschrieb\s.{0,300}:"
    r"|Le\s.{1,300}\sa\s+écrit\s*:"
    r"|El\s.{1,300}\sescribió\s*:"
    r"|Il\s.{1,300}\sha\s+scritto\s*:"
    r"|Op\s.{1,300}\sschreef\s.{0,300}:"
    r"|Em\s.{1,300}\sescreveu\s*:"
    r"|Den\s.{1,300}\sskrev\s.{0,300}:"
    r")\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine"
    r"|Mensaje original|Forwarded message)\s*-{2,}"
    r"|_{20,}"
    r"|Begin forwarded message:)\s*$",
    re.IGNORECASE,
)
# Outlook without a separator: "From: ..." followed within two lines by "Sent:" or "Date:".
_HEADER_FROM = re.compile(r"^\s*\*?(?:From|Von|De|Van|Da|Från|Fra)\s*\*?\s*:", re.IGNORECASE)
_HEADER_NEXT = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha|Inviato|Verzonden|Skickat)"
    r"\s*\*?\s*:",
    re.IGNORECASE,
)
_FOOTER = re.compile(
    r"^\s*(?:Sent from my\s.{1,40}|Sent from (?:Outlook|Mail|Yahoo Mail|Gmail)\b.{0,40}"
    r"|Get Outlook for\s.{1,30}|Sent with Proton Mail.{0,40}|Sent via\s.{1,40}"
    r"|Von meinem\s.{1,40}\sgesendet|Gesendet von.{1,40}"
    r"|Envoyé de mon\s.{1,40}|Enviado desde mi\s.{1,40}|Inviato da\s.{1,40}"
    r"|Verzonden vanaf.{1,40}|Skickat från.{1,40})\s*$",
    re.IGNORECASE,
)
_UNSUBSCRIBE = re.compile(r"^\W*(?:unsubscribe|stop)\W*$", re.IGNORECASE)

# The headers that tell a machine's reply (out of office, vacation, bounce) from a person's.
AUTO_HEADERS = ("Auto-Submitted", "X-Autoreply", "X-Autorespond", "Precedence", "Content-Type")
_AUTO_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk", "list"})


@dataclass(frozen=True)
class ReplyMessage:
    """What curator needs from one incoming email."""

    message_id: str
    sender: str | None
    recipients: tuple[str, ...]
    body: str
    received_at: datetime | None = None
    too_large: bool = False
    # The AUTO_HEADERS the message has, as (name, value); Content-Type as its bare type.
    headers: tuple[tuple[str, str], ...] = ()


def read_message(raw: bytes) -> ReplyMessage:
    """Parse one RFC 5322 message: its id (made from its bytes when it has none), who sent it,
    every address it was delivered to, and its text (the HTML part made text when it has no
    plain part). Attachments are never read."""
    fallback_id = "<sha256-" + hashlib.sha256(raw).hexdigest()[:32] + "@curator>"
    if len(raw) > MAX_MESSAGE_BYTES:
        return ReplyMessage(fallback_id, None, (), "", too_large=True)
    try:
        return _read(raw, fallback_id)
    except Exception:
        # Anyone can mail the reply address: a message the email package cannot take apart
        # (a broken address header raises AttributeError, IndexError, HeaderParseError...)
        # is one unreadable message with no token, so it is counted as ignored. It must
        # never stop a collection.
        return ReplyMessage(fallback_id, None, (), "")


def _read(raw: bytes, fallback_id: str) -> ReplyMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default always makes EmailMessage
    message_id = _header(message, "Message-ID").strip() or fallback_id
    recipients: list[str] = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        recipients.extend(str(v) for v in message.get_all(name, []))
    sender = _header(message, "From") or None
    received: datetime | None = None
    try:
        date = _header(message, "Date")
        received = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        received = None
    if received is not None and received.tzinfo is None:
        received = None
    headers = [(name, _header(message, name)) for name in AUTO_HEADERS[:-1]]
    headers.append(("Content-Type", message.get_content_type()))
    return ReplyMessage(
        message_id=message_id[:500],
        sender=sender,
        recipients=tuple(recipients),
        body=message_body(message),
        received_at=received,
        headers=tuple((name, value) for name, value in headers if value),
    )


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except (TypeError, ValueError, IndexError):
        return ""


def message_body(message: EmailMessage) -> str:
    """The message's text: its plain part, else its HTML part as text, else nothing."""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, TypeError):
        part = None
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, TypeError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return content


class _TextOfHtml(HTMLParser):
    _BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre"}
        | {"table", "section", "article", "header", "footer"}
    )
    _SKIP = frozenset({"script", "style", "head", "title", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = dict(attrs).get("class") or ""
        # Gmail, Apple Mail and Outlook web put the quoted original in these.
        quoted = "gmail_quote" in classes or "divRplyFwdMsg" in (dict(attrs).get("id") or "")
        if tag in self._SKIP or quoted or self.skipping:
            if tag not in {"br", "img", "hr", "meta", "link", "input"}:
                self.skipping += 1
            return
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            self.skipping -= 1
            return
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The text of an HTML reply, block elements as lines, quoted originals left out."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def own_words(body: str) -> str:
    """The reader's own text of a reply: no quoted original, no "wrote:" line, no Outlook
    header block, no signature after "-- ", no phone footer; at most
    :data:`MAX_ANSWER_CHARS` characters."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = _cut_by_rules(text)
    parsed = _library_cut(text)
    if parsed.strip():
        text = _cut_by_rules(parsed)
    lines = [line.rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if len(text) > MAX_ANSWER_CHARS:
        cut = text[:MAX_ANSWER_CHARS].rsplit(None, 1)[0]
        text = cut.rstrip() + " …"
    return text


def _library_cut(text: str) -> str:
    from mailparser_reply import EmailReplyParser

    try:
        reply = EmailReplyParser(languages=list(_LANGUAGES)).parse_reply(text)
    except (ValueError, TypeError, IndexError, AttributeError, re.error):
        # The library is a heuristic; when it trips, the rules here still apply.
        return text
    return reply if isinstance(reply, str) else ""


def _cut_by_rules(text: str) -> str:
    lines = text.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _WROTE.match(line) and not any(k.strip() for k in kept):
            # An inline reply starts with the "wrote:" line; the reader's words sit between
            # the quoted lines below it, which are dropped one by one.
            continue
        if (
            _WROTE.match(line)
            or _wrapped_wrote(lines[index : index + 3])
            or _SEPARATOR.match(line)
            or (
                _HEADER_FROM.match(line)
                and any(_HEADER_NEXT.match(n) for n in lines[index + 1 : index + 4])
            )
        ):
            break
        if line in ("-- ", "--") or _FOOTER.match(line):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


def _wrapped_wrote(lines: list[str]) -> bool:
    """A "wrote:" line a client wrapped over two or three lines. Its first line carries the
    date (a digit) and is not a finished sentence, so a reader's own "On reflection, ..."
    above it is never taken for one."""
    first = lines[0].strip()
    if not re.search(r"\d", first) or first.endswith((".", "!", "?")):
        return False
    return any(_WROTE.match(" ".join(part.strip() for part in lines[:n])) for n in (2, 3))


def is_auto_reply(headers: tuple[tuple[str, str], ...]) -> bool:
    """Whether a message was sent by a machine, not a reader: ``Auto-Submitted`` other than
    ``no`` (RFC 3834), ``X-Autoreply`` / ``X-Autorespond``, ``Precedence: auto_reply``,
    ``bulk``, ``junk`` or ``list``, or a delivery status report (``multipart/report``)."""
    for name, value in headers:
        first = value.split(";", 1)[0].strip().lower()
        if {
            "auto-submitted": first not in ("", "no"),
            "x-autoreply": bool(first),
            "x-autorespond": bool(first),
            "precedence": first in _AUTO_PRECEDENCE,
            "content-type": first == "multipart/report",
        }.get(name.lower(), False):
            return True
    return False


def is_unsubscribe(words: str) -> bool:
    """True when the first line of the reader's words is ``unsubscribe`` or ``stop``, in any
    case, with any punctuation around it."""
    for line in words.split("\n"):
        if line.strip():
            return bool(_UNSUBSCRIBE.match(line))
    return False
