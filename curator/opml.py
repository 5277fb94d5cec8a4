"""Read and write OPML subscription lists. Pure: bytes in, values out; no network.

Reading is protected against entity attacks with the standard library alone: the expat parser
is driven directly with handlers that refuse any entity declaration (internal, so no "billion
laughs"; external or unparsed, so no file or URL is ever read) and any external entity
reference, and parameter entities are never parsed. This is what defusedxml does for
ElementTree, in a dozen lines, without a dependency whose last release was years ago.

Real exports are often not well-formed (a raw ``&`` or even markup inside an attribute). When
strict parsing fails for such a reason, and only then, the file is read again with the
standard library's forgiving HTML tokenizer, which never expands entities declared by the
document; an outline whose markup is damaged is skipped and listed, never guessed.

Nested outlines are flattened: the outlines around a feed (its folders) become its tags, as do
the paths in an OPML 2.0 ``category`` attribute.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from html.parser import HTMLParser
from typing import Any
from xml.parsers import expat

from curator import normalize as nz
from curator.config import url_problem
from curator.errors import ParseError
from curator.models import FeedConfig

OPML_DOCS = "http://opml.org/spec2.opml"
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][\w.:-]*\Z")


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription as the file lists it."""

    name: str
    url: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """An outline that is not imported, and why."""

    label: str
    reason: str


@dataclass(frozen=True)
class OpmlDocument:
    """What an OPML file lists: usable feeds, outlines skipped, and whether it was repaired."""

    title: str
    feeds: tuple[OpmlFeed, ...]
    skipped: tuple[Skipped, ...] = ()
    repaired: str | None = None  # why strict parsing failed, when the forgiving reader was used


class EntityRefused(ParseError):
    """The file declares or references an XML entity; curator refuses it outright."""


@dataclass
class _Outline:
    attrs: dict[str, str]
    children: list[_Outline] = field(default_factory=list)
    damaged: bool = False


# ---------------------------------------------------------------- strict reading (expat)


def _refuse(what: str) -> Any:
    def handler(*_: object) -> Any:
        raise EntityRefused(
            f"the file {what}; curator refuses XML entities (they are how entity-expansion "
            "and external-entity attacks work)"
        )

    return handler


def _strict(data: bytes) -> tuple[str, list[_Outline]]:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = _refuse("declares an entity")
    parser.UnparsedEntityDeclHandler = _refuse("declares an unparsed entity")
    parser.ExternalEntityRefHandler = _refuse("refers to an external entity")
    roots: list[_Outline] = []
    stack: list[_Outline] = []
    path: list[str] = []
    title: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        path.append(tag)
        if tag == "outline":
            node = _Outline({k.lower(): v for k, v in attrs.items()})
            (stack[-1].children if stack else roots).append(node)
            stack.append(node)

    def end(tag: str) -> None:
        path.pop()
        if tag == "outline":
            stack.pop()

    def text(data: str) -> None:
        if path[-2:] == ["head", "title"]:
            title.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ParseError(
            f"not well-formed XML at line {exc.lineno}, column {exc.offset + 1}: "
            f"{expat.ErrorString(exc.code)}"
        ) from exc
    return "".join(title).strip(), roots


# ---------------------------------------------------------------- forgiving reading


class _Forgiving(HTMLParser):
    """Outlines from markup that is not XML. html.parser knows no DTDs: ``&name;`` that the
    document declares stays literal text, so nothing can expand."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.roots: list[_Outline] = []
        self.stack: list[_Outline] = []
        self.in_title = False
        self.title: list[str] = []

    def _outline(self, attrs: list[tuple[str, str | None]]) -> _Outline:
        values = {name.lower(): value or "" for name, value in attrs}
        # A quote inside an attribute value splits it into nonsense attribute names.
        damaged = any(not _ATTRIBUTE_NAME.match(name) for name in values)
        node = _Outline(values, damaged=damaged)
        (self.stack[-1].children if self.stack else self.roots).append(node)
        return node

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "outline":
            node = self._outline(attrs)
            # A damaged tag lost its "/>", so it cannot be trusted to hold children.
            if not node.damaged:
                self.stack.append(node)
        self.in_title = tag == "title" and not self.roots

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "outline":
            self._outline(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "outline" and self.stack:
            self.stack.pop()
        if tag == "title":
            self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)


def _forgiving(text: str) -> tuple[str, list[_Outline]]:
    reader = _Forgiving()
    reader.feed(text)
    reader.close()
    return "".join(reader.title).strip(), reader.roots


# ---------------------------------------------------------------- flattening


def _label(attrs: dict[str, str]) -> str:
    return nz.single_line(attrs.get("title") or attrs.get("text") or "", 200)


def _categories(value: str) -> list[str]:
    """Tags from an OPML 2.0 ``category`` attribute: comma-separated paths, each one tag
    without its leading slash (``/Tech/Python`` is the tag ``Tech/Python``)."""
    return [tag for path in value.split(",") if (tag := nz.single_line(path.strip().strip("/")))]


def _flatten(
    nodes: list[_Outline],
    folders: tuple[str, ...],
    feeds: list[OpmlFeed],
    skipped: list[Skipped],
) -> None:
    for node in nodes:
        attrs = node.attrs
        label = _label(attrs)
        raw_url = (attrs.get("xmlurl") or "").strip()
        if node.damaged and not raw_url:
            skipped.append(Skipped(label or "(untitled)", "its markup is damaged"))
            continue
        if not raw_url:
            if node.children:
                folder = (label,) if label else ()
                _flatten(node.children, folders + folder, feeds, skipped)
            else:
                skipped.append(Skipped(label or "(untitled)", "it has no feed URL (xmlUrl)"))
            continue
        problem = url_problem(raw_url)
        if problem:
            skipped.append(Skipped(label or raw_url, f"its URL {raw_url!r} {problem}"))
            continue
        tags = [*folders, *_categories(attrs.get("category", ""))]
        name = label or nz.single_line(attrs.get("text"), 200) or nz.host_name(raw_url)
        feeds.append(OpmlFeed(name, raw_url, tuple(dict.fromkeys(t for t in tags if t))))
        if node.children:
            _flatten(node.children, folders, feeds, skipped)


def parse_opml(data: bytes) -> OpmlDocument:
    """The feeds an OPML file lists. Raises ParseError when it is not OPML or declares
    entities (:class:`EntityRefused`)."""
    repaired = None
    try:
        title, roots = _strict(data)
    except EntityRefused:
        raise
    except ParseError as exc:
        head = data[:4096].lower()
        if b"<opml" not in head:
            raise ParseError(f"not an OPML file: {exc}") from exc
        if b"<!entity" in data.lower():
            raise EntityRefused(
                "the file declares an entity; curator refuses XML entities"
            ) from exc
        repaired = str(exc)
        title, roots = _forgiving(data.decode("utf-8", errors="replace"))
    feeds: list[OpmlFeed] = []
    skipped: list[Skipped] = []
    _flatten(roots, (), feeds, skipped)
    if not feeds and not skipped:
        raise ParseError("the file lists no outlines with a feed URL")
    return OpmlDocument(title, tuple(feeds), tuple(skipped), repaired)


# ---------------------------------------------------------------- writing


def render_opml(
    feeds: list[FeedConfig] | tuple[FeedConfig, ...], title: str, now: datetime
) -> bytes:
    """An OPML 2.0 document: feeds grouped in a folder per first tag (how readers show
    folders), every tag also in ``category`` so none is lost on the way back in."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    ET.SubElement(head, "docs").text = OPML_DOCS
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent = body
        if feed.tags:
            first = feed.tags[0]
            if first not in folders:
                folders[first] = ET.SubElement(body, "outline", text=first, title=first)
            parent = folders[first]
        outline = ET.SubElement(
            parent, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url
        )
        if feed.tags:
            outline.set("category", ",".join(f"/{tag.replace(',', ' ')}" for tag in feed.tags))
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"
