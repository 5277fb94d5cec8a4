"""The send ledger: exactly one copy per recipient when curator is killed mid-delivery or run
twice at once, and a store that never downgrades a recorded delivery."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_smtp import smtp_config

from conftest import wait_for
from curator.store import RunLock, Store
from mail_kit import Mailbox, curator_env, mail_server, start_curator

PEOPLE = [f"reader{n}@example.org" for n in range(1, 6)]
NOW = "2026-11-26T08:00:00Z"


def config_for(folder: Path, feed: str, port: int) -> Path:
    return smtp_config(folder, feed, port, to=PEOPLE, timeout=10)


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def issues_in(config: Path) -> list[tuple[str, int, int, int]]:
    """(period, delivered, failed, pending) per issue, read from the state file."""
    with Store.open(config.parent / ".curator" / "state.db") as store:
        return [(s.issue.period, s.sent, s.failed, s.pending) for s in store.history()]


def test_sigkill_mid_delivery_then_rerun_gives_everyone_exactly_one_copy(
    feed: str, tmp_path: Path
) -> None:
    """curator killed with SIGKILL while the server holds the 3rd message: the rerun delivers
    the rest, and every recipient holds exactly one copy."""
    with mail_server(Mailbox(hold_at=3)) as box:
        config = config_for(tmp_path, feed, box.port)
        env = curator_env({"CURATOR_NOW": NOW})
        process = start_curator(config, "send", env=env)
        try:
            assert box.held.wait(60), "curator never reached the 3rd message"
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        box.release.set()
        assert box.copies() == dict.fromkeys(PEOPLE[:2], 1)
        assert issues_in(config) == [("2026-W48", 2, 0, 3)]

        box.hold_at = None
        code, out, err = finish(start_curator(config, "send", env=env))
        assert code == 0, err
        assert "completing 2026-W48: 3 recipients left" in out
        assert "1 recipient was being delivered when a run stopped" in out
        assert "@" not in out + err  # counted, never named
        assert box.copies() == dict.fromkeys(PEOPLE, 1)
        assert issues_in(config) == [("2026-W48", 5, 0, 0)]


def test_a_second_send_while_one_runs_exits_at_once(feed: str, tmp_path: Path) -> None:
    """While one send holds the lock, a second exits 1 at once with a clear message and sends
    nothing; the first then finishes with one copy per recipient."""
    with mail_server(Mailbox(hold_at=1)) as box:
        config = config_for(tmp_path, feed, box.port)
        env = curator_env({"CURATOR_NOW": NOW})
        first = start_curator(config, "send", env=env)
        try:
            assert box.held.wait(60), "the first send never reached the server"
            code, _, err = finish(start_curator(config, "send", env=env), timeout=30)
        finally:
            box.release.set()
        assert code == 1
        assert "another curator run is using this state" in err
        assert "Traceback" not in err
        # The held message was answered 451: it stays pending for the next run.
        code, _, err = finish(first)
        assert code == 1, err
        assert sorted(box.copies()) == PEOPLE[1:]
        box.hold_at = None
        code, _, err = finish(start_curator(config, "send", env=env))
        assert code == 0, err
        assert box.copies() == dict.fromkeys(PEOPLE, 1)
        assert issues_in(config) == [("2026-W48", 5, 0, 0)]


def test_two_sends_started_together_make_one_issue_and_one_copy_each(
    feed: str, tmp_path: Path
) -> None:
    """Two `curator send` started at the same moment: one issue, one copy per recipient; the
    loser either finds the lock taken (exit 1) or the issue already sent (exit 0)."""
    with mail_server() as box:
        config = config_for(tmp_path, feed, box.port)
        env = curator_env({"CURATOR_NOW": NOW})
        both = [start_curator(config, "send", env=env) for _ in range(2)]
        results = [finish(p) for p in both]
        codes = sorted(code for code, _, _ in results)
        assert codes in ([0, 0], [0, 1]), results
        for code, out, err in results:
            if code == 1:
                assert "another curator run is using this state" in err
            else:
                assert "sent 2026-W48" in out or "already sent" in out
        assert box.copies() == dict.fromkeys(PEOPLE, 1)
        assert issues_in(config) == [("2026-W48", 5, 0, 0)]


def test_the_run_lock_is_exclusive_and_dies_with_its_holder(tmp_path: Path) -> None:
    """A held lock refuses a second holder at once; a killed holder leaves it free."""
    from curator.errors import BusyError

    state = tmp_path / "state.db"
    with RunLock(state), pytest.raises(BusyError), RunLock(state):
        pass
    holder = subprocess.Popen(  # a child that takes the lock and sleeps until killed
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from curator.store import RunLock\n"
            "lock = RunLock(Path(sys.argv[1])).__enter__(); print('held', flush=True);"
            " time.sleep(60)",
            str(state),
        ],
        env=curator_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError):
            RunLock(state).__enter__()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert wait_for(lambda: _free(state))


def _free(state: Path) -> bool:
    from curator.errors import BusyError

    try:
        with RunLock(state):
            return True
    except BusyError:
        return False


def test_a_sent_delivery_is_never_downgraded(tmp_path: Path) -> None:
    """Once a recipient is marked sent, a late pending or failed result does not change it."""
    moment = datetime(2026, 11, 26, 8, tzinfo=UTC)
    with Store.open(tmp_path / "state.db") as store:
        issue = store.freeze_issue(
            period="2026-W48",
            built_at=moment,
            subject="s",
            html="<p>h</p>",
            text="t",
            question=None,
            question_reason=None,
            post_ids=[],
            recipients=["a@example.org"],
        )
        store.mark_handover(issue.id, ["a@example.org"], moment)
        (row,) = store.deliveries(issue.id)
        assert row.handed_over_at == moment
        store.mark_delivery(issue.id, "a@example.org", "sent", "250 ok", moment)
        store.mark_delivery(issue.id, "a@example.org", "pending", "421 late", moment)
        (row,) = store.deliveries(issue.id)
        assert (row.status, row.answer, row.handed_over_at) == ("sent", "250 ok", None)


def test_a_send_through_a_symlinked_state_meets_the_same_lock(feed: str, tmp_path: Path) -> None:
    """Two concurrent sends, one naming the state by a symlink: the second exits 1 at once, and
    every recipient gets one copy."""
    with mail_server(Mailbox(hold_at=1)) as box:
        config = config_for(tmp_path, feed, box.port)
        real = tmp_path / "real" / "state.db"
        real.parent.mkdir()
        link = tmp_path / "link.db"
        link.symlink_to(real)
        env = curator_env({"CURATOR_NOW": NOW})
        first = start_curator(config, "--state", str(real), "send", env=env)
        try:
            assert box.held.wait(60), "the first send never reached the server"
            second = start_curator(config, "--state", str(link), "send", env=env)
            code, _, err = finish(second, timeout=30)
        finally:
            box.release.set()
        assert code == 1, err
        assert "another curator run is using this state" in err
        finish(first)
        box.hold_at = None
        code, _, err = finish(start_curator(config, "--state", str(link), "send", env=env))
        assert code == 0, err
        assert box.copies() == dict.fromkeys(PEOPLE, 1)


def test_a_symlink_planted_at_the_lock_is_refused_not_written_through(tmp_path: Path) -> None:
    """The lock file is opened without following a symlink: the target is never touched."""
    from curator.errors import StoreError

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    state = tmp_path / "state.db"
    (tmp_path / "state.db.lock").symlink_to(victim)
    with pytest.raises(StoreError, match="cannot create the lock file"), RunLock(state):
        pass
    assert victim.read_text() == "keep me\n"
