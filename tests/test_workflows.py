"""The GitHub Actions workflows keep the promises the README makes about the weekly job.

actionlint (in .ci/run) checks that the files are valid; these tests check our own rules: no
overlap, least privilege, secrets and inputs never pasted into a script, state saved even when
the send fails, the same weekly time everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"

pytestmark = pytest.mark.skipif(
    not WORKFLOWS.is_dir(), reason="runs from a repository checkout, not an unpacked sdist"
)


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((WORKFLOWS / name).read_text(encoding="utf-8"))
    return data


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _send_step(weekly: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in _steps(weekly) if 'curator "${args' in s.get("run", "")]
    return step


def test_weekly_runs_queue_instead_of_overlapping_or_cancelling() -> None:
    """Two weekly runs share one concurrency group and a running one is never cancelled."""
    concurrency = _load("weekly-digest.yml")["concurrency"]
    assert concurrency["group"]
    assert concurrency["cancel-in-progress"] is False


def test_weekly_job_holds_only_the_permissions_each_job_needs() -> None:
    """Nothing at the top level; contents:write for the state push; Pages rights to deploy."""
    weekly = _load("weekly-digest.yml")
    assert weekly["permissions"] == {}
    assert weekly["jobs"]["send"]["permissions"] == {"contents": "write"}
    assert weekly["jobs"]["publish"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert weekly["jobs"]["keepalive"]["permissions"] == {"actions": "write"}


def test_the_schedule_is_kept_enabled_and_the_operator_told() -> None:
    """After each scheduled run a job re-enables the workflow through the REST API and says in
    the run summary what to do if GitHub turns the schedule off anyway."""
    keepalive = _load("weekly-digest.yml")["jobs"]["keepalive"]
    assert "schedule" in keepalive["if"]
    (step,) = keepalive["steps"]
    assert "actions/workflows/weekly-digest.yml/enable" in step["run"]
    assert "GITHUB_STEP_SUMMARY" in step["run"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "60 days" in readme
    assert "Enable workflow" in readme


@pytest.mark.parametrize("name", ["weekly-digest.yml", "ci.yml"])
def test_no_secret_or_input_is_pasted_into_a_shell_script(name: str) -> None:
    """run: scripts read secrets and inputs from env, so no value can turn into a command."""
    for step in _steps(_load(name)):
        script = step.get("run", "")
        assert not re.search(r"\$\{\{\s*(secrets|inputs|github\.event)\.", script), step


def test_secrets_reach_only_the_steps_that_need_them() -> None:
    """Only `curator send` sees the SMTP password and the recipients; only the restore and
    save steps see the state key."""
    weekly = _load("weekly-digest.yml")
    send = _send_step(weekly)
    assert send["env"]["CURATOR_SMTP_PASSWORD"] == "${{ secrets.CURATOR_SMTP_PASSWORD }}"
    assert send["env"]["CURATOR_TO"] == "${{ secrets.CURATOR_TO }}"
    keyed = [s for s in _steps(weekly) if "secrets.CURATOR_STATE_KEY" in str(s)]
    assert [s["name"].split()[0] for s in keyed] == ["Restore", "Save"]
    for step in _steps(weekly):
        if step is not send and step not in keyed:
            assert "secrets." not in str(step), step
        if step is not send:
            assert "CURATOR_TO" not in str(step) and "PASSWORD" not in str(step), step


def test_manual_run_offers_dry_run_forced_resend_and_test_address() -> None:
    """workflow_dispatch has the three inputs, each wired to its `curator send` flag."""
    weekly = _load("weekly-digest.yml")
    inputs = weekly["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"dry_run", "force", "test_address"}
    script = _send_step(weekly)["run"]
    for flag in ("--dry-run", "--force", "--to"):
        assert flag in script


def test_state_is_saved_even_after_a_failed_send() -> None:
    """The ledger of who got the issue must survive a run that fails part-way."""
    (save,) = [s for s in _steps(_load("weekly-digest.yml")) if " push " in s.get("run", "")]
    assert "always()" in save["if"]


def test_workflow_timer_and_readme_agree_on_the_weekly_time() -> None:
    """The Actions cron, the systemd timer and the README's crontab line all say Monday 07:00;
    the workflow's second schedule is the daily collection of replies."""
    workflow = _load("weekly-digest.yml")
    weekly, daily = [entry["cron"] for entry in workflow["on"]["schedule"]]
    assert (weekly, daily) == ("0 7 * * 1", "0 6 * * *")
    send = workflow["jobs"]["send"]
    assert send["if"] == (
        "github.event.schedule != '0 6 * * *' || vars.CURATOR_COLLECT_REPLIES == 'true'"
    )
    script = "\n".join(step.get("run", "") for step in send["steps"])
    assert 'if [ "$SCHEDULE" = "0 6 * * *" ]; then\n  curator replies' in script
    timer = (ROOT / "contrib" / "systemd" / "curator.timer").read_text(encoding="utf-8")
    assert "OnCalendar=Mon *-*-* 07:00:00 UTC" in timer
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^0 7 \* \* 1 ", readme, re.MULTILINE)


def test_ci_tests_every_supported_python() -> None:
    """The CI matrix runs 3.11, 3.12 and 3.13 with lint, types and tests."""
    ci = _load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    job = ci["jobs"]["test"]
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    for command in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert command in scripts


def test_ci_here_and_on_github_run_the_same_tests_with_the_same_skips() -> None:
    """.ci/run and ci.yml run one pytest command, strict about skips, with no corpus path."""
    (step,) = [s for s in _steps(_load("ci.yml")) if s.get("name") == "pytest"]
    github = step["run"].strip()
    local = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if "pytest -p" in line
    ]
    assert local == [github.replace("pytest", ".venv/bin/pytest", 1)]
    assert github.startswith("CURATOR_ONLY_BROWSER_SKIPS=1 ")
    assert "CURATOR_CORPUS" not in github and "-m" not in github.split()
