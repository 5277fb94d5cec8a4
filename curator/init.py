"""``curator init``: a ready newsletter folder, so the first run has something that works.

Writes ``feeds.yaml`` (the two writers, the question bank, outbox delivery: the file this
repository ships), a ``.gitignore`` for curator's working files and, on request, the weekly
GitHub Actions workflow. A file that is already there is kept as it is, never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from curator.errors import ConfigError

GITIGNORE = """\
# curator's working files. The state (.curator/) is a database that says what was sent to whom:
# keep it (back it up, or let the weekly workflow carry it), but not in this repository's history.
# The outbox and preview folders hold built messages, with reader addresses in them.
.curator/
outbox/
preview/
"""


@dataclass(frozen=True)
class InitReport:
    lines: tuple[str, ...]
    written: tuple[Path, ...]
    kept: tuple[Path, ...]


def skeleton_path(name: str) -> Path:
    """A file ``init`` copies: inside the installed package, else from the source tree."""
    packaged = Path(__file__).parent / "skeleton" / name
    if packaged.is_file():
        return packaged
    root = Path(__file__).resolve().parent.parent
    return {
        "feeds.yaml": root / "feeds.yaml",
        "weekly-digest.yml": root / ".github" / "workflows" / "weekly-digest.yml",
    }[name]


def run_init(folder: Path, *, github: bool = False) -> InitReport:
    """Write the newsletter's files into ``folder`` (made when missing); keep what exists."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{folder} is a file, not a folder", hint="give a folder: `curator init DIR`"
        )
    files: list[tuple[Path, str]] = [
        (Path("feeds.yaml"), skeleton_path("feeds.yaml").read_text(encoding="utf-8")),
        (Path(".gitignore"), GITIGNORE),
    ]
    if github:
        workflow = skeleton_path("weekly-digest.yml").read_text(encoding="utf-8")
        files.append((Path(".github") / "workflows" / "weekly-digest.yml", workflow))
    written: list[Path] = []
    kept: list[Path] = []
    lines: list[str] = []
    for relative, text in files:
        target = folder / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # "x": created here or not at all; an existing file is never touched.
            with target.open("x", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:
            kept.append(target)
            lines.append(f"kept {target} (already there; not overwritten)")
            continue
        except OSError as exc:
            raise ConfigError(
                f"cannot write {target}: {exc.strerror or exc}",
                hint="check that the folder is writable, or choose another: `curator init DIR`",
            ) from exc
        written.append(target)
        lines.append(f"wrote {target}")
    lines += _next_steps(folder, github=github)
    return InitReport(tuple(lines), tuple(written), tuple(kept))


def _next_steps(folder: Path, *, github: bool) -> list[str]:
    here = folder.resolve() == Path.cwd().resolve()
    option = "" if here else f" --config {Path(os.path.relpath(folder)) / 'feeds.yaml'}"
    steps = [
        "",
        "next: edit newsletter.title, from and to in feeds.yaml, then:",
        f"  curator doctor{option}           check the feeds, delivery and the From domain",
        f"  curator preview{option} --open   see this week's issue",
        f"  curator send{option}             send it (to outbox/ until delivery is set up)",
    ]
    if github:
        steps.append(
            "the workflow installs curator with `pip install .`: keep this folder in a clone "
            "of curator, or change that step to install it from where you get it"
        )
    return steps
