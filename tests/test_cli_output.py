"""The command line's habits: listings fit an 80-column terminal and pipe as tab-separated
rows, global options go before or after the command, and --help reads like a man page."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from conftest import FeedServer, Item, rss, utc, write_config
from curator.cli import EXAMPLES, app, hoist_global_options
from curator.errors import CuratorError, StateFileError
from mail_kit import curator_env

NOW = "2026-11-26T08:00:00Z"
LONG_QUESTION = (
    "When did you last ask the people closest to your work for honest feedback about how you "
    "lead, and what did you change because of what they told you?"
)
LISTINGS = [
    ("fetch", "--now", NOW),
    ("history",),
    ("questions", "--now", NOW),
    ("feeds", "list"),
    ("feeds", "check", "--now", NOW),
    ("doctor",),
    ("readers",),
    ("journal",),
]


@pytest.fixture
def newsletter(tmp_path: Path, feed_server: FeedServer) -> Path:
    """A newsletter with long names, URLs and questions, one issue already sent."""
    posts = [
        Item(
            f"A rather long post title about leading teams through change, part {n}",
            f"https://writer.example/2026/11/a-rather-long-post-title-about-leading-{n}/",
            utc(f"2026-11-2{n}T09:00:00Z"),
        )
        for n in range(1, 4)
    ]
    long_path = "/feeds/" + "a-very-long-feed-path-segment/" * 3 + "feed.xml"
    feed_server.add(long_path, rss(posts, title="The Long-Titled Leadership Journal Weekly"))
    feed_server.add("/short.xml", rss(posts[:1], title="Short"))
    config = write_config(
        tmp_path,
        "newsletter:\n  to: [reader@example.org]\n  from: 'Digest <digest@example.org>'\n"
        "fetch: {retries: 0, timeout: 5}\n"
        "feeds:\n"
        f"  - {{url: '{feed_server.url(long_path)}', tags: [leadership, change, teams]}}\n"
        f"  - {{name: Short, url: '{feed_server.url('/short.xml')}'}}\n"
        f"questions:\n  - {LONG_QUESTION}\n  - Are you leading or managing?\n",
    )
    sent = CliRunner().invoke(app, ["--config", str(config), "send", "--now", NOW])
    assert sent.exit_code == 0, sent.output
    # One long answer, so `journal` has a row as wide as a reader's words.
    from curator.store import Store

    when = utc(NOW)
    with Store.open(config.parent / ".curator" / "state.db") as store:
        issue = store.latest_issue()
        assert issue is not None
        reader = store.reader_ids(["reader@example.org"], when)["reader@example.org"]
        store.record_reply_message(
            "<answer@x>", "answer", when, reader_id=reader, issue_id=issue.id,
            text="I will hand the budget review to Sam, and ask the team " * 3,
        )  # fmt: skip
    return config


def run_in_terminal(config: Path, args: tuple[str, ...], columns: int = 80) -> tuple[int, str]:
    """Run curator on a pseudo-terminal of ``columns`` columns; its exit code and output."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = curator_env({"TERM": "xterm-256color"})
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR"):
        env.pop(name, None)
    child = subprocess.Popen(
        [sys.executable, "-m", "curator", "--config", str(config), *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=config.parent,
        env=env,
        close_fds=True,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError as exc:  # EIO: the child closed the terminal
            if exc.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    code = child.wait(timeout=60)
    text = b"".join(chunks).decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", text)
    return code, text


@pytest.mark.parametrize("args", LISTINGS, ids=lambda a: " ".join(a[:2]))
def test_every_listing_fits_an_80_column_terminal(newsletter: Path, args: tuple[str, ...]) -> None:
    """On an 80-column terminal no line of a listing is wider than 80 characters."""
    code, text = run_in_terminal(newsletter, args)
    assert code == 0, text  # every listing succeeds on this fixture (doctor: warnings only)
    lines = [line for chunk in text.split("\r\n") for line in chunk.split("\r")]
    widest = max(lines, key=len)
    assert len(widest) <= 80, f"{len(widest)} columns:\n{text}"
    assert "\t" not in text


@pytest.mark.parametrize("args", LISTINGS, ids=lambda a: " ".join(a[:2]))
def test_every_listing_pipes_as_tab_separated_rows(newsletter: Path, args: tuple[str, ...]) -> None:
    """Off a terminal a listing is one header row and tab-separated rows, nothing else."""
    result = subprocess.run(
        [sys.executable, "-m", "curator", "--config", str(newsletter), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=newsletter.parent,
        env=curator_env(),
    )
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert len(rows) >= 2, result.stdout  # a header and at least one row
    widths = {row.count("\t") for row in rows}
    assert len(widths) == 1 and widths.pop() >= 2, result.stdout
    assert not any(ch in result.stdout for ch in "│┃━─"), "no box drawing in a pipe"


def test_history_pipe_has_the_issue_and_its_whole_question(newsletter: Path) -> None:
    """The piped history row carries the whole question, not a folded part of it."""
    result = CliRunner().invoke(app, ["--config", str(newsletter), "history"])
    header, row = result.stdout.splitlines()
    assert header.split("\t")[0] == "period"
    assert row.split("\t")[0] == "2026-W48"
    assert row.split("\t")[-1] in (LONG_QUESTION, "Are you leading or managing?")


def test_send_and_preview_show_progress_on_a_terminal_only(newsletter: Path) -> None:
    """preview on a terminal draws a progress bar (stderr); piped, it prints only its lines."""
    preview = ("preview", "--now", "2026-12-03T08:00:00Z")
    _, on_terminal = run_in_terminal(newsletter, preview)
    assert "fetching" in on_terminal
    piped = CliRunner().invoke(app, ["--config", str(newsletter), *preview])
    assert "fetching" not in piped.stdout + piped.stderr


# ---------------------------------------------------------------- global options


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["history", "--debug"], ["--debug", "history"]),
        (["--debug", "history"], ["--debug", "history"]),
        (["history", "--config", "x.yaml"], ["--config", "x.yaml", "history"]),
        (["history", "--config=x.yaml"], ["--config=x.yaml", "history"]),
        (["history", "-c", "x.yaml"], ["-c", "x.yaml", "history"]),
        (["feeds", "list", "--state", "s.db"], ["--state", "s.db", "feeds", "list"]),
        (["feeds", "--debug", "list"], ["--debug", "feeds", "list"]),
        (["send", "--to", "a@x.org", "--debug"], ["--debug", "send", "--to", "a@x.org"]),
        (["feeds", "add", "--", "--debug"], ["feeds", "add", "--", "--debug"]),
        (["history", "--config"], ["history", "--config"]),  # missing value: click says so
    ],
)
def test_global_options_move_to_the_front(args: list[str], expected: list[str]) -> None:
    """--config, --state and --debug are taken wherever they stand before `--`."""
    assert hoist_global_options(args) == expected


@pytest.mark.parametrize(
    "position",
    [
        ["--config", "{config}", "--debug", "history"],
        ["history", "--config", "{config}", "--debug"],
        ["--config", "{config}", "history", "--debug"],
        ["history", "--debug", "--config={config}"],
    ],
    ids=["before", "after", "split", "equals"],
)
def test_global_options_work_on_either_side(tmp_path: Path, position: list[str]) -> None:
    """The same global options give the same run before, after or around the command."""
    config = write_config(tmp_path, "feeds:\n  - url: https://a.example/\n")
    (tmp_path / ".curator").mkdir()
    (tmp_path / ".curator" / "state.db").write_bytes(b"this is not sqlite" * 100)
    args = [a.replace("{config}", str(config)) for a in position]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "not a curator state file" in result.stderr
    assert "Traceback" in result.stderr  # --debug took effect


def test_state_option_after_the_command(tmp_path: Path) -> None:
    """`curator history --state PATH` reads that state file."""
    config = write_config(tmp_path, "feeds:\n  - url: https://a.example/\n")
    elsewhere = tmp_path / "elsewhere.db"
    elsewhere.write_bytes(b"not sqlite either" * 100)
    result = CliRunner().invoke(
        app, ["history", "--config", str(config), "--state", str(elsewhere)]
    )
    assert result.exit_code == 1
    assert "elsewhere.db" in result.stderr


# ---------------------------------------------------------------- help


def _leaves(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in getattr(group, "commands", {}).items():
        found += _leaves(command, (*prefix, name))
    return found


ALL = _leaves(typer.main.get_command(app))


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("command", ALL, ids=lambda c: " ".join(c) or "curator")
def test_help_names_no_types(command: tuple[str, ...]) -> None:
    """No --help shows a type name ({url}, url <str>, <list[str]>, <path>) or a cut summary."""
    text = CliRunner().invoke(app, [*command, "--help"], terminal_width=100).stdout
    assert not re.search(r"<[a-z_\[\], |]+>", text), text
    assert not re.search(r"\{[a-z_.]+\}", text), text
    assert not re.search(r"\w\.\.\.$", text, re.MULTILINE), text  # a summary cut short
    options = text.split("Example:")[0]
    for metavar in re.findall(r"(?m)^ +(?:-\w, )?--[a-z-]+ ([A-Za-z_.]+)", options):
        assert metavar.isupper() or "." in metavar, f"metavar {metavar} is not in capitals"


@pytest.mark.parametrize(
    "command",
    [c for c in ALL if c and not hasattr(_command(c), "commands")],
    ids=" ".join,
)
def test_every_command_has_an_example(command: tuple[str, ...]) -> None:
    """Every command's help ends with an example that runs that command."""
    assert " ".join(command) in EXAMPLES
    text = CliRunner().invoke(app, [*command, "--help"]).stdout
    assert f"Example:\n    curator {' '.join(command)}" in text


def test_the_command_list_shows_whole_summaries() -> None:
    """`curator --help` shows each command's whole first line (send's 'deliver it and record
    it'), not one cut at 45 characters."""
    text = " ".join(CliRunner().invoke(app, ["--help"]).stdout.split())
    assert "deliver it and record it." in text
    assert "init" in text and "doctor" in text


def test_shell_completion_is_offered() -> None:
    """typer's completion options are on (`--show-completion`, `--install-completion`)."""
    text = CliRunner().invoke(app, ["--help"]).stdout
    assert "--install-completion" in text and "--show-completion" in text


# ---------------------------------------------------------------- names and questions


def _rows(config: Path, *args: str) -> list[list[str]]:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return [line.split("\t") for line in result.stdout.splitlines()[1:]]


def test_an_unnamed_feed_is_shown_and_removed_by_its_own_title(newsletter: Path) -> None:
    """Once fetched, a feed listed by bare url is its title in `feeds list` and `fetch`, and
    `feeds remove TITLE` removes it."""
    title = "The Long-Titled Leadership Journal Weekly"
    assert [row[0] for row in _rows(newsletter, "feeds", "list")] == [title, "Short"]
    assert [row[0] for row in _rows(newsletter, "fetch", "--now", NOW)] == [title, "Short"]
    removed = CliRunner().invoke(app, ["--config", str(newsletter), "feeds", "remove", title])
    assert removed.exit_code == 0, removed.output
    assert "a-very-long-feed-path-segment" not in newsletter.read_text()
    assert [row[0] for row in _rows(newsletter, "feeds", "list")] == ["Short"]


def test_questions_marks_this_periods_question_apart_from_the_next(newsletter: Path) -> None:
    """After this week's issue went out, its question is "this period" and "next" is another."""
    marks = {row[1]: row[0] for row in _rows(newsletter, "questions", "--now", NOW)}
    assert marks == {LONG_QUESTION: "this period", "Are you leading or managing?": "next"}
    later = {row[1]: row[0] for row in _rows(newsletter, "questions", "--now", "2026-12-03")}
    assert later["Are you leading or managing?"] == "next"
    assert later[LONG_QUESTION] == ""


def _subclasses(cls: type[CuratorError]) -> list[type[CuratorError]]:
    found = [cls]
    for direct in cls.__subclasses__():
        found += _subclasses(direct)
    return found


# The root itself is never raised, so it needs no hint of its own; a state file error is one
# line by contract (its message names what to check).
ONE_LINE = {CuratorError, StateFileError}


@pytest.mark.parametrize(
    "error", [e for e in _subclasses(CuratorError) if e not in ONE_LINE], ids=lambda c: c.__name__
)
def test_every_error_says_what_to_do(error: type[CuratorError]) -> None:
    """Every kind of error, raised without a hint of its own, still has a what-to-do line."""
    assert error("something went wrong").hint


def test_an_error_without_its_own_hint_prints_the_default(tmp_path: Path) -> None:
    """A config mistake whose raise names no hint is still two lines: what and what to do."""
    config = write_config(tmp_path, "newsletter: {max_posts: -1}\nfeeds: [https://a.example/]\n")
    result = CliRunner().invoke(app, ["questions", "--config", str(config)])
    assert result.exit_code == 2
    first, second = result.stderr.splitlines()
    assert first.startswith("curator: error: ") and "max_posts" in first
    assert second.strip()
