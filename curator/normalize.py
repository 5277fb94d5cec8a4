"""Pure functions that make feed text comparable and safe: URLs, identities, plain text.

No I/O and no third-party imports: every function here is tested with tables of inputs and
outputs (tests/test_normalize.py).

Longer than the ~450 lines a module should keep to, on purpose: choosing a picture, ending an
excerpt and reading a duration share one vocabulary (entities, tags, widths, sentence ends);
split apart, each would import half of the others.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
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
# Characters XML 1.0 forbids (lone surrogates, U+FFFE, U+FFFF): one in a title would make the
# archive's feed.xml invalid, so they go wherever text is cleaned.
_NOT_XML = re.compile(r"[\ud800-\udfff\ufffe\uffff]")
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
# WordPress marks a cut summary with "[...]" (or the entity, escaped once too often).
_CUT_MARK = re.compile(r"\s*\[\s*(?:…|\.\.\.|&hellip;|&#8230;|&#x2026;)\s*\]\s*", re.I)
# A sentence boundary a trailer must start at: the start of the text, or just after a
# sentence end or an ellipsis.
_AFTER_SENTENCE = r"(?:^|(?<=[.!?…。！？:»\]\)]))\s*"
# Trailers, each only as the last whole sentence: "Check 'em out by clicking the read more
# link!" keeps its words because "read more" does not start a sentence there.
_TRAILERS = (
    re.compile(_AFTER_SENTENCE + r"The post .{1,300}? appeared first on .{1,200}?\.?\s*$", re.S),
    re.compile(
        _AFTER_SENTENCE
        + r"(?:continue reading|read more|keep reading|read the (?:full|whole|rest of the) "
        r"(?:post|article|story|piece)|read on)"
        # What a trailer link may add: a quoted title, or where ("at Ann's blog").
        r"(?:\s*[:\-–—]?\s*(?:[\"“][^\"”]{1,200}[\"”]|(?:at|on)\s+[^.!?]{1,80}))?"
        r"[\s.!?»→›…:]*$",
        re.I | re.S,
    ),
    # A link's own words often follow the text without punctuation: "... the team Continue
    # reading →". Only the capitalized phrase, followed by nothing but arrows or a quoted
    # title, counts here.
    re.compile(
        r"\s+(?:Continue reading|Read [Mm]ore|Keep reading)(?:\s*[\"“][^\"”]{1,200}[\"”])?"
        r"[\s»→›…:.]*$"
    ),
)
# An excerpt that ends with one of these was not cut in the middle of a sentence.
_ENDS_WHOLE = re.compile(r"[.!?…。！？][\"'”’)\]»]*$")


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
    text = unicodedata.normalize(
        "NFC", _NOT_XML.sub("", _INVISIBLE.sub("", _CONTROL.sub(" ", text)))
    )
    return _SPACE.sub(" ", text).strip()


# Markup left in a title after one decoding: a tag opened and closed again
# (``<p>Title</p>``) or a CDATA wrapper. "Why <table> is slow" and "Use </div> wisely" are
# not markup pairs and keep their words.
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_LEFT_MARKUP = re.compile(r"<!\[CDATA\[|<([a-z][a-z0-9]*)\b[^>]*>.*?</\1\s*>", re.I | re.S)


def clean_title(raw: str | None, fallback: str = "(untitled)", *, markup: bool = True) -> str:
    """A title as one plain line, at most 300 characters.

    ``markup`` says whether ``raw`` is HTML (tags removed, entities decoded) or already plain
    text, as an Atom ``type="text"`` title is: there ``Why <table> is slow`` is the title
    itself, and stripping "tags" from it would lose words.
    """
    if markup and raw and "<![CDATA[" in raw:
        # A CDATA section that survived the XML parser (nested, or in HTML) is its text.
        raw = _CDATA.sub(r"\1", raw)
    text = plain_text(raw) if markup else _plain_line(raw)
    # Feeds that escape their HTML twice (``<![CDATA[&lt;p&gt;Title&lt;/p&gt;]]>``) leave
    # tags in the text after one decoding; a title is plain text, so decode once more.
    if markup and _LEFT_MARKUP.search(text):
        text = plain_text(text.replace("<![CDATA[", "").replace("]]>", ""))
    if len(text) > 300:
        text = cut_text(text, 300)
    return text or fallback


def _plain_line(raw: str | None) -> str:
    if not raw:
        return ""
    text = unicodedata.normalize(
        "NFC", _NOT_XML.sub("", _INVISIBLE.sub("", _CONTROL.sub(" ", raw)))
    )
    return _SPACE.sub(" ", text).strip()


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (control characters, U+FFFE/FFFF)."""
    return _NOT_XML.sub("", re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text))


def single_line(raw: str | None, limit: int = 200) -> str:
    """Plain, single-line text for a name or author, at most ``limit`` characters."""
    text = plain_text(raw)
    return cut_text(text, limit) if len(text) > limit else text


def strip_trailers(text: str) -> str:
    """Drop the boilerplate feeds add at the end of summaries, as whole sentences only.

    "Continue reading", "Read more" and "The post X appeared first on Y" go when they are
    the last sentence; WordPress's "[...]" becomes "…", since the summary was cut there.
    """
    text = _CUT_MARK.sub("… ", text).strip()
    while True:
        before = text
        for pattern in _TRAILERS:
            text = pattern.sub("", text).rstrip()
        if text == before:
            break
    # "[...] Continue reading" leaves "… …"; one ellipsis says it.
    text = re.sub(r"(?:\s*…)+$", "…", text)
    # A cut right after a whole sentence needs no ellipsis: the excerpt ends well there.
    text = re.sub(r"([.!?。！？][\"'”’)]*)\s*…$", r"\1", text)
    return re.sub(r"\s*…\s+(?=…)", "", text).strip()


def excerpt_text(text: str, limit: int, title: str = "") -> str:
    """The excerpt a reader sees: trailers gone, the title not repeated, at most ``limit``
    characters, ending at a sentence end or with "…" where it was cut."""
    text = strip_trailers(text)
    if title:
        # Tumblr and some microblogs repeat the title as the first words of the text.
        folded = title_key(title)
        if folded and title_key(text) == folded:
            return ""
        if folded and title_key(text[: len(title) + 3]) == folded:
            text = text[len(title) :].lstrip(" :.-–—|")
    text = cut_text(text, limit)
    if text and not _ENDS_WHOLE.search(text):
        text = text.rstrip(" ,;:-–—") + "…"
    return text


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


# ---------------------------------------------------------------- pictures and durations

_IMG_TAG = re.compile(r"<img\b[^>]*>", re.I)
_ATTR = re.compile(r"""([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
# Pictures that are not worth a reader's eye: emoji and smilies, spacers, tracking pixels,
# share buttons, avatars, feed flare.
_JUNK_IMAGE = re.compile(
    r"(?i)(/smilies/|/emoji/|s\.w\.org/images/core/emoji|wp-includes/images|spacer|blank\.gif"
    r"|transparent\.(gif|png)|pixel|1x1|tracking|/track/|/open\.(gif|png)|beacon|feedburner"
    r"|feedflare|stats\.wordpress|gravatar\.com|doubleclick|/ads?/|badge|share[-_]?button"
    r"|/icons?/|favicon)"
)
# A file that is surely no picture, by its extension (podcast enclosures, documents).
_NOT_IMAGE_FILE = re.compile(
    r"(?i)\.(mp3|m4a|m4b|aac|ogg|oga|opus|wav|flac|mp4|m4v|mov|webm|mkv|avi|pdf|zip|epub|txt)"
    r"(?:$|[?#/])"
)
# Size hints a URL carries: ?w=100&h=70, ?resize=640,480, WordPress's -150x150.jpg,
# Substack/Cloudinary's w_1456.
_URL_WIDTH = re.compile(r"(?i)[?&](?:w|width|resize|fit)=(\d{1,5})(?:(?:%2C|,)(\d{1,5}))?")
_URL_HEIGHT = re.compile(r"(?i)[?&](?:h|height)=(\d{1,5})")
_URL_SUFFIX = re.compile(r"-(\d{2,5})x(\d{2,5})\.(?:jpe?g|png|gif|webp)(?:$|\?)", re.I)
_URL_TRANSFORM = re.compile(r"[/,]w_(\d{2,5})[,/]")
# Smaller than this on either side it is an icon, not a picture.
MIN_IMAGE_SIDE = 48


@dataclass(frozen=True)
class ImageCandidate:
    """A picture a feed offers for a post, with what the feed says about it.

    ``declared`` is true for pictures the feed names as the post's (media:thumbnail,
    media:content, itunes:image, an image enclosure); false for an ``<img>`` in the text.
    """

    url: str
    mime: str | None = None
    medium: str | None = None
    width: int | None = None
    height: int | None = None
    declared: bool = True
    # Lower comes first among declared pictures: post's own pictures before a show's cover.
    rank: int = 0


@dataclass(frozen=True)
class Picture:
    url: str
    width: int | None
    height: int | None


def parse_size(value: object) -> int | None:
    """A width or height attribute (``"528"``, ``"528px"``) as pixels, or None."""
    return _int(value)


def _int(value: object) -> int | None:
    try:
        number = int(str(value).strip().removesuffix("px"))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 100_000 else None


def size_from_url(url: str) -> tuple[int | None, int | None]:
    """The width and height a URL asks its image server for, when it says."""
    match = _URL_SUFFIX.search(url)
    if match:
        return int(match.group(1)), int(match.group(2))
    width = height = None
    match = _URL_WIDTH.search(url)
    if match:
        width = int(match.group(1))
        height = int(match.group(2)) if match.group(2) else None
    else:
        match = _URL_TRANSFORM.search(url)
        width = int(match.group(1)) if match else None
    if height is None:
        match = _URL_HEIGHT.search(url)
        height = int(match.group(1)) if match else None
    return width or None, height or None


def image_candidates(markup: str | None, base: str | None) -> list[ImageCandidate]:
    """Every ``<img>`` in an HTML fragment, in order, with the size its attributes give."""
    found: list[ImageCandidate] = []
    for tag in _IMG_TAG.findall(markup or ""):
        attrs = {
            m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
            for m in _ATTR.finditer(tag)
        }
        src = attrs.get("src") or attrs.get("data-src") or ""
        url = safe_http_url(src, base)
        if url:
            found.append(
                ImageCandidate(
                    url,
                    width=_int(attrs.get("width")),
                    height=_int(attrs.get("height")),
                    declared=False,
                )
            )
    return found


def _acceptable(candidate: ImageCandidate) -> Picture | None:
    """The candidate as a picture worth showing, with its best known size, or None."""
    url = candidate.url
    if candidate.mime and not candidate.mime.lower().startswith("image/"):
        return None
    if candidate.medium and candidate.medium.lower() != "image":
        return None
    if _NOT_IMAGE_FILE.search(urlsplit(url).path) or _JUNK_IMAGE.search(url):
        return None
    hinted_width, hinted_height = size_from_url(url)
    width = candidate.width or hinted_width
    height = candidate.height or hinted_height
    if (width and width < MIN_IMAGE_SIDE) or (height and height < MIN_IMAGE_SIDE):
        return None
    return Picture(url, width, height)


def choose_picture(candidates: Sequence[ImageCandidate]) -> Picture | None:
    """The picture to show for a post, or None: no picture is better than a bad one.

    Only image types, never an audio or video file; no emoji, smilies, spacers or tracking
    pixels; nothing smaller than an icon. Declared pictures come before an ``<img>`` from the
    text; among declared ones of the same rank the widest known wins.
    """
    declared = [(c, p) for c in candidates if c.declared if (p := _acceptable(c))]
    if declared:
        best_rank = min(c.rank for c, _ in declared)
        same_rank = [p for c, p in declared if c.rank == best_rank]
        # An unknown width counts as a middling one: neither preferred nor passed over.
        return max(same_rank, key=lambda p: p.width or 600)
    for candidate in candidates:
        if not candidate.declared:
            picture = _acceptable(candidate)
            if picture:
                return picture
    return None


def first_image(markup: str | None, base: str | None) -> str | None:
    """The first picture worth showing among the ``<img>`` of an HTML fragment, or None."""
    picture = choose_picture(image_candidates(markup, base))
    return picture.url if picture else None


_CLOCK = re.compile(r"^(?:(\d{1,3}):)?(\d{1,4}):(\d{1,2})(?:[.,]\d+)?$")


def parse_duration(raw: object) -> int | None:
    """Seconds from an ``itunes:duration`` or media duration: ``HH:MM:SS``, ``MM:SS`` or
    seconds (``2715``, ``2715.5``). None when it is missing, zero or not a duration."""
    if raw is None:
        return None
    text = str(raw).strip()
    seconds: float
    match = _CLOCK.match(text)
    if match:
        hours = int(match.group(1) or 0)
        seconds = hours * 3600 + int(match.group(2)) * 60 + int(match.group(3))
    else:
        try:
            seconds = float(text)
        except ValueError:
            return None
    # Longer than a week is a byte count or a typo, not an episode.
    if not 0 < seconds < 7 * 24 * 3600:
        return None
    return round(seconds)


def mailbox_key(address: str) -> str:
    """What makes two spellings one mailbox: ``Ann <A@x.org>`` and `` a@x.org`` are one (the
    bare address, trimmed, lower case). Used wherever recipients are compared or counted."""
    from email.utils import parseaddr

    return (parseaddr(address)[1] or address).strip().lower()
