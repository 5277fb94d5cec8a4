"""OPML in and out: real exports from the corpus, hand-made edge cases, entity attacks refused,
and export then import giving back the same feeds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import CliResult, corpus_dir, run_cli, utc, write_config
from curator.config import load_config
from curator.errors import ParseError
from curator.models import FeedConfig
from curator.opml import EntityRefused, parse_opml, render_opml

OPML = Path(__file__).parent / "data" / "opml"
START = "# my list\nfeeds:\n  - name: Existing\n    url: https://existing.example/feed/\n"


def run(config: Path, *args: str) -> CliResult:
    return run_cli(config, "feeds", *args)


def opml(body: str, head: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>{head}<opml version="2.0"><head><title>T</title></head>'
        f"<body>{body}</body></opml>"
    ).encode()


def test_nested_outlines_are_flattened_with_their_folders_as_tags() -> None:
    """Folders at any depth become tags, in order, with the category attribute's paths."""
    doc = parse_opml(opml(
        '<outline text="Tech"><outline text="Python">'
        '<outline text="A" xmlUrl="https://a.example/feed" category="/Deep/Dive,/py"/>'
        '</outline><outline title="B" text="b" xmlUrl="https://b.example/rss"/></outline>'
        '<outline text="C" xmlUrl="https://c.example/atom"/>'
    ))  # fmt: skip
    assert [(f.name, f.url, f.tags) for f in doc.feeds] == [
        ("A", "https://a.example/feed", ("Tech", "Python", "Deep/Dive", "py")),
        ("B", "https://b.example/rss", ("Tech",)),
        ("C", "https://c.example/atom", ()),
    ]
    assert doc.repaired is None


def test_entries_without_a_usable_url_are_skipped_and_listed() -> None:
    """Relative, non-http and missing xmlUrls are listed with a reason, never imported."""
    doc = parse_opml(opml(
        '<outline text="rel" xmlUrl="feeds/x.xml"/><outline text="ftp" xmlUrl="ftp://x/f"/>'
        '<outline text="bare"/><outline text="ok" xmlUrl="https://ok.example/"/>'
    ))  # fmt: skip
    assert [f.name for f in doc.feeds] == ["ok"]
    assert [(s.label, s.reason.split(" ")[0]) for s in doc.skipped] == [
        ("rel", "its"), ("ftp", "its"), ("bare", "it"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "head",
    [
        # billion laughs: nested internal entities
        '<!DOCTYPE opml [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
        # external entity reading a local file
        '<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        # external parameter entity (a remote DTD)
        '<!DOCTYPE opml [<!ENTITY % dtd SYSTEM "http://127.0.0.1:9/x.dtd"> %dtd;]>',
    ],
)
def test_entity_attacks_are_refused(head: str) -> None:
    """Any entity declaration is refused before it can expand or read anything."""
    body = '<outline text="&c;" xmlUrl="https://a.example/"/>'
    with pytest.raises(EntityRefused, match="refuses XML entities"):
        parse_opml(opml(body, head))


def test_our_entity_bomb_file_is_refused() -> None:
    """tests/data/opml/entity-bomb.opml is refused whole, before anything expands."""
    with pytest.raises(EntityRefused):
        parse_opml((OPML / "entity-bomb.opml").read_bytes())


def test_a_file_that_is_not_opml_is_a_parse_error() -> None:
    """Broken bytes that are not OPML are not guessed at."""
    with pytest.raises(ParseError, match="not an OPML file"):
        parse_opml(b"<html><body>hi")


def test_relative_urls_are_skipped_and_listed() -> None:
    """A planet-style list: the two absolute feeds are imported, the two relative ones listed."""
    doc = parse_opml((OPML / "relative-urls.opml").read_bytes())
    assert [f.url for f in doc.feeds] == [
        "https://second.example/feed.atom",
        "http://first.example/index.atom",
    ]
    assert [s.label for s in doc.skipped] == ["lost one", "Third Writer"]


def test_a_malformed_export_is_read_leniently() -> None:
    """A raw & and markup inside attributes: read anyway, the one damaged outline listed, and
    every other feed keeps its folder as a tag."""
    doc = parse_opml((OPML / "malformed-export.opml").read_bytes())
    assert doc.repaired is not None
    assert "line 9" in doc.repaired
    assert [f.name for f in doc.feeds] == [
        "Trust &> Control",
        "Quiet Hours",
        "Team Notes",
        "Plain Talk",
    ]
    assert all(f.tags == ("Leadership",) for f in doc.feeds)
    assert [s.label for s in doc.skipped] == ["Loud Markup"]


@pytest.mark.parametrize("name", ["relative-urls", "malformed-export"])
def test_import_each_of_our_files_through_the_cli(tmp_path: Path, name: str) -> None:
    """Each fixture OPML imports into a commented feeds.yaml that still loads, header kept."""
    config = write_config(tmp_path, START)
    code, out, err = run(config, "import", str(OPML / f"{name}.opml"))
    assert code == 0, err
    assert "imported" in out
    assert "skipped" in out
    assert config.read_text().startswith(START)
    assert len(load_config(config).feeds) > 1


# ---------------------------------------------------------------- the shared corpus, as an extra


@pytest.mark.corpus
def test_a_hostile_corpus_file_with_an_entity_is_refused() -> None:
    """The corpus's entity files are refused too, not parsed."""
    folder = corpus_dir() / "hostile" / "xml-entities"
    with pytest.raises(EntityRefused):
        parse_opml((folder / "defusedxml__xmlbomb2.xml").read_bytes())


@pytest.mark.corpus
def test_corpus_relative_urls_are_skipped() -> None:
    """Planet Venus's fixture: two absolute feeds imported, two relative ones listed."""
    venus = corpus_dir() / "opml" / "fixture__venus-config-relative-xmlurls.opml"
    doc = parse_opml(venus.read_bytes())
    assert [f.url.rsplit("/", 1)[1] for f in doc.feeds] == ["testfeed2.atom", "testfeed1a.atom"]
    assert [s.label for s in doc.skipped] == ["not found", "Sam Ruby"]


@pytest.mark.corpus
def test_corpus_malformed_export_is_read_leniently() -> None:
    """Plenary's export has a raw & and markup inside attributes: it is read anyway, the one
    damaged outline is listed, and every other feed keeps its folder as a tag."""
    doc = parse_opml((corpus_dir() / "opml" / "project__plenary-programming.opml").read_bytes())
    assert doc.repaired is not None
    assert "line 34" in doc.repaired
    assert len(doc.feeds) == 49
    assert all(f.tags == ("Programming",) for f in doc.feeds)
    assert [s.label for s in doc.skipped] == ["Signal v. Noise"]
    assert "Posts on &> /dev/null" in [f.name for f in doc.feeds]


@pytest.mark.corpus
def test_import_every_corpus_file_through_the_cli(tmp_path: Path) -> None:
    """Each corpus OPML imports into a commented feeds.yaml that still loads, header kept."""
    for path in sorted((corpus_dir() / "opml").glob("*.opml")):
        config = write_config(tmp_path, START)
        code, out, err = run(config, "import", str(path))
        assert code == 0, err
        assert "imported" in out
        assert "skipped" in out
        assert config.read_text().startswith(START)
        assert len(load_config(config).feeds) > 1


def test_import_skips_duplicates_and_keeps_names_unique(tmp_path: Path) -> None:
    """A feed already listed (same canonical URL) or listed twice in the file is skipped and
    listed; two feeds with one name get told apart."""
    config = write_config(tmp_path, START)
    source = tmp_path / "in.opml"
    source.write_bytes(opml(
        '<outline text="Existing again" xmlUrl="http://www.existing.example/feed?utm_source=o"/>'
        '<outline text="Sam" xmlUrl="https://one.example/feed"/>'
        '<outline text="Sam" xmlUrl="https://two.example/feed"/>'
        '<outline text="Sam twice" xmlUrl="https://two.example/feed/"/>'
    ))  # fmt: skip

    code, out, err = run(config, "import", str(source))

    assert code == 0, err
    assert "imported 2 feeds" in out
    already = "http://www.existing.example/feed?utm_source=o is already listed as 'Existing'"
    assert f"'Existing again': {already}" in out
    assert "'Sam twice'" in out
    names = [f.name for f in load_config(config).feeds]
    assert names == ["Existing", "Sam", "Sam (two.example)"]


def test_import_of_an_entity_attack_changes_nothing(tmp_path: Path) -> None:
    """The CLI refuses the file with exit 1 and one line; feeds.yaml is untouched."""
    config = write_config(tmp_path, START)
    source = tmp_path / "bomb.opml"
    source.write_bytes(opml('<outline text="&a;" xmlUrl="https://a.example/"/>',
                            '<!DOCTYPE opml [<!ENTITY a "lol">]>'))  # fmt: skip
    code, _, err = run(config, "import", str(source))
    assert code == 1
    assert "refuses XML entities" in err
    assert config.read_text() == START


def test_export_is_valid_opml_2() -> None:
    """version 2.0, head with title, dateCreated and docs; outlines with type, text, xmlUrl."""
    data = render_opml([FeedConfig("A & B <x>", "https://a.example/f?x=1&y=2", ("t",))], "Mine",
                       utc("2026-11-26T08:00"))  # fmt: skip
    root = ET.fromstring(data)
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "Mine"
    assert root.findtext("head/dateCreated") == "Thu, 26 Nov 2026 08:00:00 +0000"
    assert root.findtext("head/docs") == "http://opml.org/spec2.opml"
    (folder,) = root.findall("body/outline")
    assert folder.attrib == {"text": "t", "title": "t"}
    (outline,) = folder
    assert outline.attrib == {
        "type": "rss", "text": "A & B <x>", "title": "A & B <x>",
        "xmlUrl": "https://a.example/f?x=1&y=2", "category": "/t",
    }  # fmt: skip


def test_export_then_import_gives_the_same_feeds(tmp_path: Path) -> None:
    """Names, URLs and every tag survive a trip out to OPML and back into an empty file."""
    text = (
        "newsletter:\n  title: Lead Weekly\nfeeds:\n"
        "  - name: Ron\n    url: https://ron.example/feed/\n    tags: [leadership, church]\n"
        "  - name: Mike & Co\n    url: https://mike.example/feed?x=1&y=2\n"
        "  - name: Seth\n    url: https://seth.example/feed/\n    tags: [marketing, leadership]\n"
        "  - name: Deep\n    url: https://deep.example/rss\n    tags: [a/b]\n"
    )
    config = write_config(tmp_path, text)
    out = tmp_path / "out.opml"

    code, _, err = run(config, "export", "--out", str(out))
    assert code == 0, err

    fresh = tmp_path / "fresh.yaml"
    code, _, err = run(fresh, "import", str(out))
    assert code == 0, err
    assert sorted(load_config(fresh).feeds, key=lambda f: f.url) == sorted(
        load_config(config).feeds, key=lambda f: f.url
    )


def test_export_to_standard_output(tmp_path: Path) -> None:
    """Without --out the OPML goes to stdout, ready for a pipe."""
    config = write_config(tmp_path, START)
    code, out, _ = run(config, "export")
    assert code == 0
    outlines = ET.fromstring(out.encode()).findall("body/outline")
    assert [o.get("xmlUrl") for o in outlines] == ["https://existing.example/feed/"]
