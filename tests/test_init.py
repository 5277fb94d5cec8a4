"""`curator init`: a ready newsletter folder, never overwriting, ending with what to run next."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from curator.cli import app
from curator.config import load_config
from curator.init import skeleton_path

SHIPPED = Path(__file__).resolve().parent.parent


def test_init_in_an_empty_folder_writes_a_working_newsletter(tmp_path: Path) -> None:
    """feeds.yaml (the two writers, the shipped question bank, outbox), .gitignore; the last
    lines are the three commands to run next."""
    folder = tmp_path / "weekly"
    result = CliRunner().invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == [".gitignore", "feeds.yaml"]
    config = load_config(folder / "feeds.yaml")
    assert [(f.name, f.url) for f in config.feeds] == [
        ("Ron Edmondson", "https://ronedmondson.com/feed/"),
        ("Michael Hyatt", "https://michaelhyatt.com/feed/"),
    ]
    assert config.questions == load_config(SHIPPED / "feeds.yaml").questions
    assert config.delivery.method == "outbox"
    assert {".curator/", "outbox/", "preview/"} <= set((folder / ".gitignore").read_text().split())
    steps = [line.split()[:2] for line in result.stdout.splitlines()[-3:]]
    assert steps == [["curator", "doctor"], ["curator", "preview"], ["curator", "send"]]
    assert f"--config {folder.name}/feeds.yaml" in result.stdout or str(folder) in result.stdout


def test_init_in_a_folder_with_files_keeps_them(tmp_path: Path) -> None:
    """An existing feeds.yaml and .gitignore are kept byte for byte and said to be kept; the
    missing workflow is still written."""
    (tmp_path / "feeds.yaml").write_text("feeds:\n  - https://mine.example/feed\n")
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["init", str(tmp_path), "--github"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "feeds.yaml").read_text() == "feeds:\n  - https://mine.example/feed\n"
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n"
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert "kept" in result.stdout and "feeds.yaml" in result.stdout
    workflow = tmp_path / ".github" / "workflows" / "weekly-digest.yml"
    assert workflow.read_text() == (SHIPPED / ".github/workflows/weekly-digest.yml").read_text()
    again = CliRunner().invoke(app, ["init", str(tmp_path), "--github"])
    assert again.exit_code == 0 and "wrote" not in again.stdout


def test_init_refuses_a_file_as_the_folder(tmp_path: Path) -> None:
    """DIR naming a file is a usage error with what to do; the file is untouched."""
    target = tmp_path / "feeds.yaml"
    target.write_text("x")
    result = CliRunner().invoke(app, ["init", str(target)])
    assert result.exit_code == 2
    assert "not a folder" in result.stderr and "curator init DIR" in result.stderr
    assert target.read_text() == "x"


def test_the_skeleton_files_exist() -> None:
    """What init copies is found (in the wheel or the source tree)."""
    assert skeleton_path("feeds.yaml").is_file()
    assert skeleton_path("weekly-digest.yml").is_file()
