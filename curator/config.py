"""Read and validate feeds.yaml into a :class:`~curator.models.Config`.

Every problem is raised as one :class:`ConfigError` naming the file, the line and the key, before
any network traffic. Unknown keys are errors (they are usually typos) with a did-you-mean.
Secrets are never read from the file: they come from the environment only.

Longer than the ~450 lines a module should keep to, on purpose: it is the one table of what
feeds.yaml may hold (every key, its type, its bounds, its error); split by section, the rules
shared by all sections (unknown keys, line numbers, environment overrides) would be spread out.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from curator.errors import ConfigError
from curator.models import (
    Cadence,
    Config,
    DeliveryConfig,
    DeliveryMethod,
    EmptyWeek,
    FeedConfig,
    FetchConfig,
    ImapConfig,
    ImapTls,
    NewsletterConfig,
    PostmarkConfig,
    Question,
    ReplyConfig,
    Security,
    SmtpConfig,
)
from curator.normalize import host_name

DEFAULT_CONFIG = Path("feeds.yaml")
DEFAULT_STATE = Path(".curator") / "state.db"

# Used when feeds.yaml has no `questions:` at all, so a minimal file still makes an issue.
DEFAULT_QUESTIONS = (
    Question("Are you leading or managing?", ("leadership",)),
    Question(
        "Is there an area of your life you are managing that you need to rise up and lead?",
        ("self-leadership",),
    ),
    Question("How are you going to do it?", ("action",)),
)

T = TypeVar("T")
_NO_TEXTS: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Node:
    """A value in the YAML document with where it stands, for messages."""

    value: Any
    line: int | None
    key: str


class _Reader:
    """Walks the parsed document, keeping file and line for every message."""

    def __init__(self, display_path: str) -> None:
        self.path = display_path

    def fail(self, node: _Node, message: str, hint: str = "") -> ConfigError:
        return ConfigError(message, path=self.path, line=node.line, key=node.key, hint=hint)

    def mapping(self, node: _Node, known: tuple[str, ...]) -> dict[str, _Node]:
        if node.value is None:
            return {}
        if not isinstance(node.value, Mapping):
            raise self.fail(node, f"expected a mapping of keys, got {_kind(node.value)}")
        children: dict[str, _Node] = {}
        for raw_key, value in node.value.items():
            key = str(raw_key)
            child_key = f"{node.key}.{key}" if node.key else key
            line = _key_line(node.value, raw_key, node.line)
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                suggestion = f"; did you mean '{close[0]}'?" if close else ""
                allowed = ", ".join(known)
                raise ConfigError(
                    f"unknown key{suggestion}",
                    path=self.path,
                    line=line,
                    key=child_key,
                    hint=f"known keys here: {allowed}",
                )
            children[key] = _Node(value, _value_line(node.value, raw_key, line), child_key)
        return children

    def sequence(self, node: _Node) -> list[_Node]:
        if node.value is None:
            return []
        if isinstance(node.value, str) or not isinstance(node.value, list):
            raise self.fail(node, f"expected a list, got {_kind(node.value)}")
        items = []
        for index, value in enumerate(node.value):
            line = node.line
            lc = getattr(node.value, "lc", None)
            if lc is not None:
                try:
                    line = lc.item(index)[0] + 1
                except (KeyError, IndexError, TypeError):
                    line = node.line
            items.append(_Node(value, line, f"{node.key}[{index}]"))
        return items

    def string(self, node: _Node, *, allow_empty: bool = False) -> str:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(node, f"expected text, got {_kind(value)}")
        text = str(value).strip()
        if not text and not allow_empty:
            raise self.fail(node, "must not be empty")
        return text

    def single_line(self, node: _Node) -> str:
        text = self.string(node)
        if "\n" in text or "\r" in text:
            raise self.fail(node, "must be a single line (it goes into an email header)")
        return text

    def integer(self, node: _Node, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, f"expected a whole number, got {_show(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and {maximum}" if maximum is not None else ""
            qualifier = f"between {minimum}{upper}" if maximum is not None else f">= {minimum}"
            raise self.fail(node, f"{value} is out of range: must be {qualifier}")
        return value

    def number(self, node: _Node, *, minimum: float = 0.0) -> float:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(node, f"expected a number, got {_show(value)}")
        if value <= minimum:
            raise self.fail(node, f"{value} is out of range: must be more than {minimum:g}")
        return float(value)

    def boolean(self, node: _Node) -> bool:
        if not isinstance(node.value, bool):
            raise self.fail(node, f"expected true or false, got {_show(node.value)}")
        return node.value

    def choice(self, node: _Node, choices: tuple[str, ...]) -> str:
        text = self.string(node)
        if text not in choices:
            close = difflib.get_close_matches(text, choices, n=1, cutoff=0.5)
            suggestion = f"; did you mean '{close[0]}'?" if close else ""
            raise self.fail(node, f"{text!r} is not one of {', '.join(choices)}{suggestion}")
        return text

    def url(self, node: _Node) -> str:
        text = self.string(node)
        problem = url_problem(text)
        if problem:
            guess = likely_url(text)
            if guess:
                raise self.fail(
                    node, f"{text!r} {problem}; did you mean {guess}?", f"write url: {guess}"
                )
            raise self.fail(node, f"{text!r} {problem}", "write the whole address: https://...")
        return text

    def address(self, node: _Node) -> str:
        text = self.single_line(node)
        problem = address_problem(text)
        if problem:
            raise self.fail(node, f"{text!r} {problem}")
        return text


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched as a feed, or None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is the check: a bad port raises ValueError
    except ValueError:
        return "is not a valid URL (check the brackets and the port)"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL"
    if any(ch.isspace() for ch in url):
        return "contains white space"
    return None


def likely_url(text: str) -> str | None:
    """``https://`` + ``text`` when ``text`` reads as an address without its scheme
    (``michaelhyatt.com/feed/``) and that makes a valid URL; else None."""
    text = text.strip()
    if "://" in text or not re.match(r"(?i)[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?(/|$)", text):
        return None
    guess = f"https://{text}"
    return guess if url_problem(guess) is None else None


def split_addresses(raw: str) -> list[str]:
    """The addresses in one written list, split on commas, semicolons and newlines.

    A separator inside a quoted display name (``"Doe, Jane" <j@x.org>``) or inside angle
    brackets does not split. Empty parts are left out; every other part is returned as written,
    so a part that is not an address reaches :func:`address_problem` and is named there.
    """
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    angle = 0
    for char in raw:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            angle += 1
        elif not quoted and char == ">":
            angle = max(0, angle - 1)
        elif not quoted and not angle and char in ",;\n\r":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


# A mailbox as people write it: an addr-spec alone, or an optional display name (a quoted
# string, or words without RFC 5322 specials) and the addr-spec in angle brackets.
_MAILBOX = re.compile(
    r'(?:(?:"(?:[^"\\]|\\.)*"|[^"<>@,;:\\\[\]]*?)\s*<(?P<inner>[^<>]*)>|(?P<bare>[^<>"]*))'
)


_LABELS = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a usable email address (``Name <a@b>`` or ``a@b``), or None.

    The whole text must be one mailbox; its addr-spec is checked by email-validator's syntax
    check (no DNS): no empty, leading, trailing or doubled dots, a domain of valid labels.
    """
    if "\n" in address or "\r" in address:
        return "must be a single line"
    match = _MAILBOX.fullmatch(address.strip())
    if match is None:
        return "is not an email address (write one address, or Name <address>)"
    addr = (match["inner"] if match["inner"] is not None else match["bare"] or "").strip()
    if not addr.isascii():
        # Sending to such an address needs SMTPUTF8, which curator does not speak; refusing it
        # here beats a delivery that fails after the issue is frozen.
        return "is not a plain ASCII address (write the domain in its xn-- form)"
    return _addr_spec_problem(addr)


def _addr_spec_problem(addr: str) -> str | None:
    from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        return "is not an email address"
    if any(
        domain.lower() == d or domain.lower().endswith(f".{d}") for d in SPECIAL_USE_DOMAIN_NAMES
    ):
        # Syntax only: a reserved name (localhost, .test) is a fine address on a private
        # network, so only its labels are checked and the local part with a neutral domain.
        if not re.fullmatch(
            r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*", domain
        ):
            return "is not an email address (the part after the @ is not a domain name)"
        addr = f"{local}@example.org"
    try:
        validate_email(
            addr, check_deliverability=False, allow_smtputf8=False, globally_deliverable=False
        )
    except EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        return f"is not an email address ({reason[:1].lower()}{reason[1:]})"
    return None


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _show(value)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _key_line(mapping: Any, key: Any, fallback: int | None) -> int | None:
    lc = getattr(mapping, "lc", None)
    if lc is None:
        return fallback
    try:
        return int(lc.key(key)[0]) + 1
    except (KeyError, IndexError, TypeError):
        return fallback


def _value_line(mapping: Any, key: Any, fallback: int | None) -> int | None:
    lc = getattr(mapping, "lc", None)
    if lc is None:
        return fallback
    try:
        return int(lc.value(key)[0]) + 1
    except (KeyError, IndexError, TypeError):
        return fallback


def _optional(children: dict[str, _Node], key: str, convert: Callable[[_Node], T], default: T) -> T:
    node = children.get(key)
    if node is None or node.value is None:
        return default
    return convert(node)


# ---------------------------------------------------------------- sections

_TOP_KEYS = (
    "newsletter",
    "delivery",
    "fetch",
    "feeds",
    "questions",
    "templates",
    "archive",
    "replies",
)
_NEWSLETTER_KEYS = (
    "title",
    "from",
    "to",
    "cadence",
    "timezone",
    "lookback_days",
    "max_posts",
    "max_posts_per_feed",
    "empty_week",
    "subject",
    "unsubscribe",
    "reading_minutes",
    "language",
    "intro",
)
_DELIVERY_KEYS = ("method", "outbox_dir", "smtp", "postmark")
_SMTP_KEYS = ("host", "port", "security", "username", "timeout")
_POSTMARK_KEYS = ("message_stream", "endpoint")
_FETCH_KEYS = (
    "concurrency",
    "per_host",
    "connect_timeout",
    "timeout",
    "max_bytes",
    "max_redirects",
    "retries",
)
_FEED_KEYS = ("name", "url", "tags", "enabled", "max_posts")
_QUESTION_KEYS = ("text", "themes")
_ARCHIVE_KEYS = ("enabled", "dir", "url")
_REPLIES_KEYS = ("address", "maildir", "imap", "postmark_inbound")
_IMAP_KEYS = ("host", "port", "tls", "username", "folder", "delete", "timeout")
# The token takes "+" and 34 characters; RFC 5321 allows 64 in a local part.
MAX_REPLY_LOCAL = 64 - 1 - 34
_SECRET_KEYS = ("password", "token", "api_key", "secret")


def _whole(r: _Reader, low: int, high: int | None = None) -> Callable[[_Node], int]:
    return lambda node: r.integer(node, minimum=low, maximum=high)


def _pick(r: _Reader, *choices: str) -> Callable[[_Node], str]:
    return lambda node: r.choice(node, choices)


def _newsletter(r: _Reader, node: _Node, env: Mapping[str, str]) -> NewsletterConfig:
    c = r.mapping(node, _NEWSLETTER_KEYS)
    d = NewsletterConfig()
    to = _optional(c, "to", lambda n: _recipients(r, n), d.to)
    if env.get("CURATOR_TO", "").strip():
        to = recipients_from_text([env["CURATOR_TO"]], "CURATOR_TO")
    cadence = _optional(c, "cadence", _pick(r, "weekly", "daily", "monthly"), "weekly")
    empty_week = _optional(c, "empty_week", _pick(r, "skip", "question", "archive"), "skip")
    return NewsletterConfig(
        title=_optional(c, "title", r.single_line, d.title),
        from_addr=_optional(c, "from", r.address, d.from_addr),
        to=to,
        cadence=cast(Cadence, cadence),
        timezone=_optional(c, "timezone", lambda n: _timezone(r, n), d.timezone),
        lookback_days=_optional(c, "lookback_days", _whole(r, 1, 366), d.lookback_days),
        max_posts=_optional(c, "max_posts", _whole(r, 1, 200), d.max_posts),
        max_posts_per_feed=_optional(
            c, "max_posts_per_feed", _whole(r, 1, 200), d.max_posts_per_feed
        ),
        empty_week=cast(EmptyWeek, empty_week),
        subject=_optional(c, "subject", r.single_line, d.subject),
        unsubscribe=_optional(c, "unsubscribe", lambda n: _unsubscribe(r, n), d.unsubscribe),
        reading_minutes=_optional(c, "reading_minutes", _whole(r, 1, 600), None),
        language=_optional(c, "language", r.single_line, d.language),
        intro=_optional(c, "intro", lambda n: r.string(n, allow_empty=True), d.intro),
    )


def _recipients(r: _Reader, node: _Node) -> tuple[str, ...]:
    items = (
        [_Node(node.value, node.line, node.key)]
        if isinstance(node.value, str)
        else r.sequence(node)
    )
    addresses: list[str] = []
    for item in items:
        for part in split_addresses(r.string(item)):
            problem = address_problem(part)
            if problem:
                raise r.fail(item, f"{part!r} {problem}")
            addresses.append(part)
    return tuple(dict.fromkeys(addresses))


def recipients_from_text(values: Sequence[str], key: str) -> tuple[str, ...]:
    """Every address in ``values`` (CURATOR_TO, --to), split and checked; the first bad part
    is a :class:`ConfigError` naming ``key``."""
    addresses: list[str] = []
    for value in values:
        for part in split_addresses(value):
            problem = address_problem(part)
            if problem:
                raise ConfigError(f"{part!r} {problem}", key=key)
            addresses.append(part)
    return tuple(dict.fromkeys(addresses))


def _timezone(r: _Reader, node: _Node) -> str:
    name = r.string(node)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise r.fail(
            node, f"{name!r} is not an IANA time zone (for example Europe/London)"
        ) from exc
    return name


def _unsubscribe(r: _Reader, node: _Node) -> str:
    text = r.single_line(node)
    if text.startswith("mailto:") and "@" in text:
        return text
    if url_problem(text) is None:
        return text
    raise r.fail(node, f"{text!r} is not an http(s) URL or a mailto: address")


def _delivery(r: _Reader, node: _Node, env: Mapping[str, str], base: Path) -> DeliveryConfig:
    c = r.mapping(node, _DELIVERY_KEYS)
    method = _optional(c, "method", _pick(r, "outbox", "smtp", "postmark"), "outbox")
    outbox = _optional(c, "outbox_dir", lambda n: Path(r.string(n)), Path("outbox"))
    smtp = c.get("smtp", _Node(None, None, "delivery.smtp"))
    postmark = c.get("postmark", _Node(None, None, "delivery.postmark"))
    return DeliveryConfig(
        method=cast(DeliveryMethod, method),
        outbox_dir=base / outbox,
        smtp=_smtp(r, smtp, env),
        postmark=_postmark(r, postmark, env),
    )


def _refuse_secrets(r: _Reader, node: _Node, env_name: str) -> None:
    if isinstance(node.value, Mapping):
        for key in node.value:
            if str(key).lower() in _SECRET_KEYS:
                line = _key_line(node.value, key, node.line)
                raise ConfigError(
                    "secrets never live in feeds.yaml",
                    path=r.path,
                    line=line,
                    key=f"{node.key}.{key}",
                    hint=f"remove it and set the environment variable {env_name} instead",
                )


def _smtp(r: _Reader, node: _Node, env: Mapping[str, str]) -> SmtpConfig:
    _refuse_secrets(r, node, "CURATOR_SMTP_PASSWORD")
    c = r.mapping(node, _SMTP_KEYS)
    d = SmtpConfig()
    security = _optional(
        c, "security", lambda n: r.choice(n, ("starttls", "ssl", "none")), "starttls"
    )
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
    return SmtpConfig(
        host=_optional(c, "host", r.single_line, d.host),
        port=_optional(c, "port", _whole(r, 1, 65535), default_port),
        security=cast(Security, security),
        username=_optional(c, "username", r.single_line, None),
        password=env.get("CURATOR_SMTP_PASSWORD") or None,
        timeout=_optional(c, "timeout", r.number, d.timeout),
    )


def _postmark(r: _Reader, node: _Node, env: Mapping[str, str]) -> PostmarkConfig:
    _refuse_secrets(r, node, "CURATOR_POSTMARK_TOKEN")
    c = r.mapping(node, _POSTMARK_KEYS)
    d = PostmarkConfig()
    return PostmarkConfig(
        token=env.get("CURATOR_POSTMARK_TOKEN") or None,
        message_stream=_optional(c, "message_stream", r.single_line, d.message_stream),
        endpoint=_optional(c, "endpoint", lambda n: _postmark_endpoint(r, n, env), d.endpoint),
    )


POSTMARK_ANY_HOST = "CURATOR_POSTMARK_ANY_HOST"


def _postmark_endpoint(r: _Reader, node: _Node, env: Mapping[str, str]) -> str:
    """An https URL on a postmarkapp.com host: the server token travels with every call, so a
    feeds.yaml edit must not be able to send it elsewhere without the operator's say-so."""
    url = _https(r, node)
    host = (urlsplit(url).hostname or "").lower()
    if host == "postmarkapp.com" or host.endswith(".postmarkapp.com"):
        return url
    if env.get(POSTMARK_ANY_HOST) == "1":
        return url
    raise r.fail(
        node,
        f"{url!r} is not a postmarkapp.com address, and the server token would be sent to it",
        hint=f"to send the token to this host on purpose (a proxy you run), set "
        f"{POSTMARK_ANY_HOST}=1",
    )


def _https(r: _Reader, node: _Node) -> str:
    url = r.url(node)
    if not url.lower().startswith("https://"):
        raise r.fail(node, f"{url!r} must be https: the API token travels with every call")
    return url


def _fetch(r: _Reader, node: _Node) -> FetchConfig:
    c = r.mapping(node, _FETCH_KEYS)
    d = FetchConfig()
    return FetchConfig(
        concurrency=_optional(c, "concurrency", _whole(r, 1, 256), d.concurrency),
        per_host=_optional(c, "per_host", _whole(r, 1, 64), d.per_host),
        connect_timeout=_optional(c, "connect_timeout", r.number, d.connect_timeout),
        timeout=_optional(c, "timeout", r.number, d.timeout),
        max_bytes=_optional(c, "max_bytes", _whole(r, 1024), d.max_bytes),
        max_redirects=_optional(c, "max_redirects", _whole(r, 0, 20), d.max_redirects),
        retries=_optional(c, "retries", _whole(r, 0, 10), d.retries),
    )


def _texts(r: _Reader) -> Callable[[_Node], tuple[str, ...]]:
    return lambda node: tuple(r.string(item) for item in r.sequence(node))


def _feeds(r: _Reader, node: _Node) -> tuple[FeedConfig, ...]:
    items = r.sequence(node)
    if not items:
        raise r.fail(
            node, "lists no feeds", hint="add at least one: - {name: ..., url: https://...}"
        )
    feeds: list[FeedConfig] = []
    seen: dict[str, str] = {}
    names: set[str] = set()
    for item in items:
        if isinstance(item.value, str):
            url = r.url(item)
            feed = FeedConfig(name=host_name(url), url=url, named=False)
        else:
            c = r.mapping(item, _FEED_KEYS)
            if "url" not in c:
                raise r.fail(item, "has no url", hint="every feed needs `url: https://...`")
            url = r.url(c["url"])
            name = _optional(c, "name", r.single_line, None)
            if name is not None and name in names:
                raise r.fail(
                    c["name"],
                    f"{name!r} names another feed too",
                    hint="give each feed its own name: `feeds remove NAME` relies on it",
                )
            feed = FeedConfig(
                name=name or host_name(url),
                url=url,
                tags=_optional(c, "tags", _texts(r), _NO_TEXTS),
                enabled=_optional(c, "enabled", r.boolean, True),
                max_posts=_optional(c, "max_posts", _whole(r, 1), None),
                named=name is not None,
            )
        if feed.url in seen:
            raise r.fail(item, f"{feed.url!r} is listed twice (also as {seen[feed.url]!r})")
        seen[feed.url] = feed.name
        if feed.named:
            names.add(feed.name)
        feeds.append(feed)
    return tuple(feeds)


def _questions(r: _Reader, node: _Node) -> tuple[Question, ...]:
    questions: list[Question] = []
    seen: set[str] = set()
    for item in r.sequence(node):
        if isinstance(item.value, str):
            question = Question(r.single_line(item))
        else:
            c = r.mapping(item, _QUESTION_KEYS)
            if "text" not in c:
                raise r.fail(
                    item, "has no text", hint="write a string, or {text: ..., themes: [...]}"
                )
            themes = _optional(c, "themes", _texts(r), _NO_TEXTS)
            question = Question(r.single_line(c["text"]), tuple(t.lower() for t in themes))
        if question.text in seen:
            raise r.fail(item, f"{question.text!r} is listed twice")
        seen.add(question.text)
        questions.append(question)
    return tuple(questions)


def _archive(r: _Reader, node: _Node, base: Path) -> Path | None:
    c = r.mapping(node, _ARCHIVE_KEYS)
    if not _optional(c, "enabled", r.boolean, True):
        return None
    return base / _optional(c, "dir", lambda n: Path(r.string(n)), Path("archive"))


def _archive_url(r: _Reader, node: _Node) -> str | None:
    """Where the archive folder is published, ending in "/" so page names join onto it."""
    c = r.mapping(node, _ARCHIVE_KEYS)
    if "url" not in c:
        return None
    url = r.string(c["url"]).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(ch.isspace() for ch in url):
        raise r.fail(
            c["url"], f"{url!r} is not an http(s) URL", hint="e.g. https://you.github.io/digest/"
        )
    return url if url.endswith("/") else url + "/"


def _replies(r: _Reader, node: _Node, env: Mapping[str, str], base: Path) -> ReplyConfig:
    c = r.mapping(node, _REPLIES_KEYS)
    if "address" not in c:
        raise r.fail(
            node,
            "has no address",
            hint="replies need `address: reflect@example.org`, the mailbox readers reply to",
        )
    address = _reply_address(r, c["address"])
    folder = lambda n: base / r.string(n)  # noqa: E731 - a one-line converter
    imap = c.get("imap")
    return ReplyConfig(
        address=address,
        maildir=_optional(c, "maildir", folder, None),
        imap=_imap(r, imap, env) if imap is not None and imap.value is not None else None,
        postmark_inbound=_optional(c, "postmark_inbound", folder, None),
    )


def _reply_address(r: _Reader, node: _Node) -> str:
    text = r.address(node)
    addr = parseaddr(text)[1]
    local = addr.rsplit("@", 1)[0]
    if addr != text:
        raise r.fail(node, f"{text!r} must be a bare address (local@domain), without a name")
    if "+" in local:
        raise r.fail(node, f"{text!r} must not hold a '+': curator adds +TOKEN itself")
    if len(local) > MAX_REPLY_LOCAL:
        raise r.fail(
            node,
            f"{text!r} has a local part longer than {MAX_REPLY_LOCAL} characters",
            hint="the +TOKEN must still fit the 64-character limit of a local part",
        )
    return addr


def _imap(r: _Reader, node: _Node, env: Mapping[str, str]) -> ImapConfig:
    _refuse_secrets(r, node, "CURATOR_IMAP_PASSWORD")
    c = r.mapping(node, _IMAP_KEYS)
    if "host" not in c:
        raise r.fail(node, "has no host", hint="for example `host: imap.example.org`")
    host = r.single_line(c["host"])
    tls = _optional(c, "tls", _pick(r, "implicit", "starttls", "none"), "implicit")
    if tls == "none" and not is_loopback(host):
        raise r.fail(
            c["tls"],
            f"`none` would send the password in clear text to {host!r}",
            hint="use `tls: implicit` (port 993) or `tls: starttls`; `none` is only for a "
            "server on this machine (localhost, 127.0.0.1, ::1)",
        )
    default_port = {"implicit": 993, "starttls": 143, "none": 143}[tls]
    return ImapConfig(
        host=host,
        port=_optional(c, "port", _whole(r, 1, 65535), default_port),
        tls=cast(ImapTls, tls),
        username=_optional(c, "username", r.single_line, None),
        password=env.get("CURATOR_IMAP_PASSWORD") or None,
        folder=_optional(c, "folder", r.single_line, "INBOX"),
        delete=_optional(c, "delete", r.boolean, False),
        timeout=_optional(c, "timeout", r.number, 30.0),
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- entry points


def load_config(
    path: Path,
    *,
    env: Mapping[str, str] | None = None,
    state_path: Path | None = None,
) -> Config:
    """Read ``path`` and return a validated Config, or raise ConfigError naming file:line: key."""
    env = os.environ if env is None else env
    display = str(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no such file (looked for {path.resolve()})",
            path=display,
            hint="write one (see README), start one with `curator feeds add URL`, "
            "or pass --config PATH",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", path=display) from exc
    try:
        return _build(path, parse_yaml(raw, display, lines=False), env, state_path)
    except ConfigError:
        # The fast reader keeps no line numbers: read again, slowly, to say where it is wrong.
        return _build(path, parse_yaml(raw, display), env, state_path)


def _build(path: Path, document: Any, env: Mapping[str, str], state_path: Path | None) -> Config:
    display = str(path)
    r = _Reader(display)
    top = r.mapping(_Node(document, 1, ""), _TOP_KEYS)
    if "feeds" not in top:
        raise ConfigError("the `feeds:` list is missing", path=display, line=1, key="feeds")
    base = path.parent
    templates = _optional(top, "templates", lambda n: base / r.string(n), None)
    if templates is not None and not templates.is_dir():
        raise r.fail(top["templates"], f"{str(templates)!r} is not a folder")
    if state_path is None:
        state_path = (
            Path(env["CURATOR_STATE"]) if env.get("CURATOR_STATE") else base / DEFAULT_STATE
        )
    questions = _questions(r, top["questions"]) if "questions" in top else DEFAULT_QUESTIONS
    return Config(
        path=path,
        feeds=_feeds(r, top["feeds"]),
        newsletter=_newsletter(r, top.get("newsletter", _Node(None, None, "newsletter")), env),
        delivery=_delivery(r, top.get("delivery", _Node(None, None, "delivery")), env, base),
        fetch=_fetch(r, top.get("fetch", _Node(None, None, "fetch"))),
        questions=questions,
        state_path=state_path,
        templates_dir=templates,
        archive_dir=_archive(r, top.get("archive", _Node(None, None, "archive")), base),
        archive_url=_archive_url(r, top.get("archive", _Node(None, None, "archive"))),
        replies=(
            _replies(r, top["replies"], env, base)
            if "replies" in top and top["replies"].value is not None
            else None
        ),
    )


# Deeper than any real feeds.yaml (which nests four or five levels), far below what makes the
# C loader's recursion overflow the stack.
MAX_NESTING = 64

# What the YAML parser says, in plain words, with what to do. First match wins; {line} is the
# line reported, {context} the line where the unclosed thing began.
_YAML_PROBLEMS: tuple[tuple[str, str, str], ...] = (
    (
        r"'\\t'|\\t|cannot start any token",
        "a tab character: YAML indents with spaces only",
        "replace the tabs at the start of line {line} with spaces",
    ),
    (
        r"expected <block end>|did not find expected key|did not find expected '-'",
        "this line is not indented like the lines above it",
        "indent the keys of one mapping, and the '-' items of one list, by the same number "
        "of spaces",
    ),
    (
        r"mapping values are not allowed",
        "a ':' where none may be: a key indented too far, or a value that holds ': '",
        'line the key up with the one above it, or quote the value: title: "Lead: now"',
    ),
    (
        r"end of stream|found unexpected end",
        "a quoted text is never closed",
        "close the quote that opens on line {context}",
    ),
    (
        r"expected ',' or|did not find expected ','",
        "a [ ] or { } list is not closed, or misses a comma",
        "check the brackets and commas from line {context} on",
    ),
    (
        r"duplicate key",
        "a key is given twice in the same mapping",
        "keep one of them",
    ),
)


def _plain_yaml_error(problem: str, line: int | None, context: int | None) -> tuple[str, str]:
    for pattern, words, hint in _YAML_PROBLEMS:
        if re.search(pattern, problem):
            return words, hint.format(line=line or "?", context=context or line or "?")
    return (
        f"invalid YAML ({problem})",
        "check the indentation (spaces only) and the quoting on that line: a value holding "
        "': ' or ' #' needs quotes",
    )


def _too_deep(text: str, limit: int) -> int | None:
    """The first line where the document nests deeper than ``limit``, by a cheap scan made
    before any parser sees the text: block indentation levels, plus '- ' items opened on one
    line, plus open brackets. It over-counts rather than under (a bracket inside a multi-line
    quoted text counts), which only matters to a file nested absurdly deep anyway."""
    indents: list[int] = []
    flow = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        dashes = 0
        if flow == 0:
            indent = len(line) - len(stripped)
            while indents and indents[-1] >= indent:
                indents.pop()
            indents.append(indent)
            items = re.match(r"(?:-[ \t]+)+", stripped)
            dashes = items.group(0).count("-") if items else 0
        if flow or "[" in stripped or "{" in stripped:
            quote = ""
            for i, ch in enumerate(stripped):
                if quote:
                    quote = "" if ch == quote else quote
                elif ch == "#" and i and stripped[i - 1] in " \t":
                    break
                elif ch in "'\"" and (i == 0 or stripped[i - 1] in " \t[{,:"):
                    quote = ch
                elif ch in "[{":
                    flow += 1
                    if len(indents) + dashes + flow > limit:
                        return number
                elif ch in "]}":
                    flow = max(0, flow - 1)
        if len(indents) + dashes + flow > limit:
            return number
    return None


def _refuse_shared_nodes(document: Any, text: str, display: str) -> None:
    """Refuse a list or mapping that appears twice: a YAML alias (``*name``). The loader
    shares one object for every use, so loading is cheap, but anything that walks the result
    (a message, a re-write) meets every copy: nine lines of nested aliases stand for a billion
    values. The walk visits each distinct list and mapping once, so it is bounded by the size
    of the file."""
    seen: set[int] = set()
    stack = [document]
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping | list):
            continue
        if id(node) in seen:
            alias = re.search(r"(?m)(?:^|[\s\[{,:])\*[^\s,\[\]{}]+", text)
            line = text.count("\n", 0, alias.start()) + 1 if alias else None
            raise ConfigError(
                "YAML aliases (*name) of a list or mapping are not allowed",
                path=display,
                line=line,
                hint="write the list or mapping out in full where it is used",
            )
        seen.add(id(node))
        stack.extend(node.values() if isinstance(node, Mapping) else node)


def parse_yaml(text: str, display: str, *, lines: bool = True) -> Any:
    """Parse YAML; syntax errors become ConfigError with the line, in plain words.

    ``lines`` keeps every node's line number (ruamel's round-trip reader) for messages;
    without it, the C-accelerated safe reader is about ten times faster. Before either reads
    the text, its nesting depth is bounded (:data:`MAX_NESTING`): the C reader recurses once
    per level and a deep enough file overflows its stack. After reading, aliased lists and
    mappings are refused (see :func:`_refuse_shared_nodes`)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    deepest = _too_deep(text, MAX_NESTING)
    if deepest is not None:
        raise ConfigError(
            f"nested more than {MAX_NESTING} levels deep",
            path=display,
            line=deepest,
            hint="feeds.yaml needs a few levels at most: check the indentation and brackets",
        )
    yaml = YAML(typ="rt" if lines else "safe")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        context = exc.context_mark.line + 1 if exc.context_mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        words, hint = _plain_yaml_error(problem, line, context)
        raise ConfigError(words, path=display, line=line, hint=hint) from exc
    except YAMLError as exc:
        words, hint = _plain_yaml_error(str(exc), None, None)
        raise ConfigError(words, path=display, hint=hint) from exc
    except RecursionError as exc:  # a nesting the scan above did not see; never a crash
        raise ConfigError(
            "nested too deeply", path=display, hint="check the indentation and brackets"
        ) from exc
    if document is None:
        raise ConfigError(
            "the file is empty",
            path=display,
            line=1,
            key="feeds",
            hint="list your feeds under `feeds:`, or run `curator init` for a ready file",
        )
    if not isinstance(document, Mapping):
        raise ConfigError(
            "expected a mapping with a `feeds:` list",
            path=display,
            line=1,
            hint="start the file with `feeds:` and a list of `- url: https://...` under it",
        )
    _refuse_shared_nodes(document, text, display)
    return document


def parse_now(value: str, *, source: str = "--now", timezone: str = "UTC") -> datetime:
    """Parse the contract's clock override: ISO 8601 with Z or an offset, or a date alone.

    A date alone is midnight in ``timezone`` (the newsletter's), so it falls in that day's
    period whatever the zone."""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            local = datetime.combine(date.fromisoformat(text), time(0, 0), ZoneInfo(timezone))
            return local.astimezone(UTC)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"{value!r} is not an ISO 8601 time with Z or an offset, nor a date",
            key=source,
            hint="for example 2026-11-30T08:00:00Z or 2026-11-30",
        )
    return moment.astimezone(UTC)


def resolve_config_path(option: Path | None, env: Mapping[str, str]) -> Path:
    """The config path from --config, then CURATOR_CONFIG, then ./feeds.yaml."""
    if option is not None:
        return option
    if env.get("CURATOR_CONFIG"):
        return Path(env["CURATOR_CONFIG"])
    return DEFAULT_CONFIG
