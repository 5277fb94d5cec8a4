"""feeds.yaml cannot be used against curator: an alias bomb and a deep nesting are refused
before they cost memory or crash the C reader, with memory and time measured. And its syntax
errors read as plain words with what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
import respx

from conftest import Item, rss, run_measured, utc, write_config
from curator.config import MAX_NESTING, likely_url, load_config, parse_yaml
from curator.errors import ConfigError
from mail_kit import curator_env


def billion_laughs() -> str:
    """Nine levels of nine aliases each: under 600 bytes standing for 9**9 strings."""
    lines = ["newsletter:", '  intro: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    lines.append("feeds:\n  - url: https://a.example/feed\n    tags: *i")
    return "\n".join(lines) + "\n"


def run_load(config: Path) -> tuple[int, str, float, int]:
    """Run `curator feeds list` on ``config``: its exit code, stderr, seconds taken, and its
    own peak memory in kB."""
    done = run_measured(
        [sys.executable, "-m", "curator", "--config", str(config), "feeds", "list"],
        env=curator_env(),
        folder=config.parent,
    )
    return done.code, done.stderr, done.seconds, done.peak_kb


def test_alias_bomb_is_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    """A 500-byte billion-laughs file is refused (exit 2, one line) in under 150 MB and 10 s."""
    text = billion_laughs()
    assert len(text.encode()) < 600
    code, stderr, elapsed, peak_kb = run_load(write_config(tmp_path, text))
    assert code == 2, stderr
    assert "aliases (*name)" in stderr and "feeds.yaml:3:" in stderr
    assert peak_kb < 150_000, f"{peak_kb} kB"
    assert elapsed < 10


def test_alias_bomb_is_refused_by_both_readers() -> None:
    """The fast reader and the line-keeping reader both refuse an aliased list."""
    for lines in (False, True):
        with pytest.raises(ConfigError, match="aliases"):
            parse_yaml(billion_laughs(), "feeds.yaml", lines=lines)


def test_an_aliased_scalar_is_still_fine(tmp_path: Path) -> None:
    """An alias of a single value cannot grow: it is read as written."""
    config = write_config(
        tmp_path,
        "newsletter: {title: &t Weekly, intro: *t}\nfeeds:\n  - https://a.example/feed\n",
    )
    assert load_config(config).newsletter.intro == "Weekly"


@pytest.mark.parametrize(
    "text",
    [
        "feeds: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "feeds: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n",
        "feeds:\n" + "".join("  " * i + "- \n" for i in range(1, 2000)),
        "feeds:\n  - " + "- " * 5000 + "x\n",
    ],
    ids=["brackets", "braces", "block", "dashes"],
)
def test_deep_nesting_is_refused_without_a_crash(tmp_path: Path, text: str) -> None:
    """A deeply nested file is a config error (exit 2) in a child process, not a segfault."""
    code, stderr, elapsed, _ = run_load(write_config(tmp_path, text))
    assert code == 2, (code, stderr[-500:])
    assert f"nested more than {MAX_NESTING} levels deep" in stderr
    assert elapsed < 10


def test_the_shipped_feeds_yaml_is_well_within_the_nesting_bound() -> None:
    """The repository's own feeds.yaml loads (the scan does not over-count real files)."""
    shipped = Path(__file__).resolve().parent.parent / "feeds.yaml"
    assert load_config(shipped).feeds


@pytest.mark.parametrize(
    ("text", "line", "words", "hint"),
    [
        ("feeds:\n\t- url: https://a.example/\n", 2, "a tab character", "with spaces"),
        (
            "feeds:\n  - url: https://a.example/\n    name: A\n  tags: [x]\n",
            4,
            "not indented like the lines above",
            "same number of spaces",
        ),
        (
            "newsletter:\n  title: X\n from: a@b.org\nfeeds: []\n",
            3,
            "not indented like the lines above",
            "same number of spaces",
        ),
        ("newsletter:\n  title: Lead: now\nfeeds: []\n", 2, "a ':' where none may be", "quote"),
        ('newsletter:\n  title: "Lead\nfeeds: []\n', 4, "never closed", "line 2"),
        ("feeds: [a, b\nquestions: []\n", 2, "not closed, or misses a comma", "line 1"),
        ("feeds: []\nfeeds: []\n", 2, "given twice", "keep one"),
    ],
    ids=["tab", "dedented-key", "dedented-mapping", "colon", "quote", "bracket", "duplicate"],
)
def test_yaml_errors_in_plain_words(text: str, line: int, words: str, hint: str) -> None:
    """Each syntax error names its line, says what is wrong in plain words, and what to do;
    no raw parser text (`<block end>`, `'?'`) reaches the user."""
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "feeds.yaml")
    message = str(caught.value)
    assert message.startswith(f"feeds.yaml:{line}: "), message
    assert words in message and hint in caught.value.hint
    assert "<block end>" not in message and "'?'" not in message


@pytest.mark.parametrize(
    ("text", "guess"),
    [
        ("michaelhyatt.com/feed/", "https://michaelhyatt.com/feed/"),
        ("example.org", "https://example.org"),
        ("blog.example.org:8080/rss", "https://blog.example.org:8080/rss"),
        ("htp://x", None),
        ("not a url", None),
        ("feed", None),
    ],
)
def test_did_you_mean_https(text: str, guess: str | None) -> None:
    """An address without its scheme is read as https://; anything else gets no guess."""
    assert likely_url(text) == guess


def test_url_without_scheme_in_the_config_says_did_you_mean(tmp_path: Path) -> None:
    """The message names the line and key and offers the https:// reading."""
    config = write_config(tmp_path, "feeds:\n  - url: michaelhyatt.com/feed/\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value).endswith(
        "feeds.yaml:2: feeds[0].url: 'michaelhyatt.com/feed/' is not an http(s) URL; "
        "did you mean https://michaelhyatt.com/feed/?"
    )
    assert caught.value.hint


@respx.mock
def test_feeds_add_without_a_scheme_assumes_https_and_says_so(tmp_path: Path) -> None:
    """`feeds add example.org/feed` fetches https://example.org/feed and says it assumed so."""
    from curator.manage import run_feeds_add

    body = rss([Item("A post", "https://example.org/a", utc("2026-11-20T09:00:00Z"))], title="Ex")
    route = respx.get("https://example.org/feed").mock(
        return_value=httpx.Response(200, content=body, headers={"Content-Type": "application/xml"})
    )
    config = write_config(tmp_path, "feeds:\n  - https://other.example/feed\n")
    report = run_feeds_add(config, "example.org/feed", client=httpx.AsyncClient())
    assert route.called
    assert report.lines[0] == "no scheme given: assuming https://example.org/feed"
    assert "url: https://example.org/feed" in config.read_text()
