"""Edit feeds.yaml the way a careful person would: change only what must change.

Every edit goes through ruamel.yaml's round-trip mode (comments, key order and quoting are kept),
but ruamel re-indents and re-spaces lines it did not need to touch (``key:   value`` becomes
``key: value``, ``[a,b]`` becomes ``[a, b]``). So an edit is made on the round-trip document, the
document is dumped before and after, and only the lines that differ between those two dumps are
carried into the user's own text; every other line stays byte for byte as the user wrote it.
The result is parsed again and must equal the edited document; if it does not (an exotic layout
defeated the line matching), ruamel's whole dump is used instead, which still keeps every
comment, and the caller is told the file was re-indented.

Writes are atomic (a temporary file in the same folder, then a rename), are refused when the file
changed since it was read, and happen only when the new text passes :func:`load_config`.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.config import load_config, parse_yaml
from curator.errors import ConfigError, SourcesError
from curator.files import atomic_write
from curator.models import Config, FeedConfig
from curator.normalize import host_name

# What a new feeds.yaml starts as when `feeds add` or `feeds import` creates it.
NEW_FILE = "# Sources for curator; see `curator feeds --help`.\nfeeds:\n"


@dataclass(frozen=True)
class FeedsFile:
    """feeds.yaml as read: its text and a digest to notice a change before writing."""

    path: Path
    text: str
    digest: str | None  # None when the file did not exist

    @property
    def display(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class Edited:
    """The text after an edit; ``reformatted`` when untouched lines could not all be kept."""

    text: str
    reformatted: bool = False


@dataclass(frozen=True)
class Listed:
    """A feed as it stands in the file, by position in the ``feeds:`` list."""

    index: int
    name: str
    url: str
    named: bool = True  # False: the file gives no name; ``name`` is the host


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_feeds_file(path: Path) -> FeedsFile:
    """Read feeds.yaml (a missing file reads as empty, so `add` and `import` can create it)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return FeedsFile(path, "", None)
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror or exc}", path=str(path)) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text: {exc.reason}", path=str(path)) from exc
    return FeedsFile(path, text, _digest(data))


# ---------------------------------------------------------------- reading the document


def _yaml(text: str) -> Any:
    """A round-trip YAML instance whose indentation follows the file's own feeds list."""
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user kept on one line
    mapping, offset, sequence = 2, 2, 4  # the contract's own layout: "  - name: ..."
    try:
        _, guessed, _ = load_yaml_guess_indent(text)
    except Exception:  # a guess only; the real parse reports errors properly
        guessed = None
    if isinstance(guessed, int) and guessed > 0:
        mapping = guessed
    match = re.search(r"(?m)^feeds:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*([ \t]*)-([ \t]+)\S", text)
    if match:
        offset = len(match.group(1))
        sequence = offset + 1 + len(match.group(2))
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _load(text: str, display: str) -> tuple[Any, Any]:
    parse_yaml(text or "feeds:\n", display)  # raises ConfigError with file:line on bad YAML
    yaml = _yaml(text)
    return yaml, yaml.load(text or NEW_FILE)


def _dump(yaml: Any, document: Any) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _feeds_seq(document: Any, display: str, *, create: bool = False) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    feeds = document.get("feeds")
    if feeds is None and create:
        feeds = CommentedSeq()
        document["feeds"] = feeds
    if not isinstance(feeds, list):
        raise ConfigError("expected a list of feeds", path=display, key="feeds")
    return feeds


def listed_feeds(text: str, display: str) -> list[Listed]:
    """The feeds the file lists, leniently (an entry without a URL is left out)."""
    if not text.strip():
        return []
    _, document = _load(text, display)
    feeds = document.get("feeds") or []
    listed: list[Listed] = []
    for index, item in enumerate(feeds if isinstance(feeds, list) else []):
        if isinstance(item, str):
            listed.append(Listed(index, host_name(item), item, named=False))
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            url = item["url"].strip()
            name = item.get("name")
            listed.append(
                Listed(index, str(name).strip() if name else host_name(url), url, named=bool(name))
            )
    return listed


# ---------------------------------------------------------------- edits


def _feed_node(feed: FeedConfig) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    node = CommentedMap()
    node["name"] = feed.name
    node["url"] = feed.url
    if feed.tags:
        tags = CommentedSeq(feed.tags)
        tags.fa.set_flow_style()
        node["tags"] = tags
    if not feed.enabled:
        node["enabled"] = False
    if feed.max_posts is not None:
        node["max_posts"] = feed.max_posts
    return node


def add_feeds(text: str, display: str, feeds: Sequence[FeedConfig]) -> Edited:
    """Append ``feeds`` at the end of the ``feeds:`` list."""

    def mutate(document: Any) -> None:
        seq = _feeds_seq(document, display, create=True)
        if not seq:
            seq.fa.set_block_style()  # `feeds: []` grows into a block list, one feed a line
        for feed in feeds:
            seq.append(_feed_node(feed))

    return _edit(text or NEW_FILE, display, mutate)


def remove_feed(text: str, display: str, index: int) -> Edited:
    """Delete the feed at ``index`` of the ``feeds:`` list."""

    def mutate(document: Any) -> None:
        del _feeds_seq(document, display)[index]

    return _edit(text, display, mutate)


def set_feed_url(text: str, display: str, index: int, url: str) -> Edited:
    """Point the feed at ``index`` to ``url``, in the quoting style its old URL used."""

    def mutate(document: Any) -> None:
        seq = _feeds_seq(document, display)
        item = seq[index]
        if isinstance(item, str):
            seq[index] = type(item)(url) if type(item) is not str else url
        else:
            old = item["url"]
            item["url"] = type(old)(url) if type(old) is not str else url

    return _edit(text, display, mutate)


def _edit(text: str, display: str, mutate: Callable[[Any], None]) -> Edited:
    yaml, document = _load(text, display)
    before = _dump(yaml, document)
    mutate(document)
    after = _dump(yaml, document)
    merged = merge_edit(text, before, after)
    try:
        same = _plain(yaml.load(merged)) == _plain(document)
    except Exception:  # any failure to read the merge means: use ruamel's dump
        same = False
    if same:
        return Edited(merged)
    return Edited(_with_newlines(after, _newline(text)), reformatted=True)


def _plain(node: Any) -> Any:
    """A round-trip node as plain dicts, lists and scalars, for comparing two documents."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _with_newlines(text: str, newline: str) -> str:
    return text if newline == "\n" else text.replace("\r\n", "\n").replace("\n", newline)


def _key(line: str) -> str:
    return re.sub(r"\s+", "", line)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _reindent(line: str, dumped: str, mine: str) -> str:
    """``line`` shifted by the difference between the user's indentation and ruamel's."""
    shift = _indent(mine) - _indent(dumped)
    if shift > 0:
        return " " * shift + line
    if shift < 0 and _indent(line) >= -shift:
        return line[-shift:]
    return line


def merge_edit(original: str, before: str, after: str) -> str:
    """Carry the change from ``before`` to ``after`` (two dumps of one document) into
    ``original`` (the user's text that ``before`` re-formats), keeping every other line.

    Lines of ``original`` are matched to ``before`` ignoring white space; a block of lines
    that the edit did not reach is copied from ``original``, a block it did is taken from
    ``after``. A comment or blank line the edit dropped is kept: ruamel ties the comment above
    an item to the item before it, and curator never deletes a comment.
    """
    newline = _newline(original)
    a = original.splitlines(keepends=True)
    if a and not a[-1].endswith(("\n", "\r")):
        a[-1] += newline
    b = before.splitlines(keepends=True)
    c = after.splitlines(keepends=True)

    matcher = difflib.SequenceMatcher(None, [_key(x) for x in a], [_key(x) for x in b], False)
    aligned = matcher.get_opcodes()
    a_of_b = {}
    for tag, a1, _, b1, b2 in aligned:
        if tag == "equal":
            a_of_b.update({b1 + k: a1 + k for k in range(b2 - b1)})

    keep = [False] * len(b)
    inserted: list[list[str]] = [[] for _ in range(len(b) + 1)]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, b, c, autojunk=False).get_opcodes():
        if tag == "equal":
            for i in range(i1, i2):
                keep[i] = True
        elif tag == "replace" and i2 - i1 == j2 - j1:
            # A changed line keeps the indentation the user gave the line it replaces.
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                inserted[i1].append(_reindent(c[j], b[i], a[a_of_b[i]] if i in a_of_b else b[i]))
        else:
            inserted[i1].extend(c[j1:j2])
    new_comments = {line.strip() for line in c if line.strip().startswith("#")}

    out: list[str] = []
    for tag, a1, a2, b1, b2 in aligned:
        one_to_one = tag == "equal"
        if b1 == b2:
            # Lines of the user's text the dump leaves out (a `---` marker): keep them; what
            # is inserted at b1 is written by the block that starts there.
            out.extend(a[a1:a2])
            continue
        out.extend(inserted[b1])
        if all(keep[b1:b2]) and not any(inserted[b1 + 1 : b2]):
            out.extend(a[a1:a2])
            continue
        for offset, i in enumerate(range(b1, b2)):
            if offset:
                out.extend(inserted[i])
            mine = a[a1 + offset] if one_to_one else b[i]
            if (
                keep[i]
                or not b[i].strip()
                or (b[i].strip().startswith("#") and b[i].strip() not in new_comments)
            ):
                out.append(mine)
    out.extend(inserted[len(b)])
    return "".join(_with_newlines(line, newline) for line in out)


# ---------------------------------------------------------------- validating and writing


def check_text(text: str, path: Path) -> Config:
    """``text`` as feeds.yaml at ``path`` would load, or the ConfigError it would raise
    (naming ``path``, not the temporary file it was checked in)."""
    folder = path.parent if str(path.parent) else Path()
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=folder)
        temp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        raise SourcesError(
            f"cannot write beside {path} to check the edit: {exc.strerror or exc}",
            hint="check that the folder of feeds.yaml is writable",
        ) from exc
    try:
        return _load_as(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _load_as(temp: Path, path: Path) -> Config:
    try:
        config = load_config(temp, env={})
    except ConfigError as exc:
        raise ConfigError(exc.message.replace(str(temp), str(path)), hint=exc.hint) from exc
    from dataclasses import replace

    return replace(config, path=path)


def write_feeds_file(original: FeedsFile, text: str) -> Config:
    """Replace feeds.yaml with ``text`` atomically, only if it still holds what was read and
    ``text`` passes load_config; return the new config."""
    path = original.path
    loaded: list[Config] = []

    def check(temp: Path) -> None:
        try:
            loaded.append(_load_as(temp, path))
        except ConfigError as exc:
            raise SourcesError(
                f"the edit would leave {path} invalid, so nothing was written: {exc.message}"
            ) from exc
        try:
            current: str | None = _digest(path.read_bytes())
            os.chmod(temp, stat.S_IMODE(path.stat().st_mode))
        except FileNotFoundError:
            current = None
        if current != original.digest:
            raise SourcesError(
                f"{path} changed while curator was editing it; nothing was written",
                hint="run the command again",
            )

    try:
        atomic_write(path, text.encode("utf-8"), before_replace=check)
    except OSError as exc:
        raise SourcesError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check that the file and its folder are writable",
        ) from exc
    return loaded[0]
