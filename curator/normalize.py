"""Pure functions that make feed text comparable and safe: URLs, identities, plain text.

No I/O and no third-party imports: every function here is tested with tables of inputs and
outputs (tests/test_normalize.py).
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

# Query parameters that only track the reader; dropping them makes one story one URL.
_TRACKING_PREFIXES = ("utm_", "mc_", "_hs", "pk_", "mtm_")
_TRACKING_NAMES = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "ref", "ref_src", "source",
        "_ga", "_gl", "oly_anon_id", "oly_enc_id", "vero_id", "wickedid", "rss", "cmpid",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Control characters and line/paragraph separators become a space in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# Invisible format characters are removed: soft hyphens, zero-width space, byte-order marks
# and the bidirectional overrides that can make a subject line read backwards. Zero-width
# (non-)joiners stay: Persian, Indic scripts and emoji sequences need them.
_INVISIBLE = re.compile(
    r"[\xad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_SPACE = re.compile(r"\s+")
_SKIP_TAGS = frozenset(
    {
        "script", "style", "noscript", "iframe", "object", "embed", "template", "svg", "math",
        "head", "title", "form", "select", "textarea", "button",
    }
)  # fmt: skip
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
        "pre", "tr", "td", "th", "table", "section", "article", "header", "footer", "figure",
        "figcaption", "hr", "dd", "dt",
    }
)  # fmt: skip
_TRAILERS = (
    re.compile(r"\s*The post .{1,300}? appeared first on .{1,200}?\.?\s*$", re.S),
    re.compile(r"\s*(\[(…|\.\.\.|&hellip;)\]|Continue reading.{0,80}|Read more.{0,40})\s*$", re.I),
)


def safe_http_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` made absolute against ``base``, or None unless it is a plain http(s) URL."""
    if not url:
        return None
    url = _INVISIBLE.sub("", _CONTROL.sub("", url)).strip()
    if base:
        try:
            url = urljoin(base, url)
        except ValueError:
            return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(ch.isspace() for ch in url) or '"' in url or "<" in url or ">" in url:
        return None
    return url


def canonical_url(url: str | None) -> str | None:
    """The URL a person would call the same page: lower-case scheme and host, default port,
    tracking parameters and fragment dropped. Scheme and path are kept, so it still works.

    The query is filtered piece by piece and the kept pieces are left byte for byte as they
    were, because re-encoding (``%20`` to ``+``, ``?flag`` to ``?flag=``) can break a link.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    query = "&".join(piece for piece in parts.query.split("&") if piece and not _is_tracking(piece))
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def _is_tracking(piece: str) -> bool:
    name = unquote_plus(piece.partition("=")[0]).lower()
    return name.startswith(_TRACKING_PREFIXES) or name in _TRACKING_NAMES


def url_identity(url: str | None) -> str | None:
    """A key equal for the same page reached over http or https, with or without ``www.``,
    with or without a trailing slash, with or without tracking parameters."""
    canon = canonical_url(url)
    if canon is None:
        return None
    parts = urlsplit(canon)
    host = parts.netloc.removeprefix("www.")
    path = parts.path.rstrip("/") or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"


def host_name(url: str) -> str:
    """The host of ``url``, or the URL itself when it has none: a name for an unnamed source."""
    return urlsplit(url).hostname or url


def entry_key(guid: str | None, link: str | None, title: str, published_iso: str | None) -> str:
    """A stable identity for an entry: its guid, else its link, else a hash of title and date.

    URL-shaped guids go through :func:`url_identity`, so a feed that moves to https or adds
    tracking parameters to its ids does not make old posts look new. The fragment is kept:
    single-page feeds (changelogs, link blogs) tell their posts apart by it alone.
    """
    for candidate in (guid, link):
        if candidate and candidate.strip():
            value = candidate.strip()
            ident = url_identity(value) if re.match(r"(?i)https?://", value) else None
            if ident is None:
                return f"id:{value[:500]}"
            fragment = urlsplit(value).fragment if "#" in value else ""
            return f"url:{ident}#{fragment}" if fragment else f"url:{ident}"
    digest = hashlib.sha256(f"{title}\x00{published_iso or ''}".encode()).hexdigest()[:32]
    return f"hash:{digest}"


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS or (tag == "img" and not self.skipping):
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS or tag == "img":
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def plain_text(markup: str | None) -> str:
    """Text a person would read from an HTML fragment: tags removed, entities decoded,
    script and style dropped, control characters removed, white space collapsed."""
    if not markup:
        return ""
    if "<" in markup or "&" in markup:
        parser = _TextExtractor()
        try:
            parser.feed(markup)
            parser.close()
            text = "".join(parser.parts)
        except (AssertionError, ValueError):
            text = re.sub(r"<[^>]*>", " ", markup)
    else:
        text = markup
    text = unicodedata.normalize("NFC", _INVISIBLE.sub("", _CONTROL.sub(" ", text)))
    return _SPACE.sub(" ", text).strip()


def clean_title(raw: str | None, fallback: str = "(untitled)", *, markup: bool = True) -> str:
    """A title as one plain line, at most 300 characters.

    ``markup`` says whether ``raw`` is HTML (tags removed, entities decoded) or already plain
    text, as an Atom ``type="text"`` title is: there ``Why <table> is slow`` is the title
    itself, and stripping "tags" from it would lose words.
    """
    text = plain_text(raw) if markup else _plain_line(raw)
    if len(text) > 300:
        text = cut_text(text, 300)
    return text or fallback


def _plain_line(raw: str | None) -> str:
    if not raw:
        return ""
    text = unicodedata.normalize("NFC", _INVISIBLE.sub("", _CONTROL.sub(" ", raw)))
    return _SPACE.sub(" ", text).strip()


def single_line(raw: str | None, limit: int = 200) -> str:
    """Plain, single-line text for a name or author, at most ``limit`` characters."""
    text = plain_text(raw)
    return cut_text(text, limit) if len(text) > limit else text


def strip_trailers(text: str) -> str:
    """Drop the boilerplate feeds add at the end of summaries ("Continue reading", [...])."""
    for pattern in _TRAILERS:
        text = pattern.sub("", text)
    return text.strip()


def cut_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a sentence end if one is near,
    else at a word boundary, with an ellipsis when anything was cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    # One character past the limit lets the lookahead see the space after a final full stop.
    ends = [m.end() for m in _SENTENCE_END.finditer(text[: limit + 1]) if m.end() <= limit]
    if ends and ends[-1] >= limit * 0.6:
        return text[: ends[-1]]
    window = text[: limit - 1]
    space = window.rfind(" ")
    if space >= limit * 0.5:
        window = window[:space]
    return window.rstrip(" ,;:-–—") + "…"


# A sentence ends at . ! ? followed by a space (or the end of the window), or at the CJK
# full stops, which are not followed by spaces.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?(?=\s)|[。！？]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def word_count(text: str) -> int:
    """Words in ``text``; Chinese, Japanese and Korean characters count as half a word each,
    which keeps reading time honest for scripts written without spaces."""
    cjk = len(_CJK.findall(text))
    if not cjk:
        return len(text.split())
    latin = len(_CJK.sub(" ", text).split())
    return latin + (cjk + 1) // 2


def author_name(raw: str | None) -> str | None:
    """A person's name from an author field: ``ann@x.org (Ann Lee)`` gives ``Ann Lee``; a bare
    address gives None, because an email address is not a byline worth mailing around."""
    text = single_line(raw, 120)
    match = re.fullmatch(r"\S+@\S+\s*\((.+)\)", text)
    if match:
        text = match.group(1).strip()
    if not text or re.fullmatch(r"\S+@\S+\.\S+", text):
        return None
    return text


def title_key(title: str) -> str:
    """A title folded for matching the same story under two feeds: case, accents, punctuation."""
    folded = unicodedata.normalize("NFKD", title.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return " ".join(re.findall(r"\w+", folded))


_IMG_SRC = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["']?([^"'\s>]+)""", re.I)


def first_image(markup: str | None, base: str | None) -> str | None:
    """The first ``<img src>`` in an HTML fragment, absolute and http(s), or None."""
    if not markup:
        return None
    for match in _IMG_SRC.finditer(markup):
        # The attribute is still HTML: ``&amp;`` in a query string is a plain ``&``.
        url = safe_http_url(html.unescape(match.group(1)), base)
        # Tracking pixels and feed-flare images are not pictures worth showing.
        if url and not re.search(r"(?i)(feedburner|pixel|stats\.wordpress|gravatar|1x1)", url):
            return url
    return None
