"""Re-runs and CI tell the truth (CONTRACT "Re-runs and CI"): a feed resting after failures
counts as failed, is named with when it is tried next, and `--retry-failed` tries it now; an
outbox send in CI is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FeedServer, Item, Route, rss, run_cli, utc, write_config

CONFIG = """\
newsletter:
  to: [ann@example.org]
fetch: {{retries: 0, timeout: 5}}
feeds:
  - name: Ron
    url: {ron}
  - name: Carey
    url: {carey}
"""
WEDNESDAY = "2026-11-25T12:00:00Z"
HALF_AN_HOUR_LATER = "2026-11-25T12:30:00Z"
BODY = rss([Item("Lead from the middle", "https://ron.example/m", utc("2026-11-24T10:00"))])


def _down(feed_server: FeedServer, tmp_path: Path) -> Path:
    ron = feed_server.add("/ron.xml", Route(status=503))
    carey = feed_server.add("/carey.xml", Route(status=503))
    return write_config(tmp_path, CONFIG.format(ron=ron, carey=carey))


def _back_up(feed_server: FeedServer) -> None:
    feed_server.add("/ron.xml", BODY)
    feed_server.add("/carey.xml", BODY)


def test_a_rerun_inside_the_backoff_exits_1_and_names_the_resting_feeds(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Every feed failed; half an hour later the feeds rest: exit 1 with each named and its
    next try, never "no new posts" with 0; --retry-failed fetches them now and sends."""
    config = _down(feed_server, tmp_path)
    code, _, err = run_cli(config, "send", "--now", WEDNESDAY)
    assert code == 1
    assert "every feed failed and nothing is new" in err

    _back_up(feed_server)
    code, out, err = run_cli(config, "send", "--now", HALF_AN_HOUR_LATER)
    assert code == 1, out
    assert "no new posts" not in out + err
    assert "feed 'Ron' resting: failed once, next try after 2026-11-25 13:00 UTC" in err
    assert "feed 'Carey' resting:" in err
    assert "every feed failed or is resting and nothing is new" in err
    assert len(feed_server.hits("/ron.xml")) == 1  # resting means not asked

    code, out, err = run_cli(config, "send", "--retry-failed", "--now", HALF_AN_HOUR_LATER)
    assert code == 0, err
    assert "sent 2026-W48" in out
    assert len(feed_server.hits("/ron.xml")) == 2


def test_fetch_counts_resting_feeds_and_exits_1_when_all_rest(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`curator fetch` with every feed resting says "0 ok, 2 failed or resting" and exits 1;
    with --retry-failed it fetches them."""
    config = _down(feed_server, tmp_path)
    assert run_cli(config, "fetch", "--now", WEDNESDAY)[0] == 1
    _back_up(feed_server)
    code, _, err = run_cli(config, "fetch", "--now", HALF_AN_HOUR_LATER)
    assert code == 1
    # Off a terminal the rows go to stdout and the summary line to stderr.
    assert "2 feeds: 0 ok, 2 failed or resting; 0 new" in err
    code, _, err = run_cli(config, "fetch", "--retry-failed", "--now", HALF_AN_HOUR_LATER)
    assert code == 0
    assert "2 feeds: 2 ok, 0 failed or resting" in err


def test_preview_names_resting_feeds_and_can_retry_them(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`curator preview` names the resting feeds; with --retry-failed it shows their posts."""
    config = _down(feed_server, tmp_path)
    run_cli(config, "send", "--now", WEDNESDAY)
    _back_up(feed_server)
    code, out, _ = run_cli(config, "preview", "--now", HALF_AN_HOUR_LATER)
    assert code == 0
    assert "feed 'Ron' resting: failed once, next try after 2026-11-25 13:00 UTC" in out
    code, out, _ = run_cli(config, "preview", "--retry-failed", "--now", HALF_AN_HOUR_LATER)
    assert code == 0
    assert "resting:" not in out
    assert "preview of 2026-W48 written" in out


OUTBOX_CONFIG = """\
newsletter:
  to: [ann@example.org]
feeds:
  - name: Ron
    url: {ron}
"""


@pytest.mark.parametrize(
    ("env", "args", "code"),
    [
        ({"CI": "true"}, (), 2),
        ({"GITHUB_ACTIONS": "true"}, (), 2),
        ({"CI": "TRUE"}, ("--force",), 2),
        ({"CI": "true"}, ("--dry-run",), 0),
        ({"CI": "true"}, ("--to", "me@example.org"), 0),
        ({"CI": "false"}, (), 0),
    ],
)
def test_an_outbox_send_in_ci_exits_2_and_records_nothing(  # noqa: PLR0917 - fixtures and a row
    feed_server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: tuple[str, ...],
    code: int,
) -> None:
    """With CI or GITHUB_ACTIONS true, `send` with the outbox exits 2 before anything is
    fetched, written or recorded; --dry-run and --to still work."""
    ron = feed_server.add("/ron.xml", BODY)
    config = write_config(tmp_path, OUTBOX_CONFIG.format(ron=ron))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    got, _, err = run_cli(config, "send", *args, "--now", WEDNESDAY)
    assert got == code, err
    if code == 2:
        assert "delivery.method: is outbox, and this is CI" in err
        assert not (tmp_path / ".curator").exists()
        assert not (tmp_path / "outbox").exists()
        assert feed_server.hits("/ron.xml") == []
