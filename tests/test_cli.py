"""The command line: every command has help, --version works, errors are one clean line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from conftest import write_config
from curator import __version__
from curator.cli import app


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # typer ships its own copy of click; walk whatever has sub-commands.
    found = [prefix]
    if hasattr(group, "commands"):
        for name, command in group.commands.items():
            found += _commands(command, (*prefix, name))
    return found


ALL_COMMANDS = _commands(typer.main.get_command(app))


def test_the_contract_commands_exist() -> None:
    """send, preview, fetch, feeds list, history and questions are all there."""
    for command in [("send",), ("preview",), ("fetch",), ("history",), ("questions",)]:
        assert command in ALL_COMMANDS
    assert ("feeds", "list") in ALL_COMMANDS


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: " ".join(c) or "curator")
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    """`--help` works for every command and says something beyond the usage line."""
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    described: Any = typer.main.get_command(app)
    for name in command:
        described = described.commands[name]
    assert (described.help or "").strip(), f"{' '.join(command)} has no help text"


def test_version_is_printed() -> None:
    """`curator --version` prints the package version."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"curator {__version__}"


def test_python_dash_m_is_the_same_program(tmp_path: Path) -> None:
    """`python -m curator` runs the same CLI (checked in a real subprocess)."""
    result = subprocess.run(
        [sys.executable, "-m", "curator", "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"curator {__version__}"


def test_errors_are_clean_unless_debug(tmp_path: Path) -> None:
    """A CuratorError is one line and a hint; --debug adds the traceback."""
    path = write_config(tmp_path, "feeds:\n  - url: https://a.example/\n")
    (tmp_path / ".curator").mkdir()
    (tmp_path / ".curator" / "state.db").write_bytes(b"this is not sqlite" * 100)
    plain = CliRunner().invoke(app, ["--config", str(path), "history"])
    assert plain.exit_code == 1
    assert "not a curator state file" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = CliRunner().invoke(app, ["--config", str(path), "--debug", "history"])
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr


def test_no_recipients_is_a_usage_error(tmp_path: Path) -> None:
    """send with nobody to send to exits 2 before fetching anything."""
    path = write_config(tmp_path, "feeds:\n  - url: http://127.0.0.1:9/feed\n")
    result = CliRunner().invoke(app, ["--config", str(path), "send"])
    assert result.exit_code == 2
    assert "newsletter.to: no recipients" in result.stderr


def test_bad_now_is_a_usage_error(tmp_path: Path) -> None:
    """--now without a zone exits 2 with an example of the right form."""
    path = write_config(
        tmp_path, "newsletter:\n  to: [a@b.org]\nfeeds:\n  - url: http://127.0.0.1:9/\n"
    )
    result = CliRunner().invoke(app, ["--config", str(path), "send", "--now", "yesterday"])
    assert result.exit_code == 2
    assert "2026-11-30T08:00:00Z" in result.stderr
