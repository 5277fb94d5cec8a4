"""The benchmark runs end to end at a tiny size; it proves the harness works, not any speed.

The benchmarks package lives in the repository, not in the wheel, so it runs as a subprocess
from the repository root (where ``python -m benchmarks`` finds it) against the installed
`curator` beside this Python.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ROOT / "benchmarks" / "runner.py").exists(), reason="needs the repository checkout"
    ),
]


def test_benchmark_at_five_feeds_prints_every_scenario_with_a_verdict(tmp_path: Path) -> None:
    """Five feeds, one run: floors, every scenario with PASS/FAIL, 304s on the warm run."""
    out = tmp_path / "rows.json"
    command = [sys.executable, "-m", "benchmarks", "run", "--feeds", "5", "--big", "8"]
    command += ["--runs", "1", "--startup-runs", "1", "--hang-timeout", "1", "--stall", "1"]
    command += ["--json", str(out)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {row["scenario"]: row for row in json.loads(out.read_text())["rows"]}
    for floor in ("network floor, 5 feeds", "parse floor, 5 feeds"):
        assert rows[floor]["seconds"] > 0
    judged = [
        "cold `curator fetch`, 5 feeds",
        "warm `curator fetch` (304s), 5 feeds",
        "`curator send --dry-run`, 5 feeds",
        "warm fetch, 1 of 5 feeds hanging",
        "cold `send --dry-run`, 1 of 5 feeds stalling 1 s",
        "`curator --help`",
        "`curator --version`",
        "render a 40-post issue",
        "cold `curator fetch`, 8 feeds (1 run)",
        "peak RSS, 8 feeds cold",
    ]
    for name in judged:
        assert type(rows[name]["passed"]) is bool, name  # a verdict, not a missing one
        assert name in done.stdout, name
    # The server answered the warm run's conditional requests with 304 Not Modified.
    assert "'304': 4" in rows["warm `curator fetch` (304s), 5 feeds"]["note"]
    assert rows["rss2email"]["note"].endswith("not measured")
    assert "| scenario" in done.stdout
