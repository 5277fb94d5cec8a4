"""Editing feeds.yaml keeps the user's file: comments, spacing, quoting, order, every line the
edit did not need to touch; writes are atomic and refused when the file changed meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CliResult, FeedServer, Item, Route, rss, run_cli, utc, write_config
from curator import sources
from curator.config import load_config
from curator.errors import SourcesError
from curator.models import FeedConfig

# Comments everywhere, odd spacing, three quoting styles, a flow item, a folded question.
MESSY = """\
# curator config, written by hand — keep this header
newsletter:
    title:   "Lead, Don't Just Manage"     # odd spacing, 4-space indent
    from: 'Lead Weekly <digest@example.org>'
    to: [you@example.org,  me@example.org]

# the sources
feeds:
  # Ron first
  - name: Ron Edmondson
    url: {ron}     # main
    tags: [leadership,church]

  # Mike second: moved house once
  - name:    "Michael Hyatt"
    url: '{mike}'
  -   name: Page
      url: {page}
  # Seth, one line
  - {{name: Seth,  url: "{seth}"}}
  # end of feeds

questions:
  - Are you leading or managing?   # q1
  - text: >
      Is there an area of your life you are managing that you need to rise up and lead?
    themes: [self-leadership]
"""


def messy(
    ron: str = "https://ron.example/feed/",
    mike: str = "https://mike.example/feed/",
    page: str = "https://page.example/",
    seth: str = "https://seth.example/feed/",
) -> str:
    return MESSY.format(ron=ron, mike=mike, page=page, seth=seth)


def comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


def removed_and_added(before: str, after: str) -> tuple[list[str], list[str]]:
    """Lines only in ``before`` and lines only in ``after`` (as multisets, in order)."""
    import difflib

    gone, new = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, before.splitlines(), after.splitlines(), autojunk=False
    ).get_opcodes():
        if tag != "equal":
            gone += before.splitlines()[i1:i2]
            new += after.splitlines()[j1:j2]
    return gone, new


def run(config: Path, *args: str) -> CliResult:
    return run_cli(config, "feeds", *args)


def test_messy_file_is_valid_to_begin_with(tmp_path: Path) -> None:
    """The fixture itself passes load_config, so the tests below start from a real config."""
    assert len(load_config(write_config(tmp_path, messy())).feeds) == 4


def test_add_appends_lines_and_touches_nothing_else(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`feeds add` adds the new item's lines before the trailing comment; every other line
    is byte for byte what the user wrote."""
    url = feed_server.add("/feed/", rss([Item("x", "https://n.example/x", None)], title="New & Co"))
    before = messy()
    config = write_config(tmp_path, before)

    code, _, err = run(config, "add", url, "--tag", "a b")

    assert code == 0, err
    after = config.read_text()
    gone, new = removed_and_added(before, after)
    assert gone == []
    assert new == ["  - name: New & Co", f"    url: {url}", "    tags: [a b]"]
    assert after.index("New & Co") < after.index("# end of feeds")
    assert comments(after) == comments(before)


@pytest.mark.parametrize(
    ("key", "lines"),
    [
        ("Ron Edmondson", ["  - name: Ron Edmondson",
                           "    url: https://ron.example/feed/     # main",
                           "    tags: [leadership,church]"]),
        ("michael hyatt", ['  - name:    "Michael Hyatt"', "    url: 'https://mike.example/feed/'"]),
        ("https://page.example", ["  -   name: Page", "      url: https://page.example/"]),
        ("Seth", ['  - {name: Seth,  url: "https://seth.example/feed/"}']),
    ],
)  # fmt: skip
def test_remove_deletes_only_the_item_s_own_lines(
    tmp_path: Path, key: str, lines: list[str]
) -> None:
    """`feeds remove` by name (any case) or URL drops that item's lines and nothing else:
    comments above and below it stay, and so do blank lines."""
    before = messy()
    config = write_config(tmp_path, before)

    code, _out, err = run(config, "remove", key)

    assert code == 0, err
    after = config.read_text()
    gone, new = removed_and_added(before, after)
    assert (gone, new) == (lines, [])
    lost = [c for c in comments(before) if c not in comments(after)]
    assert lost == ([" main"] if "Ron" in key else [])  # the removed item's own inline comment
    assert len(load_config(config).feeds) == 3


def test_remove_an_unknown_feed_suggests_the_closest_name(tmp_path: Path) -> None:
    """A name not listed: exit 1 with a did-you-mean; the file is untouched."""
    config = write_config(tmp_path, messy())

    code, _, err = run(config, "remove", "Ron Edmonson")

    assert code == 1
    assert "did you mean 'Ron Edmondson'?" in err
    assert config.read_text() == messy()


def test_check_fix_changes_only_the_moved_and_discovered_urls(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`feeds check --fix` rewrites the url of a moved feed (keeping its quotes) and of a page
    whose feed was discovered, inside a flow mapping too; no other line changes."""
    fresh = rss([Item("Now", "https://x.example/now", utc("2026-11-20T10:00"))], title="T")
    feed_server.add("/ron.xml", fresh)
    feed_server.add("/mike-old.xml", Route(status=301, headers={"Location": "/mike.xml"}))
    feed_server.add("/mike.xml", fresh)
    feed_server.add(
        "/page/",
        Route(
            b'<html><head><link rel="alternate" type="application/atom+xml" href="atom"></head>',
            content_type="text/html",
        ),
    )
    feed_server.add("/page/atom", fresh)
    feed_server.add("/seth-old", Route(status=308, headers={"Location": "/seth.xml"}))
    feed_server.add("/seth.xml", fresh)
    u = feed_server.url
    before = messy(u("/ron.xml"), u("/mike-old.xml"), u("/page/"), u("/seth-old"))
    config = write_config(tmp_path, before)

    code, out, err = run(config, "check", "--fix", "--now", "2026-11-26T08:00:00Z")

    assert code == 0, out + err
    after = config.read_text()
    gone, new = removed_and_added(before, after)
    assert gone == [f"    url: '{u('/mike-old.xml')}'", f"      url: {u('/page/')}",
                    f'  - {{name: Seth,  url: "{u("/seth-old")}"}}']  # fmt: skip
    assert new == [f"    url: '{u('/mike.xml')}'", f"      url: {u('/page/atom')}",
                   f'  - {{name: Seth, url: "{u("/seth.xml")}"}}']  # fmt: skip
    assert comments(after) == comments(before)
    assert "fixed 'Page'" in err  # the report's lines are notes: stderr off a terminal


def test_merge_keeps_crlf_line_endings() -> None:
    """A Windows file stays a Windows file after an edit."""
    text = "feeds:\r\n  - name: A  # a\r\n    url: https://a.example/\r\n"
    edited = sources.add_feeds(text, "f", [FeedConfig("B", "https://b.example/")])
    assert not edited.reformatted
    assert edited.text.startswith(text)
    assert edited.text.count("\r\n") == edited.text.count("\n") == 5


def test_add_to_an_empty_flow_list_makes_a_block_list() -> None:
    """`feeds: []` grows into one feed a line."""
    edited = sources.add_feeds("# mine\nfeeds: []\n", "f", [FeedConfig("B", "https://b.example/")])
    assert edited.text == "# mine\nfeeds:\n  - name: B\n    url: https://b.example/\n"


def test_plain_url_items_can_be_changed_and_removed() -> None:
    """A feed written as a bare URL string is edited in place."""
    text = "feeds:\n  - https://a.example/feed   # bare\n  - https://b.example/feed\n"
    changed = sources.set_feed_url(text, "f", 0, "https://a.example/rss")
    assert (
        changed.text == "feeds:\n  - https://a.example/rss    # bare\n  - https://b.example/feed\n"
    )
    removed = sources.remove_feed(text, "f", 1)
    assert removed.text == "feeds:\n  - https://a.example/feed   # bare\n"


@pytest.mark.parametrize(
    ("meanwhile", "text", "refusal"),
    [
        ("# edited meanwhile\n", None, "changed while curator was editing it"),
        ("", "feeds:\n  - url: htp://x\n", r"would leave .* invalid.*feeds\[0\]"),
    ],
    ids=["changed-since-read", "would-not-load"],
)
def test_a_refused_write_leaves_the_file_and_no_temporary(
    tmp_path: Path, meanwhile: str, text: str | None, refusal: str
) -> None:
    """Someone saved feeds.yaml between read and write, or the edit would not load: nothing
    is written and no temporary file is left."""
    config = write_config(tmp_path, messy())
    original = sources.read_feeds_file(config)
    edited = text if text is not None else sources.remove_feed(original.text, str(config), 0).text
    config.write_text(messy() + meanwhile, encoding="utf-8")

    with pytest.raises(SourcesError, match=refusal):
        sources.write_feeds_file(original, edited)

    assert config.read_text() == messy() + meanwhile
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feeds.yaml"]


def test_a_folder_that_cannot_be_written_is_a_sources_error(tmp_path: Path) -> None:
    """When the temporary file cannot be made beside feeds.yaml (here its folder is gone),
    the write fails as one SourcesError from the OSError, not a traceback."""
    original = sources.read_feeds_file(tmp_path / "gone" / "feeds.yaml")
    with pytest.raises(SourcesError, match="cannot write") as caught:
        sources.write_feeds_file(original, messy())
    assert isinstance(caught.value.__cause__, OSError)


def test_write_keeps_the_file_mode(tmp_path: Path) -> None:
    """The atomic rename does not widen a private feeds.yaml's permissions."""
    config = write_config(tmp_path, messy())
    config.chmod(0o600)
    original = sources.read_feeds_file(config)
    sources.write_feeds_file(original, sources.remove_feed(original.text, "f", 0).text)
    assert config.stat().st_mode & 0o777 == 0o600
