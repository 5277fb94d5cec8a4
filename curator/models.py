"""The values that flow between the stages. All frozen: a stage returns new values, never edits.

What came from a feed (:class:`EntryData`) is a different type from what the state holds
(:class:`Post`, with curator's own timestamps), as in lemon24/reader.

Longer than the ~450 lines a module should keep to, on purpose: it is only declarations, and
one place for every value type keeps the stages from importing each other for a dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

Cadence = Literal["daily", "weekly", "monthly"]
EmptyWeek = Literal["skip", "question", "archive"]
Security = Literal["starttls", "ssl", "none"]
DeliveryMethod = Literal["outbox", "smtp", "postmark"]
MediaKind = Literal["audio", "video"]
ImapTls = Literal["implicit", "starttls", "none"]


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class FeedConfig:
    """One source as written in feeds.yaml."""

    name: str
    url: str
    tags: tuple[str, ...] = ()
    enabled: bool = True
    max_posts: int | None = None
    # False when feeds.yaml gave no name and ``name`` is only the host: the feed's own title,
    # once fetched, is then what readers see.
    named: bool = True


@dataclass(frozen=True)
class Question:
    """A reflection question; themes steer which week it fits."""

    text: str
    themes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewsletterConfig:
    title: str = "curator weekly"
    from_addr: str = "curator <curator@localhost>"
    to: tuple[str, ...] = ()
    cadence: Cadence = "weekly"
    timezone: str = "UTC"
    lookback_days: int = 7
    max_posts: int = 10
    max_posts_per_feed: int = 3
    empty_week: EmptyWeek = "skip"
    subject: str = "{{ title }}: {{ period_label }}"
    unsubscribe: str | None = None
    reading_minutes: int | None = None
    language: str = "en"
    intro: str = ""


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    # Filled from CURATOR_SMTP_PASSWORD only; repr=False keeps it out of tracebacks and logs.
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0


@dataclass(frozen=True)
class PostmarkConfig:
    # Filled from CURATOR_POSTMARK_TOKEN only; never read from feeds.yaml.
    token: str | None = field(default=None, repr=False)
    message_stream: str = "broadcast"
    endpoint: str = "https://api.postmarkapp.com/email/batch"


@dataclass(frozen=True)
class DeliveryConfig:
    method: DeliveryMethod = "outbox"
    outbox_dir: Path = Path("outbox")
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    postmark: PostmarkConfig = field(default_factory=PostmarkConfig)


@dataclass(frozen=True)
class FetchConfig:
    concurrency: int = 32
    per_host: int = 2
    connect_timeout: float = 10.0
    timeout: float = 30.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2


@dataclass(frozen=True)
class ImapConfig:
    """An IMAP mailbox that receives readers' replies."""

    host: str
    port: int = 993
    tls: ImapTls = "implicit"
    username: str | None = None
    # Filled from CURATOR_IMAP_PASSWORD only; repr=False keeps it out of tracebacks and logs.
    password: str | None = field(default=None, repr=False)
    folder: str = "INBOX"
    # Off by default: curator only reads; with it on, a message is deleted once it is stored.
    delete: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class ReplyConfig:
    """The `replies:` section: where readers' answers arrive and are collected from."""

    address: str  # the bare address (local@domain); Reply-To becomes local+TOKEN@domain
    maildir: Path | None = None
    imap: ImapConfig | None = None
    postmark_inbound: Path | None = None  # a folder of Postmark inbound webhook JSON files

    @property
    def local(self) -> str:
        return self.address.rsplit("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


@dataclass(frozen=True)
class Config:
    """Everything feeds.yaml (plus the environment) says, validated."""

    path: Path
    feeds: tuple[FeedConfig, ...]
    newsletter: NewsletterConfig = field(default_factory=NewsletterConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    questions: tuple[Question, ...] = ()
    state_path: Path = Path(".curator/state.db")
    templates_dir: Path | None = None
    archive_dir: Path | None = None
    # Where the archive folder is published (archive.url), always ending in "/".
    archive_url: str | None = None
    replies: ReplyConfig | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def enabled_feeds(self) -> tuple[FeedConfig, ...]:
        return tuple(f for f in self.feeds if f.enabled)


# ---------------------------------------------------------------- fetch and parse


@dataclass(frozen=True)
class Validators:
    """What a server told us last time, sent back as a conditional request."""

    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None


# "skipped": not fetched this run, because the feed is backed off after repeated failures.
FetchStatus = Literal["ok", "not_modified", "unchanged", "failed", "skipped"]


@dataclass(frozen=True)
class FetchResult:
    """How one feed's fetch ended. Failures are values, so one bad feed never stops the batch."""

    feed: FeedConfig
    status: FetchStatus
    http_status: int | None = None
    body: bytes | None = field(default=None, repr=False)
    final_url: str | None = None
    content_type: str | None = None
    validators: Validators = field(default_factory=Validators)
    permanent_redirect: str | None = None
    gone: bool = False
    error: str | None = None
    retry_after: str | None = None
    elapsed: float = 0.0
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class EntryData:
    """One entry as the feed gave it, normalized: plain-text title, absolute links, UTC dates."""

    key: str
    title: str
    link: str | None
    canonical_url: str | None
    author: str | None
    published: datetime | None
    updated: datetime | None
    excerpt: str
    word_count: int
    image: str | None = None
    categories: tuple[str, ...] = ()
    # What the feed declares about the post's media: its length in seconds, "audio" or
    # "video" for an episode, and the picture's width and height in pixels when known.
    duration: int | None = None
    media_kind: MediaKind | None = None
    image_width: int | None = None
    image_height: int | None = None


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    entries: tuple[EntryData, ...]
    warning: str | None = None


@dataclass(frozen=True)
class FeedOutcome:
    """A feed's fetch and parse, together: what `curator fetch` reports per row."""

    feed: FeedConfig
    fetch: FetchResult
    parsed: ParsedFeed | None = None
    error: str | None = None
    new_entries: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def resting(self) -> bool:
        """Left alone this run: the feed failed lately and its backoff has not passed."""
        return self.fetch.status == "skipped"


# ---------------------------------------------------------------- stored and selected


@dataclass(frozen=True)
class Post:
    """An entry as curator holds it, with its own timestamps."""

    id: int
    feed_url: str
    feed_name: str
    key: str
    title: str
    link: str | None
    canonical_url: str | None
    author: str | None
    published: datetime | None
    first_seen: datetime
    excerpt: str
    word_count: int
    image: str | None = None
    categories: tuple[str, ...] = ()
    duration: int | None = None
    media_kind: MediaKind | None = None
    image_width: int | None = None
    image_height: int | None = None

    @property
    def reading_minutes(self) -> int:
        """Minutes to read the post at an ordinary pace (230 words a minute), at least one."""
        return max(1, round(self.word_count / 230)) if self.word_count else 1

    @property
    def time_label(self) -> str:
        """ "45 min listen", "12 min watch", "4 min read", or "" when there is nothing to time."""
        if self.media_kind and self.duration:
            verb = "listen" if self.media_kind == "audio" else "watch"
            minutes = max(1, round(self.duration / 60))
            if minutes < 60:
                return f"{minutes} min {verb}"
            hours, minutes = divmod(minutes, 60)
            return f"{hours} hr {minutes} min {verb}" if minutes else f"{hours} hr {verb}"
        if self.word_count:
            return f"{self.reading_minutes} min read"
        return ""


@dataclass(frozen=True)
class Period:
    """The slice of time one issue covers: ``key`` names it in the state, ``label`` for people."""

    key: str
    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class QuestionChoice:
    text: str
    reason: str


@dataclass(frozen=True)
class IssueDraft:
    """What select decided: the posts (lead first), the overflow list and the question."""

    period: Period
    posts: tuple[Post, ...]
    more: tuple[Post, ...]
    question: QuestionChoice | None
    resurfaced: bool = False


@dataclass(frozen=True)
class RenderedIssue:
    subject: str
    html: str
    text: str
    notes: tuple[str, ...] = ()


DeliveryStatus = Literal["pending", "sent", "failed"]


@dataclass(frozen=True)
class StoredIssue:
    id: int
    period: str
    round: int
    built_at: datetime
    subject: str
    html: str
    text: str
    question: str | None
    post_count: int


@dataclass(frozen=True)
class DeliveryRow:
    issue_id: int
    recipient: str
    status: DeliveryStatus
    answer: str | None = None
    error: str | None = None
    updated_at: datetime | None = None
    # When the message was handed to the server; set on a pending row only if a run died
    # before the server's answer was recorded (the recipient may already have a copy).
    handed_over_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """What a sender says about one recipient: ``sent``, ``failed`` (for good) or ``pending``."""

    recipient: str
    status: DeliveryStatus
    detail: str


@dataclass(frozen=True)
class ArchivedPost:
    title: str
    link: str | None
    source: str


@dataclass(frozen=True)
class ArchivedIssue:
    """An issue as the public archive shows it: the HTML as sent, and what the feed lists."""

    period: str
    subject: str
    built_at: datetime
    html: str
    question: str | None
    posts: tuple[ArchivedPost, ...] = ()


# ---------------------------------------------------------------- what the state holds


@dataclass(frozen=True)
class FeedHealth:
    url: str
    name: str
    title: str | None
    last_attempt: datetime | None
    last_success: datetime | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    redirect_to: str | None
    gone: bool
    entry_count: int
    last_post: datetime | None
    last_elapsed: float | None = None


@dataclass(frozen=True)
class IssueSummary:
    issue: StoredIssue
    sent: int
    failed: int
    pending: int


@dataclass(frozen=True)
class QuestionUse:
    question: str
    period: str
    used_at: datetime


# ---------------------------------------------------------------- replies


@dataclass(frozen=True)
class Answer:
    """One reader's reply to one issue, as the state keeps it."""

    reader: str
    issue_id: int
    period: str
    issue_date: datetime
    question: str | None
    received_at: datetime
    text: str
    sender: str | None = None


@dataclass(frozen=True)
class ReaderSummary:
    """What `curator readers` shows for one address."""

    address: str
    delivered: int
    failed: int
    last_reply: datetime | None
    unsubscribed_at: datetime | None
    # The number a send's output calls this reader by ("reader #3"), never the address.
    number: int | None = None


@dataclass(frozen=True)
class SourceCursor:
    """How far an IMAP mailbox has been read: its UIDVALIDITY and the last UID seen."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class PersonalCopy:
    """The per-reader parts of one delivery, rendered and stored before anything is sent:
    the personal block (HTML and text, empty when nothing is given back) and the extra
    headers (Reply-To, List-Unsubscribe)."""

    html: str = ""
    text: str = ""
    headers: tuple[tuple[str, str], ...] = ()
