"""feeds.yaml validation: every bad config gets one message naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import run_cli, write_config
from curator.cli import app
from curator.config import load_config, parse_now
from curator.errors import ConfigError

GOOD = """\
newsletter:
  title: Lead Weekly
  from: "Lead Weekly <digest@example.org>"
  to: [you@example.org]
feeds:
  - name: Ron Edmondson
    url: https://ronedmondson.com/feed/
"""

# (feeds.yaml text, the exact message after "feeds.yaml:")
BAD_CONFIGS = [
    pytest.param(
        "feeds:\n  - name: A\n    url: https://a.example/feed\n  - name: B\n    url: 'htp://x'\n",
        "5: feeds[1].url: 'htp://x' is not an http(s) URL",
        id="bad-url-scheme",
    ),
    pytest.param(
        "feeds:\n  - name: A\n    url: file:///etc/passwd\n",
        "3: feeds[0].url: 'file:///etc/passwd' is not an http(s) URL",
        id="local-file-url",
    ),
    pytest.param(
        "newsletter:\n  titel: Oops\nfeeds:\n  - url: https://a.example/\n",
        "2: newsletter.titel: unknown key; did you mean 'title'?",
        id="typo-did-you-mean",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/\n    nmae: A\n",
        "3: feeds[0].nmae: unknown key; did you mean 'name'?",
        id="typo-in-feed",
    ),
    pytest.param(
        "newsletter:\n  cadence: fortnightly\nfeeds:\n  - url: https://a.example/\n",
        "2: newsletter.cadence: 'fortnightly' is not one of weekly, daily, monthly",
        id="bad-cadence",
    ),
    pytest.param(
        "newsletter:\n  max_posts: many\nfeeds:\n  - url: https://a.example/\n",
        "2: newsletter.max_posts: expected a whole number, got 'many'",
        id="not-a-number",
    ),
    pytest.param(
        "newsletter:\n  lookback_days: 0\nfeeds:\n  - url: https://a.example/\n",
        "2: newsletter.lookback_days: 0 is out of range: must be between 1 and 366",
        id="out-of-range",
    ),
    pytest.param(
        "newsletter:\n  timezone: Mars/Olympus\nfeeds:\n  - url: https://a.example/\n",
        "2: newsletter.timezone: 'Mars/Olympus' is not an IANA time zone"
        " (for example Europe/London)",
        id="bad-timezone",
    ),
    pytest.param(
        "newsletter:\n  to: [not-an-address]\nfeeds:\n  - url: https://a.example/\n",
        "2: newsletter.to[0]: 'not-an-address' is not an email address",
        id="bad-recipient",
    ),
    pytest.param(
        "delivery:\n  smtp:\n    host: x\n    password: hunter2\nfeeds:\n  - url: https://a.example/\n",
        "4: delivery.smtp.password: secrets never live in feeds.yaml",
        id="secret-in-file",
    ),
    pytest.param(
        "newsletter:\n  title: A\n",
        "1: feeds: the `feeds:` list is missing",
        id="no-feeds",
    ),
    pytest.param(
        "feeds: []\n",
        "1: feeds: lists no feeds",
        id="empty-feeds",
    ),
    pytest.param(
        "feeds:\n  - name: A\n",
        "2: feeds[0]: has no url",
        id="feed-without-url",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/\n  - url: https://a.example/\n",
        "3: feeds[1]: 'https://a.example/' is listed twice (also as 'a.example')",
        id="duplicate-feed",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/\nquestions:\n  - {themes: [x]}\n",
        "4: questions[0]: has no text",
        id="question-without-text",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/\n    enabled: maybe\n",
        "3: feeds[0].enabled: expected true or false, got 'maybe'",
        id="not-a-boolean",
    ),
    pytest.param(
        "feeds:\n  - url: https://a.example/\n  bad indent: [\n",
        "3: this line is not indented like the lines above it",
        id="yaml-syntax",
    ),
    pytest.param(
        "delivery:\n  method: pigeon\nfeeds:\n  - url: https://a.example/\n",
        "2: delivery.method: 'pigeon' is not one of outbox, smtp, postmark",
        id="bad-method",
    ),
    pytest.param(
        "feeds:\n  - {name: Ron, url: 'https://a.example/'}\n"
        "  - {name: Ron, url: 'https://b.example/'}\n",
        "3: feeds[1].name: 'Ron' names another feed too",
        id="duplicate-name",
    ),
    pytest.param(
        "feeds:\n  - url: 'http://[::1/feed'\n",
        "2: feeds[0].url: 'http://[::1/feed' is not a valid URL (check the brackets and the port)",
        id="unbalanced-ipv6-bracket",
    ),
    pytest.param(
        "feeds:\n  - url: 'http://a.example:99999/'\n",
        "2: feeds[0].url: 'http://a.example:99999/' is not a valid URL"
        " (check the brackets and the port)",
        id="port-out-of-range",
    ),
    pytest.param(
        "newsletter:\n  to: [jörg@exämple.org]\nfeeds:\n  - url: https://a.example/\n",
        "2: newsletter.to[0]: 'jörg@exämple.org' is not a plain ASCII address",
        id="non-ascii-recipient",
    ),
    pytest.param(
        "delivery:\n  postmark:\n    endpoint: http://api.example/batch\n"
        "feeds:\n  - url: https://a.example/\n",
        "3: delivery.postmark.endpoint: 'http://api.example/batch' must be https",
        id="postmark-over-http",
    ),
    pytest.param(
        "fetch:\n  timeout: -1\nfeeds:\n  - url: https://a.example/\n",
        "2: fetch.timeout: -1 is out of range: must be more than 0",
        id="negative-timeout",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_names_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    """Each bad config raises one ConfigError whose message starts with file:line: key."""
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value).startswith(f"{path}:{message}")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "command", "said"),
    [
        ("feeds:\n  - url: 'htp://x'\n", "send",
         "{path}:2: feeds[0].url: 'htp://x' is not an http(s) URL"),
        (None, "fetch", "no such file"),
    ],
    ids=["bad-config", "missing-file"],
)  # fmt: skip
def test_a_config_problem_exits_2_with_one_clean_line(
    tmp_path: Path, text: str | None, command: str, said: str
) -> None:
    """The CLI prints the problem (and a hint) on stderr, no traceback, and exits 2 before
    any fetch; a missing feeds.yaml is one too."""
    path = write_config(tmp_path, text) if text is not None else tmp_path / "nope.yaml"
    code, out, err = run_cli(path, command)
    assert code == 2
    assert err.startswith("curator: error: ")
    assert said.format(path=path) in err
    assert "Traceback" not in out + err


def test_minimal_config_gets_every_default(tmp_path: Path) -> None:
    """Only `feeds` is required; the rest has defaults, paths beside the config file."""
    path = write_config(tmp_path, "feeds:\n  - https://a.example/feed\n")
    config = load_config(path, env={})
    assert config.feeds[0].url == "https://a.example/feed"
    assert config.feeds[0].name == "a.example"
    assert config.newsletter.cadence == "weekly"
    assert config.newsletter.empty_week == "skip"
    assert config.delivery.method == "outbox"
    assert config.delivery.outbox_dir == tmp_path / "outbox"
    assert config.state_path == tmp_path / ".curator" / "state.db"
    assert config.questions, "a built-in question bank is used"


def test_environment_overrides(tmp_path: Path) -> None:
    """CURATOR_TO replaces the list, CURATOR_STATE moves the state, the password is env-only."""
    path = write_config(tmp_path, GOOD)
    env = {
        "CURATOR_TO": "a@x.org, b@y.org",
        "CURATOR_STATE": str(tmp_path / "elsewhere.db"),
        "CURATOR_SMTP_PASSWORD": "s3cret",
    }
    config = load_config(path, env=env)
    assert config.newsletter.to == ("a@x.org", "b@y.org")
    assert config.state_path == tmp_path / "elsewhere.db"
    assert config.delivery.smtp.password == "s3cret"
    assert "s3cret" not in repr(config)


def test_bad_curator_to_is_a_config_error(tmp_path: Path) -> None:
    """An unusable address in CURATOR_TO is refused with the variable's name."""
    path = write_config(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="CURATOR_TO: 'nope' is not an email address"):
        load_config(path, env={"CURATOR_TO": "nope"})


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CURATOR_CONFIG points the CLI at another feeds.yaml."""
    path = write_config(tmp_path, GOOD, name="other.yaml")
    monkeypatch.setenv("CURATOR_CONFIG", str(path))
    result = CliRunner().invoke(app, ["feeds", "list"])
    assert result.exit_code == 0, result.stderr
    assert "Ron Edmondson" in result.stdout


def test_shipped_feeds_yaml_is_valid_and_complete() -> None:
    """The repo's feeds.yaml loads, has both writers and 16+ themed questions."""
    root = Path(__file__).resolve().parent.parent
    config = load_config(root / "feeds.yaml", env={})
    urls = [f.url for f in config.feeds]
    assert urls == ["https://ronedmondson.com/feed/", "https://michaelhyatt.com/feed/"]
    assert config.delivery.method == "outbox"
    assert len(config.questions) >= 16
    assert all(q.themes for q in config.questions)
    assert [q.text for q in config.questions[:3]] == [
        "Are you leading or managing?",
        "Is there an area of your life you are managing that you need to rise up and lead?",
        "How are you going to do it?",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T08:00:00Z", "2026-11-30T08:00:00+00:00"),
        ("2026-11-30T09:00:00+01:00", "2026-11-30T08:00:00+00:00"),
        ("2026-11-30", "2026-11-30T00:00:00+00:00"),
    ],
)
def test_now_accepts_iso_with_zone_or_a_date(text: str, expected: str) -> None:
    """--now takes ISO 8601 with Z or an offset, or a date alone (midnight UTC)."""
    assert parse_now(text).isoformat() == expected


def test_a_date_alone_is_midnight_in_the_newsletter_zone() -> None:
    """A date alone starts that day where the newsletter lives, so it names that day's week."""
    assert parse_now("2026-11-30", timezone="America/New_York").isoformat() == (
        "2026-11-30T05:00:00+00:00"
    )


@pytest.mark.parametrize("text", ["2026-11-30T08:00:00", "next monday", ""])
def test_now_refuses_times_without_a_zone(text: str) -> None:
    """A time without a zone is ambiguous and refused with an example."""
    with pytest.raises(ConfigError, match="ISO 8601"):
        parse_now(text)


def test_a_broken_subject_template_is_refused_before_any_fetch(tmp_path: Path) -> None:
    """A subject naming an unknown variable exits 2 with the key, before the network."""
    path = write_config(
        tmp_path,
        "newsletter:\n  to: [a@b.org]\n  subject: '{{ titel }}'\n"
        "feeds:\n  - url: http://127.0.0.1:9/feed\n",
    )
    result = CliRunner().invoke(app, ["--config", str(path), "send"])
    assert result.exit_code == 2
    assert "newsletter.subject: the subject template does not work" in result.stderr
    assert "'titel' is undefined" in result.stderr


def test_send_to_accepts_a_comma_separated_list(tmp_path: Path) -> None:
    """`--to 'a@x.org, b@y.org'` means two addresses; a bad one among them is refused."""
    path = write_config(tmp_path, "feeds:\n  - url: http://127.0.0.1:9/feed\n")
    bad = CliRunner().invoke(app, ["--config", str(path), "send", "--to", "a@x.org, nope"])
    assert bad.exit_code == 2
    assert "--to: 'nope' is not an email address" in bad.stderr
