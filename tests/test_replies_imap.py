"""Collecting replies from a real IMAP server: pymap (its in-memory dict backend) started on
127.0.0.1 by a fixture, with replies appended over IMAP as a mail server would deliver them."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import free_port
from curator.errors import RepliesError
from curator.models import Config, ImapConfig
from curator.replies import CollectReport, ImapSource, collect_replies
from curator.reply_text import MAX_MESSAGE_BYTES
from curator.store import Store
from reply_kit import (
    ADDRESS,
    PASSWORD,
    USER,
    ImapServer,
    freeze,
    replies_config,
    reply_email,
    reply_to,
    running_imap,
)

NOW = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def imap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    """pymap on 127.0.0.1 offering STARTTLS with a throwaway CA, one demo user."""
    with running_imap(tmp_path_factory.mktemp("imap")) as server:
        yield server


def _config(tmp_path: Path, server: ImapServer, folder: str, **imap: object) -> Config:
    settings: dict[str, object] = {
        "host": "127.0.0.1", "port": server.port, "tls": "starttls", "username": USER,
        "password": PASSWORD, "folder": folder, "timeout": 5.0,
    }  # fmt: skip
    settings.update(imap)
    return replies_config(tmp_path, imap=ImapConfig(**settings))  # type: ignore[arg-type] # test kwargs


def _collect(config: Config, store: Store, server: ImapServer) -> CollectReport:
    assert config.replies is not None and config.replies.imap is not None
    source = ImapSource(config.replies.imap, ssl_context=server.context)
    return collect_replies(config, store, NOW, sources=[source])


def test_imap_first_then_nothing_new_then_uidvalidity_change(
    tmp_path: Path, imap_server: ImapServer
) -> None:
    """First run stores the answer; the second reads nothing; a rebuilt folder (new
    UIDVALIDITY) is read again without storing any answer twice."""
    folder = imap_server.new_folder()
    config = _config(tmp_path, imap_server, folder)
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "How are you going to do it?", "ann@example.com")
        to = reply_to(store, issue, "ann@example.com", NOW)
        first_reply = reply_email(to, "I will hand the budget review to Sam.\n\n> quoted")
        imap_server.append(
            folder, first_reply, reply_email(ADDRESS, "no token", message_id="<n@x>")
        )

        first = _collect(config, store, imap_server)
        second = _collect(config, store, imap_server)
        imap_server.rebuild(folder)
        imap_server.append(
            folder, first_reply, reply_email(to, "And Friday too.", message_id="<r3@x>")
        )
        third = _collect(config, store, imap_server)
        answers = [a.text for a in store.answers("ann@example.com")]

    assert (first.answers, first.ignored, first.problems) == (1, 1, ())
    assert (second.answers, second.ignored, second.already_seen) == (0, 0, 0)
    assert (third.answers, third.already_seen) == (1, 1)
    assert answers == ["I will hand the budget review to Sam.", "And Friday too."]
    assert len(imap_server.uids(folder)) == 2  # nothing deleted without `delete: true`


def test_imap_reply_with_attachment_and_html_only_reply(
    tmp_path: Path, imap_server: ImapServer
) -> None:
    """The words of a reply with a PDF attached, and of an HTML-only reply, are stored as text."""
    folder = imap_server.new_folder()
    config = _config(tmp_path, imap_server, folder)
    with Store.open(tmp_path / "state.db") as store:
        a = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com", "bob@example.com")
        imap_server.append(
            folder,
            reply_email(
                reply_to(store, a, "ann@example.com", NOW),
                "See my notes attached.",
                attachment=b"%PDF-1.4 not text",
            ),
            reply_email(
                reply_to(store, a, "bob@example.com", NOW),
                "",
                sender="bob@example.com",
                message_id="<h@x>",
                html="<div>Leading, <i>mostly</i> &amp; gladly.</div>"
                '<blockquote class="gmail_quote">Q?</blockquote>',
            ),
        )
        report = _collect(config, store, imap_server)
        answers = {a.reader: a.text for a in store.answers()}
    assert report.answers == 2
    assert answers == {
        "ann@example.com": "See my notes attached.",
        "bob@example.com": "Leading, mostly & gladly.",
    }


def test_imap_delete_true_deletes_a_message_on_the_collection_after_it_was_stored(
    tmp_path: Path, imap_server: ImapServer
) -> None:
    """With delete: true a collection deletes nothing it reads now; the next collection
    from the saved state deletes what the earlier one stored, and only that."""
    folder = imap_server.new_folder()
    config = _config(tmp_path, imap_server, folder, delete=True)
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        to = reply_to(store, issue, "ann@example.com", NOW)
        imap_server.append(folder, reply_email(to, "First answer."))
        first = _collect(config, store, imap_server)
        after_first = imap_server.uids(folder)
        imap_server.append(folder, reply_email(to, "Second answer.", message_id="<r2@x>"))
        second = _collect(config, store, imap_server)
        after_second = imap_server.uids(folder)
        third = _collect(config, store, imap_server)
        answers = [a.text for a in store.answers("ann@example.com")]
    assert (first.answers, second.answers, third.answers) == (1, 1, 0)
    assert (first.problems, second.problems, third.problems) == ((), (), ())
    assert len(after_first) == 1
    assert after_second == [after_first[0] + 1]
    assert imap_server.uids(folder) == []
    assert answers == ["First answer.", "Second answer."]


def test_imap_delete_true_loses_no_answer_when_a_run_state_is_never_saved(
    tmp_path: Path, imap_server: ImapServer
) -> None:
    """A run whose state is thrown away (a CI push that failed) deleted nothing, so the next
    run, from the last saved state, still finds and stores the answer."""
    folder = imap_server.new_folder()
    with Store.open(tmp_path / "state.db") as saved:
        issue = freeze(saved, "2026-W10", NOW, "Q?", "ann@example.com")
        to = reply_to(saved, issue, "ann@example.com", NOW)
    (tmp_path / "lost").mkdir()
    lost_path = tmp_path / "lost" / "state.db"
    lost_path.write_bytes((tmp_path / "state.db").read_bytes())
    imap_server.append(folder, reply_email(to, "Keep me."))
    with Store.open(lost_path) as lost:
        lost_run = _collect(
            _config(tmp_path / "lost", imap_server, folder, delete=True), lost, imap_server
        )
    with Store.open(tmp_path / "state.db") as saved:
        next_run = _collect(_config(tmp_path, imap_server, folder, delete=True), saved, imap_server)
        answers = [a.text for a in saved.answers("ann@example.com")]
    assert (lost_run.answers, next_run.answers) == (1, 1)
    assert answers == ["Keep me."]
    assert len(imap_server.uids(folder)) == 1  # deleted only by a run after a saved one


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "wrong-password"}, "LoginError"),
        ({"port": 1}, "Error"),
        ({"folder": "NoSuchFolder"}, "NoSuchFolder"),
        ({"password": None}, "no password"),
    ],
    ids=["bad-password", "closed-port", "no-folder", "no-password"],
)
def test_unreachable_imap_is_a_problem_not_a_crash(
    tmp_path: Path, imap_server: ImapServer, change: dict[str, object], expected: str
) -> None:
    """A mailbox that cannot be read is one problem line naming the mailbox, never the secret."""
    settings = {"folder": "INBOX", **change}
    folder = str(settings.pop("folder"))
    config = _config(tmp_path, imap_server, folder, **settings)
    with Store.open(tmp_path / "state.db") as store:
        report = _collect(config, store, imap_server)
    problems = report.problems
    assert len(problems) == 1 and expected in problems[0].message
    assert "wrong-password" not in problems[0].message and PASSWORD not in problems[0].message
    assert USER not in problems[0].message


def test_imap_message_over_the_bound_is_counted_not_read(
    tmp_path: Path, imap_server: ImapServer
) -> None:
    """A reply over 1 MB is skipped by its size, counted, and not read again next time."""
    folder = imap_server.new_folder()
    config = _config(tmp_path, imap_server, folder)
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        to = reply_to(store, issue, "ann@example.com", NOW)
        imap_server.append(folder, reply_email(to, "x" * (MAX_MESSAGE_BYTES + 10)))
        first = _collect(config, store, imap_server)
        second = _collect(config, store, imap_server)
    assert (first.answers, first.too_large) == (0, 1)
    assert (second.answers, second.too_large) == (0, 0)


@contextlib.contextmanager
def echoing_imap() -> Iterator[int]:
    """A plain-text IMAP server on 127.0.0.1 that refuses every login by quoting it back,
    with the AUTHENTICATE PLAIN form (base64 of NUL user NUL password) beside it."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:  # until the listener is closed
                connection, _ = listener.accept()
                answer(connection)

    def answer(connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection, connection.makefile("rwb") as stream:
            stream.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] echo ready\r\n")
            stream.flush()
            for line in stream:
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                if rest.upper().startswith(b"CAPABILITY"):
                    stream.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                else:
                    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
                    stream.write(tag + b" NO you sent " + rest + b" = " + plain + b"\r\n")
                    stream.flush()
                    return
                stream.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() the thread waits in
        listener.close()
        thread.join(timeout=5)


def test_a_server_that_echoes_the_password_does_not_show_it(tmp_path: Path) -> None:
    """The problem line and its exception chain hold neither the password nor the username,
    in clear or base64, when the server quotes the login back."""
    with echoing_imap() as port:
        imap = ImapConfig(
            host="127.0.0.1", port=port, tls="none", username=USER, password=PASSWORD, timeout=5.0
        )
        config = replies_config(tmp_path, imap=imap)
        with Store.open(tmp_path / "state.db") as store:
            report = collect_replies(config, store, NOW, sources=[ImapSource(imap)])
        with pytest.raises(RepliesError) as caught:
            ImapSource(imap).read(None)
    chain = "".join(traceback.format_exception(caught.value))
    shown = [p.message for p in report.problems] + [chain]
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    assert "LoginError" in shown[0] and "you sent" in shown[0]
    for text in shown:
        for secret in (PASSWORD, encoded, "ZGVtby1zZWNyZXQtcHc", USER):
            assert secret not in text


def test_probe_logs_in_and_reads_no_message(tmp_path: Path, imap_server: ImapServer) -> None:
    """`probe` (what doctor runs) logs in and selects the folder read-only: it counts the
    messages, reads none and leaves them unseen; a wrong password is a RepliesError that
    shows no secret."""
    folder = imap_server.new_folder()
    imap_server.append(folder, reply_email(ADDRESS, "hello", message_id="<p@x>"))
    config = _config(tmp_path, imap_server, folder)
    assert config.replies is not None and config.replies.imap is not None
    said = ImapSource(config.replies.imap, ssl_context=imap_server.context).probe()
    assert said.endswith("logged in, 1 message in the folder")
    with Store.open(tmp_path / "state.db") as store:
        report = _collect(config, store, imap_server)
    assert report.ignored == 1  # still there, still unread: the probe took nothing
    wrong = _config(tmp_path, imap_server, folder, password="not-the-password")
    assert wrong.replies is not None and wrong.replies.imap is not None
    with pytest.raises(RepliesError) as caught:
        ImapSource(wrong.replies.imap, ssl_context=imap_server.context).probe()
    assert "not-the-password" not in str(caught.value)
