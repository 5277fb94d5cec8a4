"""`curator state export/import`: the whole state as one encrypted file, refused whole on a
wrong key, no key or damage; and the weekly workflow's own scripts, run against local git
repositories, push nothing readable: no recipient address, no subject."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from conftest import FeedServer, Item, rss, utc, write_config
from curator.cli import app
from curator.store import Store
from mail_kit import curator_env

RUNNER = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "weekly-digest.yml"
READERS = ["ann.reader@example.org", "bob.reader@example.net"]
TITLE = "Quietly Secret Weekly"
KEY = "correct horse battery staple"

CONFIG = f"""\
newsletter:
  title: {TITLE}
  to: [{", ".join(READERS)}]
feeds:
  - name: Ron
    url: {{feed}}
"""


@pytest.fixture(autouse=True)
def _no_key_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a CURATOR_STATE_KEY from the developer's shell."""
    monkeypatch.delenv("CURATOR_STATE_KEY", raising=False)


@pytest.fixture
def config(feed_server: FeedServer, tmp_path: Path) -> Path:
    feed = feed_server.add(
        "/ron.xml",
        rss([Item("Lead from the middle", "https://ron.example/m/", utc("2026-11-24T10:00"))]),
    )
    path = write_config(tmp_path, CONFIG.format(feed=feed))
    result = RUNNER.invoke(app, ["--config", str(path), "send", "--now", "2026-11-26T08:00:00Z"])
    assert result.exit_code == 0, result.stderr
    return path


def run(config: Path, *args: str, key: str | None = KEY) -> tuple[int, str, str]:
    env = {"CURATOR_STATE_KEY": key} if key is not None else {}
    result = RUNNER.invoke(app, ["--config", str(config), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def state_of(config: Path) -> Path:
    return config.parent / ".curator" / "state.db"


def deliveries(config: Path) -> list[tuple[str, str]]:
    with Store.open(state_of(config)) as store:
        issue = store.latest_issue()
        assert issue is not None
        return sorted((d.recipient, d.status) for d in store.deliveries(issue.id))


def test_export_then_import_restores_the_whole_state(config: Path, tmp_path: Path) -> None:
    """An encrypted export imported into an empty place brings back every delivery row."""
    before = deliveries(config)
    assert run(config, "state", "export", str(tmp_path / "state.enc"))[0] == 0
    state_of(config).unlink()
    code, out, err = run(config, "state", "import", str(tmp_path / "state.enc"))
    assert code == 0, err
    assert "state imported" in out
    assert deliveries(config) == before


def test_the_export_holds_no_address_and_no_subject(config: Path, tmp_path: Path) -> None:
    """Neither the readers' addresses nor the subject can be read from the encrypted file."""
    target = tmp_path / "state.enc"
    assert run(config, "state", "export", str(target))[0] == 0
    data = target.read_bytes()
    for secret in [*READERS, TITLE, "ann.reader", "example.org"]:
        assert secret.encode() not in data
        assert secret.encode("utf-16-le") not in data
    assert b"SQLite" not in data


@pytest.mark.parametrize(
    ("key", "damage", "says"),
    [
        ("the wrong key", None, "wrong CURATOR_STATE_KEY, or the file is damaged"),
        (None, None, "the state file is encrypted and CURATOR_STATE_KEY is not set"),
        (KEY, 200, "wrong CURATOR_STATE_KEY, or the file is damaged"),
        (KEY, 20, "wrong CURATOR_STATE_KEY, or the file is damaged"),
        (KEY, 0, "not a curator state export"),
    ],
)
def test_a_bad_import_exits_2_with_one_line_and_overwrites_nothing(
    config: Path, tmp_path: Path, key: str | None, damage: int | None, says: str
) -> None:
    """Wrong key, no key or a changed byte: exit 2, one line, the current state untouched."""
    target = tmp_path / "state.enc"
    assert run(config, "state", "export", str(target))[0] == 0
    if damage is not None:
        data = bytearray(target.read_bytes())
        data[damage] ^= 0x01
        target.write_bytes(bytes(data))
    before = state_of(config).read_bytes()
    code, _, err = run(config, "state", "import", str(target), key=key)
    assert code == 2
    assert err.strip().splitlines() == [f"curator: error: {err.split('error: ', 1)[1].strip()}"]
    assert says in err
    assert state_of(config).read_bytes() == before
    assert sorted(p.name for p in state_of(config).parent.iterdir() if "tmp" in p.name) == []


def test_export_refuses_without_a_key_unless_plain(config: Path, tmp_path: Path) -> None:
    """No key: exit 2 and no file; --plain writes the bare SQLite snapshot, which imports."""
    code, _, err = run(config, "state", "export", str(tmp_path / "s.enc"), key=None)
    assert code == 2
    assert "CURATOR_STATE_KEY is not set" in err
    assert not (tmp_path / "s.enc").exists()
    code, _, err = run(config, "state", "export", "--plain", str(tmp_path / "s.db"), key=None)
    assert code == 0, err
    assert (tmp_path / "s.db").read_bytes().startswith(b"SQLite format 3\x00")
    assert run(config, "state", "import", str(tmp_path / "s.db"), key=None)[0] == 0


def test_a_file_that_is_not_a_state_is_refused(config: Path, tmp_path: Path) -> None:
    """A SQLite file without curator's tables is refused before it replaces anything."""
    other = tmp_path / "other.db"
    other.write_bytes(b"SQLite format 3\x00" + b"\x00" * 2000)
    before = state_of(config).read_bytes()
    code, _, err = run(config, "state", "import", str(other), key=None)
    assert code == 2, err
    assert state_of(config).read_bytes() == before


# ---------------------------------------------------------------- the workflow's own scripts


def _step(name_starts: str) -> str:
    workflow = YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))
    steps = workflow["jobs"]["send"]["steps"]
    (step,) = [s for s in steps if s.get("name", "").startswith(name_starts)]
    script: str = step["run"]
    return script


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(  # git with fixed arguments
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _week(workspace: Path, temp: Path, run_id: str, now: str, env: dict[str, str]) -> str:
    """Run the restore, send and save steps as GitHub would; return the run's state path."""
    temp.mkdir()
    github_env, github_output = temp / "env", temp / "output"
    step_env = {
        **env,
        "RUNNER_TEMP": str(temp),
        "GITHUB_ENV": str(github_env),
        "GITHUB_OUTPUT": str(github_output),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_RUN_ID": run_id,
        "GITHUB_EVENT_NAME": "schedule",
        "STATE_BRANCH": "curator-state",
    }
    bash = shutil.which("bash") or "/bin/bash"
    subprocess.run(
        [bash, "-e", "-c", _step("Restore state")], cwd=workspace, env=step_env, check=True
    )
    for line in github_env.read_text().splitlines():
        name, _, value = line.partition("=")
        step_env[name] = value
    send = subprocess.run(
        [sys.executable, "-m", "curator", "send", "--now", now],
        cwd=workspace,
        env={**step_env, "CURATOR_TO": ", ".join(READERS)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert send.returncode == 0, send.stderr
    outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
    step_env["STATE_DIR"] = outputs["dir"]
    subprocess.run([bash, "-e", "-c", _step("Save state")], cwd=workspace, env=step_env, check=True)
    return step_env["CURATOR_STATE"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_workflow_pushes_only_the_encrypted_state(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Two weekly runs of the workflow's scripts: the state travels between them, and nothing
    on the pushed branch (any commit, file or message) holds an address or the subject."""
    feed = feed_server.add(
        "/ron.xml",
        rss([Item("Lead from the middle", "https://ron.example/m/", utc("2026-11-24T10:00"))]),
    )
    origin, workspace = tmp_path / "origin.git", tmp_path / "work"
    _git("init", "--quiet", "--bare", str(origin), cwd=tmp_path)
    workspace.mkdir()
    write_config(workspace, CONFIG.format(feed=feed).replace(f"[{', '.join(READERS)}]", "[]"))
    _git("init", "--quiet", "-b", "main", cwd=workspace)
    _git("add", "feeds.yaml", cwd=workspace)
    _git("commit", "--quiet", "-m", "code", cwd=workspace)
    _git("remote", "add", "origin", str(origin), cwd=workspace)
    _git("push", "--quiet", "origin", "main", cwd=workspace)
    # `curator` on PATH runs this test run's code, as the workflow's installed one would.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "curator"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m curator "$@"\n')
    shim.chmod(0o755)
    env = curator_env({"CURATOR_STATE_KEY": KEY})
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"

    _week(workspace, tmp_path / "run1", "1", "2026-11-26T08:00:00Z", env)
    feed_server.add(
        "/ron.xml",
        rss([Item("Lead again", "https://ron.example/n/", utc("2026-12-01T10:00"))]),
    )
    state = _week(workspace, tmp_path / "run2", "2", "2026-12-03T08:00:00Z", env)

    with Store.open(Path(state)) as store:
        periods = [s.issue.period for s in store.history()]
    assert sorted(periods) == ["2026-W48", "2026-W49"]  # week 1's state came back in week 2
    files = _git("ls-tree", "-r", "--name-only", "curator-state", cwd=origin).split()
    assert files == ["state.enc"]
    pushed = subprocess.run(  # everything on the state branch, as plain text
        ["git", "fast-export", "curator-state"], cwd=origin, check=True, capture_output=True
    ).stdout
    for secret in [*READERS, TITLE, "ann.reader", "Lead from the middle"]:
        assert secret.encode() not in pushed, secret


def test_export_refuses_a_short_key(config: Path, tmp_path: Path) -> None:
    """A key shorter than 16 characters could be guessed from the public file: refused."""
    code, _, err = run(config, "state", "export", str(tmp_path / "s.enc"), key="hunter2")
    assert code == 2
    assert "too short (7 characters)" in err
    assert not (tmp_path / "s.enc").exists()


def test_import_through_a_linked_state_replaces_its_target(config: Path, tmp_path: Path) -> None:
    """`--state` through a symlink: import writes the real file (the one the run lock guards)
    and the link stays a link."""
    target = tmp_path / "state.enc"
    assert run(config, "state", "export", str(target))[0] == 0
    real = tmp_path / "elsewhere" / "real.db"
    real.parent.mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(real)
    result = RUNNER.invoke(
        app,
        ["--config", str(config), "--state", str(link), "state", "import", str(target)],
        env={"CURATOR_STATE_KEY": KEY},
    )
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and real.is_file()
    assert real.read_bytes()[:16] == b"SQLite format 3\x00"
