"""Collect readers' replies (the reflection loop) and the seams the send path uses.

Collection: each mailbox is a small class behind :class:`ReplySource` (IMAP, Maildir,
Postmark inbound JSON files). :func:`collect_replies` reads every source, decides each message
with the pure :func:`decide`, and stores it in one transaction per message. A message is keyed
by its Message-ID, so re-reading a mailbox (a UIDVALIDITY change, a run killed before the
cursor was saved) never stores an answer twice. A mailbox that cannot be reached is a
:class:`SourceProblem` in the report, never an exception: the issue still goes out.

The token rule: a reply is attributed by the token in the address it was sent to, and by
nothing else. A reply from another address than the reader's (a forward, a second account)
with a valid token is that reader's answer; the From address is kept beside it as ``sender``.
A message without a valid token (none, forged, altered, or signed by a key retired more than
:data:`curator.tokens.KEY_GRACE` ago) is counted as ignored and attributed to nobody. A
machine's reply (out of office, vacation, bounce: :func:`curator.reply_text.is_auto_reply`)
is counted as an auto-reply and never stored, whatever its token.

Privacy: addresses and replies go to the state only. Nothing here logs; a
:class:`SourceProblem` names the mailbox (host and folder, or path), never a reader.

Longer than the ~450 lines a module should keep to, on purpose: three mailbox sources, each
small, share one decision and one storing step; apart, the rules for a message would spread
over four files.

The seams ``curator send`` uses (``curator.sending``; nothing here calls send)
-----------------------------------------------------------------------------
1. ``run_send`` calls :func:`collect_replies` first, when replies are configured and the run
   keeps records, and shows ``report.lines()`` as notes (a mailbox problem is a warning, never
   a stop). An answer given since the last issue is thus handed back in this one.
2. :func:`active_recipients` then drops every reader who unsubscribed (by reply or by the
   List-Unsubscribe mailto), even while still in ``newsletter.to``.
3. ``_Run._freeze`` freezes ONE shared body, with the personal marker where each reader's
   block goes, and in the same transaction calls :func:`personal_copies` (each recipient's
   rendered block of earlier answers and the ``Reply-To`` / ``List-Unsubscribe`` headers of
   :func:`reader_headers`) and ``store.save_personal_copies``. A re-run after a crash sends
   exactly the stored copies, never a new rendering.
4. At delivery, ``drafting.build_messages(personal=store.personal_copies(issue_id))`` puts each
   block in place of the marker (an empty block removes it) and sets that copy's headers; the
   ``List-Unsubscribe`` mailto replaces the one from ``newsletter.unsubscribe``.
"""

from __future__ import annotations

import contextlib
import json
import mailbox
import ssl
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal, Protocol

from curator.answers import PersonalParts, pick_earlier_answers
from curator.errors import ConfigError, RepliesError
from curator.models import (
    Answer,
    Config,
    ImapConfig,
    PersonalCopy,
    ReaderSummary,
    ReplyConfig,
    SourceCursor,
)
from curator.normalize import mailbox_key
from curator.redact import clean_cause, redact
from curator.reply_text import (
    AUTO_HEADERS,
    MAX_MESSAGE_BYTES,
    ReplyMessage,
    html_to_text,
    is_auto_reply,
    is_unsubscribe,
    own_words,
    read_message,
)
from curator.store import Store
from curator.tokens import TokenKey, make_token, read_token, tagged_address, tokens_for

# ---------------------------------------------------------------- sources


@dataclass(frozen=True)
class Incoming:
    """One message from a source. ``words`` is set when the source already stripped the
    quoted text (Postmark's StrippedTextReply)."""

    message: ReplyMessage
    words: str | None = None


@dataclass(frozen=True)
class SourceBatch:
    """What one read of a source gave, and where the next read starts."""

    messages: tuple[Incoming, ...]
    cursor: SourceCursor | None = None
    too_large: int = 0
    problem: str | None = None  # something went wrong beside the reading (a deletion)


class ReplySource(Protocol):
    """A mailbox of replies. ``name`` identifies it in the state and in problems (never a
    reader's address); ``read`` raises :class:`RepliesError` when it cannot be read."""

    name: str

    def read(self, cursor: SourceCursor | None) -> SourceBatch: ...

    def probe(self) -> str:
        """Check the mailbox can be read, reading no message; say what was found, or raise
        :class:`RepliesError` (``curator doctor`` uses it)."""
        ...

    def close(self) -> None: ...


_MAILDIR_HINT = "replies.maildir names a Maildir (with new/ and cur/), relative to feeds.yaml"
_POSTMARK_HINT = "replies.postmark_inbound names the folder your webhook saves *.json files in"


class MaildirSource:
    """A Maildir (``new/`` and ``cur/``), read only: what was handled before is known by its
    Message-ID in the state, so nothing is moved or deleted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"maildir:{path}"

    def probe(self) -> str:
        if not (self.path / "new").is_dir() or not (self.path / "cur").is_dir():
            raise RepliesError(
                f"{self.name}: not a Maildir (no new/ or cur/ folder)", hint=_MAILDIR_HINT
            )
        return f"{self.name}: a Maildir"

    def read(self, cursor: SourceCursor | None) -> SourceBatch:
        if not (self.path / "new").is_dir() and not (self.path / "cur").is_dir():
            raise RepliesError(
                f"{self.name}: not a Maildir (no new/ or cur/ folder)", hint=_MAILDIR_HINT
            )
        try:
            box = mailbox.Maildir(self.path, factory=None, create=False)
            messages: list[Incoming] = []
            too_large = 0
            for key in sorted(box.keys()):
                with box.get_file(key) as handle:
                    raw = handle.read(MAX_MESSAGE_BYTES + 1)
                if len(raw) > MAX_MESSAGE_BYTES:
                    too_large += 1
                    continue
                messages.append(Incoming(read_message(raw)))
        except OSError as exc:
            raise RepliesError(f"{self.name}: cannot read it ({exc.strerror or exc})") from exc
        return SourceBatch(tuple(messages), too_large=too_large)

    def close(self) -> None:
        return None


class PostmarkInboundSource:
    """A folder of Postmark inbound webhook payloads saved as ``*.json`` files."""

    def __init__(self, folder: Path, address: str) -> None:
        self.folder = folder
        self.address = address
        self.name = f"postmark_inbound:{folder}"

    def probe(self) -> str:
        if not self.folder.is_dir():
            raise RepliesError(f"{self.name}: no such folder", hint=_POSTMARK_HINT)
        return f"{self.name}: a folder"

    def read(self, cursor: SourceCursor | None) -> SourceBatch:
        if not self.folder.is_dir():
            raise RepliesError(f"{self.name}: no such folder", hint=_POSTMARK_HINT)
        messages: list[Incoming] = []
        too_large = 0
        try:
            files = sorted(self.folder.glob("*.json"))
            for path in files:
                if path.stat().st_size > MAX_MESSAGE_BYTES:
                    too_large += 1
                    continue
                incoming = self._incoming(path.read_bytes())
                if incoming is not None:
                    messages.append(incoming)
        except OSError as exc:
            raise RepliesError(f"{self.name}: cannot read it ({exc.strerror or exc})") from exc
        return SourceBatch(tuple(messages), too_large=too_large)

    def _incoming(self, raw: bytes) -> Incoming | None:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict):
            return None

        def text(key: str) -> str:
            return str(data.get(key) or "")

        message_id = _postmark_header(data, "Message-ID") or (
            f"<postmark-{text('MessageID')}@inbound>" if text("MessageID") else ""
        )
        if not message_id:
            return None
        recipients = [text("OriginalRecipient"), text("To")]
        if text("MailboxHash"):
            recipients.append(tagged_address(self.address, text("MailboxHash")))
        sender_full = data.get("FromFull")
        sender = (
            str(sender_full.get("Email") or "") if isinstance(sender_full, dict) else text("From")
        )
        body = text("TextBody") or html_to_text(text("HtmlBody"))
        headers = ((name, _postmark_header(data, name)) for name in AUTO_HEADERS)
        message = ReplyMessage(
            message_id=message_id[:500],
            sender=sender or None,
            recipients=tuple(r for r in recipients if r),
            body=body,
            headers=tuple((name, value) for name, value in headers if value),
        )
        return Incoming(message, words=text("StrippedTextReply") or None)

    def close(self) -> None:
        return None


def _postmark_header(data: dict[str, Any], name: str) -> str:
    headers = data.get("Headers")
    if not isinstance(headers, list):
        return ""
    for header in headers:
        if isinstance(header, dict) and str(header.get("Name", "")).lower() == name.lower():
            return str(header.get("Value") or "")
    return ""


class ImapSource:
    """An IMAP folder, read with imapclient over implicit TLS, STARTTLS or (for a local
    server only) plain text. Only messages with a UID above the last one seen are fetched;
    a new UIDVALIDITY means the folder was rebuilt, so it is read again from the start and
    Message-IDs keep answers from being stored twice. Messages are fetched with BODY.PEEK
    (they stay unread).

    With ``delete: true`` a message is deleted on a later collection than the one that
    stored it: the UIDs at or below the cursor this read starts from, a cursor that an
    earlier run saved with its state. Deleting what this run reads would lose the answers
    for good when its state is never saved (a CI run whose push fails, is cancelled or
    times out)."""

    def __init__(self, config: ImapConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.ssl_context = ssl_context
        self.name = f"imap:{config.host}:{config.port}/{config.folder}"
        self._client: Any = None

    def _secrets(self) -> list[str]:
        return [s for s in (self.config.password, self.config.username) if s]

    def _fail(self, exc: BaseException) -> RepliesError:
        """The server's words, cleaned of the password and the username in every form a
        server may echo (clear, or base64 as AUTHENTICATE PLAIN sends them), before they are
        cut short; chain it ``from`` :meth:`_cause` so ``--debug`` shows no secret either."""
        reason = redact(str(exc), self._secrets())[:200]
        return RepliesError(f"{self.name}: {type(exc).__name__}: {reason}")

    def _cause(self, exc: BaseException) -> BaseException:
        return clean_cause(exc, self._secrets())

    def _open(self, *, readonly: bool) -> tuple[Any, dict[bytes, Any]]:
        """Connect, secure, log in and select the folder; the client and what SELECT said."""
        from imapclient import IMAPClient

        c = self.config
        if c.username and not c.password:
            raise RepliesError(
                f"{self.name}: no password",
                hint="set the environment variable CURATOR_IMAP_PASSWORD",
            )
        context = self.ssl_context or ssl.create_default_context()
        client = IMAPClient(
            c.host,
            port=c.port,
            ssl=c.tls == "implicit",
            ssl_context=context,
            timeout=c.timeout,
        )
        self._client = client
        if c.tls == "starttls":
            client.starttls(context)
        if c.username:
            client.login(c.username, c.password)
        return client, client.select_folder(c.folder, readonly=readonly)

    def probe(self) -> str:
        import imaplib

        from imapclient.exceptions import IMAPClientError

        try:
            _, selected = self._open(readonly=True)
        except (OSError, IMAPClientError, imaplib.IMAP4.error, KeyError, ValueError) as exc:
            raise self._fail(exc) from self._cause(exc)
        finally:
            self.close()
        count = int(selected.get(b"EXISTS", 0))
        return f"{self.name}: logged in, {count} message{'s' * (count != 1)} in the folder"

    def read(self, cursor: SourceCursor | None) -> SourceBatch:
        import imaplib

        from imapclient.exceptions import IMAPClientError

        c = self.config
        try:
            client, selected = self._open(readonly=not c.delete)
            uidvalidity = int(selected[b"UIDVALIDITY"])
            start = 1
            if cursor is not None and cursor.uidvalidity == uidvalidity:
                start = cursor.last_uid + 1
            problem = self._delete_through(start - 1) if c.delete else None
            uids = sorted(u for u in client.search(["UID", f"{start}:*"]) if u >= start)
            sizes = client.fetch(uids, ["RFC822.SIZE"]) if uids else {}
            small = [u for u in uids if int(sizes[u][b"RFC822.SIZE"]) <= MAX_MESSAGE_BYTES]
            messages: list[Incoming] = []
            for offset in range(0, len(small), 50):
                chunk = small[offset : offset + 50]
                bodies = client.fetch(chunk, ["BODY.PEEK[]"])
                for uid in chunk:
                    raw = bodies[uid].get(b"BODY[]") or b""
                    messages.append(Incoming(read_message(bytes(raw))))
        except (OSError, IMAPClientError, imaplib.IMAP4.error, KeyError, ValueError) as exc:
            raise self._fail(exc) from self._cause(exc)
        last = max(uids, default=start - 1)
        return SourceBatch(
            tuple(messages),
            cursor=SourceCursor(uidvalidity, max(last, 0)),
            too_large=len(uids) - len(small),
            problem=problem,
        )

    def _delete_through(self, last_uid: int) -> str | None:
        """Delete the messages up to ``last_uid`` (handled by an earlier, saved run); a
        failure is returned as a problem and reading goes on."""
        import imaplib

        from imapclient.exceptions import IMAPClientError

        if last_uid < 1:
            return None
        client = self._client
        try:
            handled = [u for u in client.search(["UID", f"1:{last_uid}"]) if u <= last_uid]
            if not handled:
                return None
            client.delete_messages(handled)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(handled)
            else:
                client.expunge()
        except (OSError, IMAPClientError, imaplib.IMAP4.error) as exc:
            return f"{self._fail(exc).message} (while deleting handled messages)"
        return None

    def close(self) -> None:
        if self._client is None:
            return
        # Closing a connection that may already be gone: nothing to report.
        with contextlib.suppress(Exception):
            self._client.logout()
        self._client = None


def build_sources(replies: ReplyConfig) -> list[ReplySource]:
    """The sources ``replies:`` configures, IMAP first."""
    sources: list[ReplySource] = []
    if replies.imap is not None:
        sources.append(ImapSource(replies.imap))
    if replies.maildir is not None:
        sources.append(MaildirSource(replies.maildir))
    if replies.postmark_inbound is not None:
        sources.append(PostmarkInboundSource(replies.postmark_inbound, replies.address))
    return sources


# ---------------------------------------------------------------- deciding

Outcome = Literal["answer", "unsubscribe", "ignored", "auto", "empty"]


@dataclass(frozen=True)
class Decision:
    """What to do with one message: pure, from the message, the reply address and the keys."""

    outcome: Outcome
    reader_id: int | None = None
    issue_id: int | None = None
    text: str | None = None
    sender: str | None = None


def decide(incoming: Incoming, address: str, keys: list[TokenKey], now: datetime) -> Decision:
    """Attribute a message by the first valid token among the addresses it was sent to. A
    message to a reader's unsubscribe address unsubscribes, whoever or whatever wrote it (a
    mail program's unsubscribe button may mark its message automatic); any other machine's
    reply (out of office, bounce) is ``auto``."""
    message = incoming.message
    claim = None
    for token in tokens_for(address, list(message.recipients)):
        claim = read_token(token, keys, now)
        if claim is not None:
            break
    if claim is not None and claim.purpose == "unsubscribe":
        return Decision("unsubscribe", reader_id=claim.reader_id)
    if is_auto_reply(message.headers):
        return Decision("auto")
    if claim is None:
        return Decision("ignored")
    words = own_words(incoming.words if incoming.words is not None else message.body)
    sender = parseaddr(message.sender or "")[1].lower() or None
    if is_unsubscribe(words):
        # "Stop." may open an answer too (the bank asks what to stop doing): the reader is
        # unsubscribed as asked, and whatever they wrote below is kept, never lost.
        rest = "\n".join(words.strip().split("\n")[1:]).strip()
        return Decision(
            "unsubscribe",
            reader_id=claim.reader_id,
            issue_id=claim.issue_id if rest else None,
            text=rest or None,
            sender=sender if rest else None,
        )
    if not words:
        return Decision("empty")
    return Decision(
        "answer", reader_id=claim.reader_id, issue_id=claim.issue_id, text=words, sender=sender
    )


# ---------------------------------------------------------------- collecting


@dataclass(frozen=True)
class SourceProblem:
    source: str
    message: str


@dataclass(frozen=True)
class CollectReport:
    """What a collection did, in counts; problems name mailboxes, never readers."""

    configured: bool = True
    answers: int = 0
    unsubscribes: int = 0
    ignored: int = 0
    auto_replies: int = 0
    empty: int = 0
    too_large: int = 0
    already_seen: int = 0
    problems: tuple[SourceProblem, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        if not self.configured:
            return ["replies are not configured (add a `replies:` section to feeds.yaml)"]
        lines = [
            f"replies: {self.answers} new answer(s), {self.unsubscribes} unsubscribe(s), "
            f"{self.ignored} ignored without a valid token"
        ]
        extra = []
        if self.auto_replies:
            extra.append(f"{self.auto_replies} auto-reply(ies) (out of office, bounce) ignored")
        if self.empty:
            extra.append(f"{self.empty} empty")
        if self.too_large:
            extra.append(f"{self.too_large} too large to read")
        if self.already_seen:
            extra.append(f"{self.already_seen} seen before")
        if extra:
            lines.append("replies: also " + ", ".join(extra))
        lines.extend(f"replies: {p.message}" for p in self.problems)
        return lines


def collect_replies(
    config: Config,
    store: Store,
    now: datetime,
    *,
    sources: Sequence[ReplySource] | None = None,
) -> CollectReport:
    """Read every configured mailbox and store what readers said. Never raises for a
    mailbox: each one that fails is a problem in the report."""
    replies = config.replies
    if replies is None:
        return CollectReport(configured=False)
    keys = store.token_keys()
    counts: Counter[str] = Counter()
    problems: list[SourceProblem] = []
    for source in sources if sources is not None else build_sources(replies):
        try:
            batch = source.read(store.source_cursor(source.name))
            counts["too_large"] += batch.too_large
            seen = store.seen_messages([i.message.message_id for i in batch.messages])
            for incoming in batch.messages:
                if incoming.message.message_id in seen:
                    counts["duplicate"] += 1
                    continue
                counts[_store_one(store, incoming, replies.address, keys, now)] += 1
            if batch.cursor is not None:
                store.save_source_cursor(source.name, batch.cursor)
            if batch.problem is not None:
                problems.append(SourceProblem(source.name, batch.problem))
        except RepliesError as exc:
            problems.append(SourceProblem(source.name, exc.message))
        finally:
            source.close()
    return CollectReport(
        answers=counts["answer"],
        unsubscribes=counts["unsubscribe"],
        ignored=counts["ignored"],
        auto_replies=counts["auto"],
        empty=counts["empty"],
        too_large=counts["too_large"],
        already_seen=counts["duplicate"],
        problems=tuple(problems),
    )


def _store_one(
    store: Store, incoming: Incoming, address: str, keys: list[TokenKey], now: datetime
) -> str:
    decision = decide(incoming, address, keys, now)
    return store.record_reply_message(
        incoming.message.message_id,
        decision.outcome,
        now,
        reader_id=decision.reader_id,
        issue_id=decision.issue_id,
        text=decision.text,
        sender=decision.sender,
        received_at=incoming.message.received_at,
        unsubscribe=decision.outcome == "unsubscribe",
    )


# ---------------------------------------------------------------- seams for send


def active_recipients(recipients: Sequence[str], store: Store) -> tuple[str, ...]:
    """``recipients`` without the readers who unsubscribed."""
    gone = store.unsubscribed()
    return tuple(r for r in recipients if mailbox_key(r) not in gone)


def reader_headers(
    replies: ReplyConfig, key: TokenKey, issue_id: int, reader_id: int
) -> dict[str, str]:
    """The extra headers of one reader's copy: ``Reply-To`` with a token naming the issue
    and the reader, and ``List-Unsubscribe`` as a mailto with its own unsubscribe token."""
    reply_token = make_token(key, "reply", issue_id, reader_id)
    unsubscribe_token = make_token(key, "unsubscribe", 0, reader_id)
    return {
        "Reply-To": tagged_address(replies.address, reply_token),
        "List-Unsubscribe": f"<mailto:{tagged_address(replies.address, unsubscribe_token)}"
        "?subject=unsubscribe>",
    }


def personal_parts_for(
    store: Store, recipient: str, issue_date: datetime, previous_period: str | None
) -> PersonalParts:
    """That reader's answers to give back in a new issue built at ``issue_date``."""
    return pick_earlier_answers(store.answers(recipient), issue_date, previous_period)


def personal_copies(
    config: Config,
    store: Store,
    *,
    issue_id: int,
    period: str,
    issue_date: datetime,
    recipients: Sequence[str],
    now: datetime,
) -> dict[str, PersonalCopy]:
    """Every recipient's own parts of a frozen issue: the block of earlier answers (rendered)
    and the Reply-To / List-Unsubscribe headers. Empty when replies are not configured.
    Meant to be called, with ``store.save_personal_copies``, in the freezing transaction."""
    from curator.render import render_personal

    if config.replies is None:
        return {}
    previous = store.previous_issue(period)
    key = store.signing_key(now)
    ids = store.reader_ids(recipients, now)
    copies: dict[str, PersonalCopy] = {}
    for recipient in recipients:
        parts = personal_parts_for(
            store, recipient, issue_date, previous.period if previous else None
        )
        html, text = render_personal(parts, config.templates_dir)
        headers = reader_headers(config.replies, key, issue_id, ids[recipient])
        copies[recipient] = PersonalCopy(html, text, tuple(headers.items()))
    return copies


# ---------------------------------------------------------------- commands


def run_replies(config: Config, now: datetime) -> CollectReport:
    """``curator replies``: collect under the run lock, so a send never races it."""
    from curator.store import RunLock

    if config.replies is None:
        return CollectReport(configured=False)
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        return collect_replies(config, store, now)


def run_rotate_key(config: Config, now: datetime) -> TokenKey:
    """``curator replies rotate-key``: a new signing key; the old one still verifies for
    the grace period."""
    from curator.store import RunLock

    with RunLock(config.state_path), Store.open(config.state_path) as store:
        return store.rotate_token_key(now)


def journal_answers(config: Config, reader: str | None) -> list[Answer]:
    """Every answer (of one reader, when given), oldest first: what `curator journal` lists."""
    with Store.open(config.state_path) as store:
        return store.answers(reader)


def run_journal(config: Config, reader: str | None, fmt: str) -> str:
    """``curator journal --format md|json``: the journal as a document to keep."""
    from curator.answers import journal_json, journal_markdown

    answers = journal_answers(config, reader)
    if fmt == "json":
        return journal_json(answers)
    return journal_markdown(answers, f"{config.newsletter.title}: my answers")


def run_readers(config: Config, resubscribe: str | None = None) -> ReadersReport:
    """``curator readers``: every recipient with counts; ``resubscribe`` clears an
    unsubscribe first."""
    from curator.store import RunLock

    changed: bool | None = None
    with RunLock(config.state_path), Store.open(config.state_path) as store:
        rows = store.reader_summaries()
        if resubscribe is not None:
            if mailbox_key(resubscribe) not in {mailbox_key(r.address) for r in rows}:
                raise ConfigError(
                    f"{resubscribe!r} is not a reader curator knows",
                    key="--resubscribe",
                    hint="`curator readers` lists them; check the spelling",
                )
            changed = store.resubscribe(resubscribe)
            rows = store.reader_summaries()
    configured = {mailbox_key(a) for a in config.newsletter.to}
    return ReadersReport(tuple(rows), frozenset(configured), changed)


@dataclass(frozen=True)
class ReadersReport:
    rows: tuple[ReaderSummary, ...]
    in_config: frozenset[str]
    resubscribed: bool | None = None
