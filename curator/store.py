"""curator's state in one SQLite file. The only module that imports sqlite3.

The schema is one SQL string; later changes are numbered migrations applied in order and
recorded in ``PRAGMA user_version``. Every write that must be atomic (freezing an issue with its
posts, deliveries and question) is one transaction. Times are stored as ISO 8601 UTC text.

Longer than the ~450 lines a module should keep to, on purpose: the schema, its migrations and
every query that reads or writes it belong in one place, so one file shows all SQL curator runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from curator.errors import BusyError, StateFileError, StoreError
from curator.models import (
    Answer,
    DeliveryRow,
    DeliveryStatus,
    EntryData,
    FetchResult,
    PersonalCopy,
    Post,
    ReaderSummary,
    SourceCursor,
    StoredIssue,
    Validators,
)

# Re-exported: these value types lived here before moving to models with the rest.
from curator.models import FeedHealth as FeedHealth  # noqa: PLC0414 - explicit re-export
from curator.models import IssueSummary as IssueSummary  # noqa: PLC0414 - explicit re-export
from curator.models import QuestionUse as QuestionUse  # noqa: PLC0414 - explicit re-export
from curator.tokens import TokenKey, new_secret

SCHEMA = """
CREATE TABLE feeds (
    url                  TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    title                TEXT,
    etag                 TEXT,
    last_modified        TEXT,
    content_hash         TEXT,
    last_attempt         TEXT,
    last_success         TEXT,
    last_status          INTEGER,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    redirect_to          TEXT,
    gone                 INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE entries (
    id            INTEGER PRIMARY KEY,
    feed_url      TEXT NOT NULL,
    feed_name     TEXT NOT NULL,
    key           TEXT NOT NULL,
    title         TEXT NOT NULL,
    link          TEXT,
    canonical_url TEXT,
    author        TEXT,
    published     TEXT,
    updated       TEXT,
    first_seen    TEXT NOT NULL,
    excerpt       TEXT NOT NULL DEFAULT '',
    word_count    INTEGER NOT NULL DEFAULT 0,
    image         TEXT,
    categories    TEXT NOT NULL DEFAULT '[]',
    UNIQUE (feed_url, key)
);
CREATE INDEX entries_seen ON entries (first_seen);
CREATE TABLE issues (
    id              INTEGER PRIMARY KEY,
    period          TEXT NOT NULL,
    round           INTEGER NOT NULL,
    built_at        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    html            TEXT NOT NULL,
    text            TEXT NOT NULL,
    question        TEXT,
    question_reason TEXT,
    UNIQUE (period, round)
);
CREATE TABLE issue_posts (
    issue_id INTEGER NOT NULL REFERENCES issues (id),
    entry_id INTEGER NOT NULL REFERENCES entries (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (issue_id, entry_id)
);
CREATE INDEX issue_posts_entry ON issue_posts (entry_id);
CREATE TABLE deliveries (
    issue_id   INTEGER NOT NULL REFERENCES issues (id),
    recipient  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    answer     TEXT,
    error      TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    -- set when the message is handed to the server, cleared when its outcome is recorded:
    -- a pending row that still has it was in flight when a run died
    handed_over_at TEXT,
    PRIMARY KEY (issue_id, recipient)
);
CREATE TABLE question_uses (
    id       INTEGER PRIMARY KEY,
    question TEXT NOT NULL,
    reason   TEXT,
    issue_id INTEGER REFERENCES issues (id),
    period   TEXT NOT NULL,
    used_at  TEXT NOT NULL
);
"""

# Numbered migrations: MIGRATIONS[n] brings a database from user_version n+1 to n+2.
# Version 1 is SCHEMA itself.
MIGRATIONS: tuple[str, ...] = (
    # 2: how long each feed's last fetch took, so the slowest start first next time.
    "ALTER TABLE feeds ADD COLUMN last_elapsed REAL",
    # 3: what a feed declares about a post's media: duration, audio or video, picture size.
    "ALTER TABLE entries ADD COLUMN duration INTEGER;"
    "ALTER TABLE entries ADD COLUMN media_kind TEXT;"
    "ALTER TABLE entries ADD COLUMN image_width INTEGER;"
    "ALTER TABLE entries ADD COLUMN image_height INTEGER",
    # 4: the reflection loop: readers, their replies, where replies were read up to, and
    # the keys that sign reply tokens. Addresses and replies live only here, never in logs.
    """
    CREATE TABLE readers (
        id              INTEGER PRIMARY KEY,
        address         TEXT NOT NULL UNIQUE,
        created_at      TEXT NOT NULL,
        unsubscribed_at TEXT
    );
    CREATE TABLE replies (
        id          INTEGER PRIMARY KEY,
        reader_id   INTEGER NOT NULL REFERENCES readers (id),
        issue_id    INTEGER NOT NULL REFERENCES issues (id),
        received_at TEXT NOT NULL,
        text        TEXT NOT NULL,
        sender      TEXT,
        message_id  TEXT NOT NULL
    );
    CREATE INDEX replies_reader ON replies (reader_id, issue_id);
    -- every message handled (answer, unsubscribe or ignored), so none is counted twice
    CREATE TABLE reply_messages (
        message_id TEXT PRIMARY KEY,
        outcome    TEXT NOT NULL,
        seen_at    TEXT NOT NULL
    );
    CREATE TABLE reply_sources (
        source      TEXT PRIMARY KEY,
        uidvalidity INTEGER NOT NULL,
        last_uid    INTEGER NOT NULL
    );
    CREATE TABLE reply_keys (
        id         INTEGER PRIMARY KEY,
        secret     BLOB NOT NULL,
        created_at TEXT NOT NULL,
        retired_at TEXT
    );
    -- each reader's own parts of a frozen issue, so a resend after a crash sends the same copy
    ALTER TABLE deliveries ADD COLUMN personal_html TEXT;
    ALTER TABLE deliveries ADD COLUMN personal_text TEXT;
    ALTER TABLE deliveries ADD COLUMN personal_headers TEXT
    """,
)
SCHEMA_VERSION = 1 + len(MIGRATIONS)


_ISSUES = (
    "SELECT i.*, (SELECT COUNT(*) FROM issue_posts p WHERE p.issue_id = i.id) AS post_count "
    "FROM issues i"
)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


P = ParamSpec("P")
R = TypeVar("R")


def _mapped(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """Map what SQLite (or a value it holds) raises inside a Store method to StoreError.

    A file can be damaged after it opened well (``database disk image is malformed``, a table
    someone dropped, a timestamp edited by hand); that is the user's problem to fix, said in
    one line, not a traceback. Applied to every public method; a test walks them all.
    """

    def mapped(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot use the state file {self.path}: {exc}",
                hint=_DAMAGED_HINT,
            ) from exc
        except ValueError as exc:  # fromisoformat or json.loads on a value curator did not write
            raise StoreError(
                f"the state file {self.path} holds a value curator cannot read: {exc}",
                hint=_DAMAGED_HINT,
            ) from exc

    functools.update_wrapper(mapped, method)
    return mapped


_DAMAGED_HINT = (
    "another program may hold it, or it is damaged: move it away to start afresh "
    "(or restore a copy), or pass --state PATH"
)


class Store:
    """The state database. Open with :meth:`open`; close with :meth:`close` or ``with``."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating when needed) and migrate the state file at ``path``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _private(path)
            connection = sqlite3.connect(path, timeout=10, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the state file {path}: {exc}",
                hint="check that its folder exists and is writable, or pass --state PATH",
            ) from exc
        connection.row_factory = sqlite3.Row
        store = cls(connection, path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            # FULL: a delivery marked sent must survive a power cut too, or the next run
            # would send it again. The cost is one fsync per recipient, small beside SMTP.
            connection.execute("PRAGMA synchronous=FULL")
            store._migrate()
        except sqlite3.OperationalError as exc:
            connection.close()
            raise StoreError(
                f"cannot use the state file {path}: {exc}",
                hint="check that it is a file you may read and write, or pass --state PATH",
            ) from exc
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise StoreError(
                f"{path} is not a curator state file ({exc})",
                hint="move it away to start afresh, or pass --state PATH",
            ) from exc
        except BaseException:
            connection.close()
            raise
        return store

    @staticmethod
    def integrity_problem(path: Path) -> str | None:
        """What SQLite's ``PRAGMA integrity_check`` finds wrong with the file at ``path``, read
        only (nothing is created, migrated or locked for writing); None when it is sound."""
        try:
            uri = f"{path.resolve().as_uri()}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            return f"cannot open it: {exc}"
        try:
            rows = [str(row[0]) for row in connection.execute("PRAGMA integrity_check(5)")]
            tables = {
                str(row[0])
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.Error as exc:
            return f"not a curator state file ({exc})"
        finally:
            connection.close()
        if rows != ["ok"]:
            return "; ".join(rows)
        if tables and "issues" not in tables:
            return "an SQLite file, but not curator's state"
        return None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer curator (schema {version})",
                hint="upgrade curator",
            )
        with self.transaction():
            if version == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                version = 1
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------ whole-state copies

    def snapshot(self, target: Path) -> None:
        """Copy the whole state, consistent as of now, into a new self-contained file at
        ``target`` (SQLite's online backup; no WAL side file is needed to read it)."""
        try:
            copy = sqlite3.connect(target, isolation_level=None)
            try:
                self.db.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
            finally:
                copy.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot copy the state to {target}: {exc}") from exc

    @staticmethod
    def check_snapshot(path: Path) -> None:
        """Raise :class:`StateFileError` unless ``path`` is a whole, readable curator state:
        sound by :meth:`integrity_problem`, with a schema this curator knows."""
        problem = Store.integrity_problem(path)
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise StateFileError(f"the file is not a curator state ({exc})") from exc
        if problem is None and (not 1 <= version <= SCHEMA_VERSION or "deliveries" not in tables):
            problem = f"schema {version}, tables {len(tables)}"
        if problem is not None:
            raise StateFileError(f"the file is not a whole curator state ({problem})")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: everything inside lands, or nothing does.

        Inside another transaction it simply joins it, so a caller can make many small writes
        one commit (and one fsync)."""
        if self.db.in_transaction:
            yield
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(
                f"the state file {self.path} is locked or unwritable: {exc}",
                hint="wait for the other curator run to finish, then try again",
            ) from exc
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # the error being raised says more
                self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the state file {self.path}: {exc}") from exc

    # ------------------------------------------------------------ feeds

    @_mapped
    def validators(self) -> dict[str, Validators]:
        rows = self.db.execute("SELECT url, etag, last_modified, content_hash FROM feeds")
        return {
            row["url"]: Validators(row["etag"], row["last_modified"], row["content_hash"])
            for row in rows
        }

    @_mapped
    def record_fetch(
        self, result: FetchResult, now: datetime, feed_title: str | None = None
    ) -> None:
        """Remember how a feed's fetch went: validators and health."""
        feed = result.feed
        v = result.validators
        with self.transaction():
            self.db.execute(
                "INSERT INTO feeds (url, name, last_elapsed) VALUES (?, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET name = excluded.name, "
                "last_elapsed = excluded.last_elapsed",
                (feed.url, feed.name, result.elapsed),
            )
            if result.ok:
                self.db.execute(
                    """UPDATE feeds SET etag = ?, last_modified = ?, content_hash = ?,
                       last_attempt = ?, last_success = ?, last_status = ?, last_error = NULL,
                       consecutive_failures = 0, redirect_to = ?, gone = 0,
                       title = COALESCE(?, title)
                       WHERE url = ?""",
                    (v.etag, v.last_modified, v.content_hash, _iso(now), _iso(now),
                     result.http_status, result.permanent_redirect, feed_title, feed.url),
                )  # fmt: skip
            else:
                self.db.execute(
                    """UPDATE feeds SET last_attempt = ?, last_status = ?, last_error = ?,
                       consecutive_failures = consecutive_failures + 1,
                       redirect_to = COALESCE(?, redirect_to), gone = ?
                       WHERE url = ?""",
                    (_iso(now), result.http_status, result.error, result.permanent_redirect,
                     int(result.gone), feed.url),
                )  # fmt: skip

    @_mapped
    def feed_titles(self) -> dict[str, str]:
        """Each feed's own title, as its last good fetch gave it."""
        rows = self.db.execute("SELECT url, title FROM feeds WHERE title IS NOT NULL")
        return {row["url"]: row["title"] for row in rows}

    @_mapped
    def feed_health(self) -> dict[str, FeedHealth]:
        rows = self.db.execute(
            """SELECT f.*, COUNT(e.id) AS entry_count,
                      MAX(COALESCE(e.published, e.first_seen)) AS last_post
               FROM feeds f LEFT JOIN entries e ON e.feed_url = f.url GROUP BY f.url"""
        )
        return {
            row["url"]: FeedHealth(
                url=row["url"],
                name=row["name"],
                title=row["title"],
                last_attempt=_time(row["last_attempt"]),
                last_success=_time(row["last_success"]),
                last_status=row["last_status"],
                last_error=row["last_error"],
                consecutive_failures=row["consecutive_failures"],
                redirect_to=row["redirect_to"],
                gone=bool(row["gone"]),
                entry_count=row["entry_count"],
                last_post=_time(row["last_post"]),
                last_elapsed=row["last_elapsed"],
            )
            for row in rows
        }

    # ------------------------------------------------------------ entries

    @_mapped
    def save_entries(
        self, feed_url: str, feed_name: str, entries: Sequence[EntryData], now: datetime
    ) -> int:
        """Insert new entries and refresh known ones; return how many were new.

        A known entry keeps its first-seen time and its first published date, so an edit to
        an old post never makes it look new.
        """
        known = {
            row[0]
            for row in self.db.execute("SELECT key FROM entries WHERE feed_url = ?", (feed_url,))
        }
        with self.transaction():
            for e in entries:
                self.db.execute(
                    """INSERT INTO entries (feed_url, feed_name, key, title, link, canonical_url,
                         author, published, updated, first_seen, excerpt, word_count, image,
                         categories, duration, media_kind, image_width, image_height)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (feed_url, key) DO UPDATE SET
                         feed_name = excluded.feed_name, title = excluded.title,
                         link = excluded.link, canonical_url = excluded.canonical_url,
                         author = excluded.author, updated = excluded.updated,
                         excerpt = excluded.excerpt, word_count = excluded.word_count,
                         image = excluded.image, categories = excluded.categories,
                         duration = excluded.duration, media_kind = excluded.media_kind,
                         image_width = excluded.image_width,
                         image_height = excluded.image_height,
                         published = COALESCE(entries.published, excluded.published)""",
                    (feed_url, feed_name, e.key, e.title, e.link, e.canonical_url, e.author,
                     _iso(e.published), _iso(e.updated), _iso(now), e.excerpt, e.word_count,
                     e.image, json.dumps(list(e.categories)), e.duration, e.media_kind,
                     e.image_width, e.image_height),
                )  # fmt: skip
        return len({e.key for e in entries} - known)

    def _posts(self, where: str, params: Sequence[object]) -> list[Post]:
        rows = self.db.execute(f"SELECT * FROM entries WHERE {where}", params)  # noqa: S608 - fixed fragments only
        return [_post(row) for row in rows]

    @_mapped
    def unsent_posts(self, since: datetime) -> list[Post]:
        """Entries in no issue yet whose date (or first-seen time, when undated) is after
        ``since``. The fine rules of the window are select's; this only narrows the read."""
        return self._posts(
            """id NOT IN (SELECT entry_id FROM issue_posts)
               AND COALESCE(published, first_seen) > ? ORDER BY id""",
            (_iso(since),),
        )

    @_mapped
    def unsent_posts_before(self, before: datetime, limit: int = 50) -> list[Post]:
        """Older entries never featured: what an ``archive`` empty week may resurface."""
        return self._posts(
            """id NOT IN (SELECT entry_id FROM issue_posts)
               AND COALESCE(published, first_seen) <= ?
               ORDER BY COALESCE(published, first_seen) DESC LIMIT ?""",
            (_iso(before), limit),
        )

    @_mapped
    def sent_posts_since(self, since: datetime, *, exclude_period: str | None = None) -> list[Post]:
        """Posts already in an issue built after ``since``: what dedupe must never repeat."""
        return self._posts(
            """id IN (SELECT ip.entry_id FROM issue_posts ip JOIN issues i ON i.id = ip.issue_id
                      WHERE i.built_at > ? AND i.period IS NOT ?)""",
            (_iso(since), exclude_period),
        )

    @_mapped
    def recent_lead_feeds(self, *, exclude_period: str | None = None, limit: int = 8) -> list[str]:
        """The feed of each recent issue's lead (its first post), newest issue first."""
        rows = self.db.execute(
            """SELECT e.feed_url FROM issues i
               JOIN issue_posts ip ON ip.issue_id = i.id AND ip.position = 0
               JOIN entries e ON e.id = ip.entry_id
               WHERE i.period IS NOT ?
               ORDER BY i.built_at DESC, i.id DESC LIMIT ?""",
            (exclude_period, limit),
        )
        return [row[0] for row in rows]

    @_mapped
    def issue_posts(self, issue_id: int) -> list[Post]:
        return self._posts(
            "id IN (SELECT entry_id FROM issue_posts WHERE issue_id = ?) ORDER BY id",
            (issue_id,),
        )

    # ------------------------------------------------------------ issues and deliveries

    @_mapped
    def freeze_issue(
        self,
        *,
        period: str,
        built_at: datetime,
        subject: str,
        html: str,
        text: str,
        question: str | None,
        question_reason: str | None,
        post_ids: Sequence[int],
        recipients: Sequence[str],
    ) -> StoredIssue:
        """Store a built issue with its posts, a pending delivery per recipient and its
        question, all in one transaction, before anything is sent."""
        with self.transaction():
            row = self.db.execute(
                "SELECT COALESCE(MAX(round), 0) + 1 FROM issues WHERE period = ?", (period,)
            ).fetchone()
            round_ = int(row[0])
            cursor = self.db.execute(
                """INSERT INTO issues (period, round, built_at, subject, html, text, question,
                     question_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (period, round_, _iso(built_at), subject, html, text, question, question_reason),
            )
            issue_id = int(cursor.lastrowid or 0)
            self.db.executemany(
                "INSERT INTO issue_posts (issue_id, entry_id, position) VALUES (?, ?, ?)",
                [(issue_id, post_id, i) for i, post_id in enumerate(post_ids)],
            )
            self.db.executemany(
                "INSERT INTO deliveries (issue_id, recipient, status, updated_at) "
                "VALUES (?, ?, 'pending', ?)",
                [(issue_id, r, _iso(built_at)) for r in recipients],
            )
            # A new round replaces the old one: what it still owed is now the new round's job.
            self.db.execute(
                """UPDATE deliveries SET status = 'failed', error = ?, updated_at = ?
                   WHERE status = 'pending' AND issue_id IN
                     (SELECT id FROM issues WHERE period = ? AND round < ?)""",
                (f"replaced by round {round_}", _iso(built_at), period, round_),
            )
        issue = self.issue(issue_id)
        assert issue is not None
        return issue

    @_mapped
    def issue(self, issue_id: int) -> StoredIssue | None:
        row = self.db.execute(f"{_ISSUES} WHERE i.id = ?", (issue_id,)).fetchone()
        return _issue(row) if row else None

    @_mapped
    def latest_issue(self, period: str | None = None) -> StoredIssue | None:
        """The newest issue (of ``period``, when given)."""
        if period is None:
            row = self.db.execute(f"{_ISSUES} ORDER BY i.built_at DESC, i.id DESC LIMIT 1")
        else:
            row = self.db.execute(
                f"{_ISSUES} WHERE i.period = ? ORDER BY i.round DESC LIMIT 1", (period,)
            )
        found = row.fetchone()
        return _issue(found) if found else None

    @_mapped
    def issues_with_pending(self, period: str, *, since: datetime) -> list[StoredIssue]:
        """Issues of periods other than ``period``, built after ``since``, that still owe
        someone a delivery; oldest first."""
        rows = self.db.execute(
            f"""{_ISSUES} WHERE i.period != ? AND i.built_at > ? AND EXISTS
                  (SELECT 1 FROM deliveries d WHERE d.issue_id = i.id AND d.status = 'pending')
                ORDER BY i.built_at, i.id""",  # noqa: S608 - _ISSUES is a fixed fragment
            (period, _iso(since)),
        )
        return [_issue(row) for row in rows]

    @_mapped
    def previous_issue(self, period: str) -> StoredIssue | None:
        """The newest issue of any period other than ``period``."""
        row = self.db.execute(
            f"{_ISSUES} WHERE i.period != ? ORDER BY i.built_at DESC, i.id DESC LIMIT 1",
            (period,),
        ).fetchone()
        return _issue(row) if row else None

    @_mapped
    def deliveries(self, issue_id: int) -> list[DeliveryRow]:
        rows = self.db.execute(
            "SELECT * FROM deliveries WHERE issue_id = ? ORDER BY rowid", (issue_id,)
        )
        return [
            DeliveryRow(
                issue_id=row["issue_id"],
                recipient=row["recipient"],
                status=row["status"],
                answer=row["answer"],
                error=row["error"],
                updated_at=_time(row["updated_at"]),
                handed_over_at=_time(row["handed_over_at"]),
            )
            for row in rows
        ]

    @_mapped
    def mark_handover(self, issue_id: int, recipients: Sequence[str], now: datetime) -> None:
        """Note that messages for ``recipients`` are about to be handed to the server.

        Committed before the server can accept them, so a run that dies before their outcome
        is recorded leaves a trace: the next run knows they may already have a copy.
        """
        with self.transaction():
            self.db.executemany(
                "UPDATE deliveries SET handed_over_at = ? WHERE issue_id = ? AND recipient = ?",
                [(_iso(now), issue_id, r) for r in recipients],
            )

    @_mapped
    def mark_delivery(
        self, issue_id: int, recipient: str, status: DeliveryStatus, detail: str, now: datetime
    ) -> None:
        """Record one recipient's outcome as soon as it is known."""
        column = "answer" if status == "sent" else "error"
        with self.transaction():
            self.db.execute(
                f"""UPDATE deliveries SET status = ?, {column} = ?, updated_at = ?,
                    attempts = attempts + 1, handed_over_at = NULL
                    WHERE issue_id = ? AND recipient = ? AND status != 'sent'""",  # noqa: S608 - column is one of two names
                (status, detail, _iso(now), issue_id, recipient),
            )
            if status == "sent":
                # A question counts as used once its issue reaches someone, not when it is
                # built: a period whose every delivery failed leaves the rotation as it was.
                self.db.execute(
                    """INSERT INTO question_uses (question, reason, issue_id, period, used_at)
                       SELECT question, question_reason, id, period, ? FROM issues
                       WHERE id = ? AND question IS NOT NULL AND NOT EXISTS
                         (SELECT 1 FROM question_uses q WHERE q.period = issues.period)""",
                    (_iso(now), issue_id),
                )

    @_mapped
    def history(self) -> list[IssueSummary]:
        rows = self.db.execute(
            """SELECT i.*,
                 (SELECT COUNT(*) FROM issue_posts p WHERE p.issue_id = i.id) AS post_count,
                 SUM(d.status = 'sent') AS n_sent, SUM(d.status = 'failed') AS n_failed,
                 SUM(d.status = 'pending') AS n_pending
               FROM issues i LEFT JOIN deliveries d ON d.issue_id = i.id
               GROUP BY i.id ORDER BY i.built_at, i.id"""
        )
        return [
            IssueSummary(
                issue=_issue(row),
                sent=int(row["n_sent"] or 0),
                failed=int(row["n_failed"] or 0),
                pending=int(row["n_pending"] or 0),
            )
            for row in rows
        ]

    @_mapped
    def question_uses(self) -> list[QuestionUse]:
        rows = self.db.execute("SELECT * FROM question_uses ORDER BY used_at, id")
        return [
            QuestionUse(row["question"], row["period"], datetime.fromisoformat(row["used_at"]))
            for row in rows
        ]

    # ------------------------------------------------------------ readers and replies

    @_mapped
    def reader_ids(self, addresses: Sequence[str], now: datetime) -> dict[str, int]:
        """Each address's reader id (its bare address, lower case, is the key), creating
        the readers not yet known."""
        bare = {a: _bare(a) for a in addresses}
        with self.transaction():
            self.db.executemany(
                "INSERT INTO readers (address, created_at) VALUES (?, ?) "
                "ON CONFLICT (address) DO NOTHING",
                [(b, _iso(now)) for b in dict.fromkeys(bare.values())],
            )
            ids = {
                row["address"]: int(row["id"])
                for row in self.db.execute("SELECT id, address FROM readers")
            }
        return {a: ids[b] for a, b in bare.items()}

    @_mapped
    def unsubscribed(self) -> set[str]:
        """The bare, lower-case addresses of readers who unsubscribed."""
        rows = self.db.execute("SELECT address FROM readers WHERE unsubscribed_at IS NOT NULL")
        return {str(row[0]) for row in rows}

    @_mapped
    def resubscribe(self, address: str) -> bool:
        """Clear an unsubscribe; False when that address never unsubscribed."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE readers SET unsubscribed_at = NULL "
                "WHERE address = ? AND unsubscribed_at IS NOT NULL",
                (_bare(address),),
            )
        return cursor.rowcount > 0

    @_mapped
    def seen_messages(self, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` were handled by an earlier collection."""
        found: set[str] = set()
        for start in range(0, len(message_ids), 500):
            chunk = list(message_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT message_id FROM reply_messages WHERE message_id IN ({marks})",  # noqa: S608 - only placeholders
                chunk,
            )
            found.update(str(row[0]) for row in rows)
        return found

    @_mapped
    def record_reply_message(
        self,
        message_id: str,
        outcome: str,
        now: datetime,
        *,
        reader_id: int | None = None,
        issue_id: int | None = None,
        text: str | None = None,
        sender: str | None = None,
        received_at: datetime | None = None,
        unsubscribe: bool = False,
    ) -> str:
        """Handle one incoming message in one transaction; return its outcome.

        An answer is stored only when its reader and issue exist (else the outcome becomes
        ``ignored``); a message seen before changes nothing and returns ``duplicate``."""
        with self.transaction():
            seen = self.db.execute(
                "SELECT 1 FROM reply_messages WHERE message_id = ?", (message_id,)
            ).fetchone()
            if seen:
                return "duplicate"
            if reader_id is not None:
                reader = self.db.execute(
                    "SELECT 1 FROM readers WHERE id = ?", (reader_id,)
                ).fetchone()
                issue = (
                    self.db.execute("SELECT 1 FROM issues WHERE id = ?", (issue_id,)).fetchone()
                    if text is not None
                    else True
                )
                if not reader or not issue:
                    outcome, reader_id, text, unsubscribe = "ignored", None, None, False
            if reader_id is not None and text is not None:
                self.db.execute(
                    """INSERT INTO replies (reader_id, issue_id, received_at, text, sender,
                         message_id) VALUES (?, ?, ?, ?, ?, ?)""",
                    (reader_id, issue_id, _iso(received_at or now), text, sender, message_id),
                )
            if reader_id is not None and unsubscribe:
                self.db.execute(
                    "UPDATE readers SET unsubscribed_at = COALESCE(unsubscribed_at, ?) "
                    "WHERE id = ?",
                    (_iso(now), reader_id),
                )
            self.db.execute(
                "INSERT INTO reply_messages (message_id, outcome, seen_at) VALUES (?, ?, ?)",
                (message_id, outcome, _iso(now)),
            )
        return outcome

    @_mapped
    def answers(self, address: str | None = None) -> list[Answer]:
        """Every stored answer (of one reader, when given), oldest issue first."""
        where, params = ("WHERE r.address = ?", (_bare(address),)) if address else ("", ())
        rows = self.db.execute(
            f"""SELECT r.address, i.id AS issue_id, i.period, i.built_at, i.question,
                       a.received_at, a.text, a.sender
                FROM replies a JOIN readers r ON r.id = a.reader_id
                JOIN issues i ON i.id = a.issue_id {where}
                ORDER BY i.built_at, a.received_at, a.id""",  # noqa: S608 - fixed fragments only
            params,
        )
        return [
            Answer(
                reader=row["address"],
                issue_id=row["issue_id"],
                period=row["period"],
                issue_date=datetime.fromisoformat(row["built_at"]),
                question=row["question"],
                received_at=datetime.fromisoformat(row["received_at"]),
                text=row["text"],
                sender=row["sender"],
            )
            for row in rows
        ]

    @_mapped
    def reader_summaries(self) -> list[ReaderSummary]:
        """Every address ever sent to or known as a reader, with its counts. A recipient
        written with a display name counts as its bare address."""
        counts: dict[str, list[int]] = {}
        for row in self.db.execute(
            "SELECT recipient, SUM(status = 'sent'), SUM(status = 'failed') "
            "FROM deliveries GROUP BY recipient"
        ):
            sent_failed = counts.setdefault(_bare(row[0]), [0, 0])
            sent_failed[0] += int(row[1] or 0)
            sent_failed[1] += int(row[2] or 0)
        readers = {
            row["address"]: row
            for row in self.db.execute(
                """SELECT r.id, r.address, r.unsubscribed_at, MAX(p.received_at) AS last_reply
                   FROM readers r LEFT JOIN replies p ON p.reader_id = r.id GROUP BY r.id"""
            )
        }
        summaries = []
        for address in sorted(set(counts) | set(readers)):
            delivered, failed = counts.get(address, [0, 0])
            reader = readers.get(address)
            summaries.append(
                ReaderSummary(
                    address=address,
                    delivered=delivered,
                    failed=failed,
                    last_reply=_time(reader["last_reply"]) if reader else None,
                    unsubscribed_at=_time(reader["unsubscribed_at"]) if reader else None,
                    number=int(reader["id"]) if reader else None,
                )
            )
        return summaries

    @_mapped
    def source_cursor(self, source: str) -> SourceCursor | None:
        row = self.db.execute(
            "SELECT uidvalidity, last_uid FROM reply_sources WHERE source = ?", (source,)
        ).fetchone()
        return SourceCursor(int(row[0]), int(row[1])) if row else None

    @_mapped
    def save_source_cursor(self, source: str, cursor: SourceCursor) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO reply_sources (source, uidvalidity, last_uid) VALUES (?, ?, ?) "
                "ON CONFLICT (source) DO UPDATE SET uidvalidity = excluded.uidvalidity, "
                "last_uid = excluded.last_uid",
                (source, cursor.uidvalidity, cursor.last_uid),
            )

    @_mapped
    def save_personal_copies(self, issue_id: int, copies: dict[str, PersonalCopy]) -> None:
        """Store each recipient's own parts on their delivery row. Called inside the
        transaction that freezes the issue (it joins it), so parts and issue land together."""
        with self.transaction():
            self.db.executemany(
                """UPDATE deliveries SET personal_html = ?, personal_text = ?,
                     personal_headers = ? WHERE issue_id = ? AND recipient = ?""",
                [
                    (c.html, c.text, json.dumps([list(h) for h in c.headers]), issue_id, r)
                    for r, c in copies.items()
                ],
            )

    @_mapped
    def personal_copies(self, issue_id: int) -> dict[str, PersonalCopy]:
        """The stored per-reader parts of an issue, by recipient (absent: none stored)."""
        rows = self.db.execute(
            """SELECT recipient, personal_html, personal_text, personal_headers
               FROM deliveries WHERE issue_id = ? AND personal_headers IS NOT NULL""",
            (issue_id,),
        )
        return {
            row["recipient"]: PersonalCopy(
                html=row["personal_html"] or "",
                text=row["personal_text"] or "",
                headers=tuple((str(k), str(v)) for k, v in json.loads(row["personal_headers"])),
            )
            for row in rows
        }

    # ------------------------------------------------------------ reply token keys

    @_mapped
    def token_keys(self) -> list[TokenKey]:
        """Every signing key, newest first."""
        rows = self.db.execute("SELECT * FROM reply_keys ORDER BY id DESC")
        return [
            TokenKey(
                id=int(row["id"]),
                secret=bytes(row["secret"]),
                created_at=datetime.fromisoformat(row["created_at"]),
                retired_at=_time(row["retired_at"]),
            )
            for row in rows
        ]

    @_mapped
    def signing_key(self, now: datetime) -> TokenKey:
        """The key that signs new tokens, made on first use."""
        with self.transaction():
            row = self.db.execute(
                "SELECT id FROM reply_keys WHERE retired_at IS NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                self.db.execute(
                    "INSERT INTO reply_keys (secret, created_at) VALUES (?, ?)",
                    (new_secret(), _iso(now)),
                )
        return next(k for k in self.token_keys() if k.retired_at is None)

    @_mapped
    def rotate_token_key(self, now: datetime) -> TokenKey:
        """Retire the signing key (it still verifies for a grace period) and make a new one."""
        with self.transaction():
            self.db.execute(
                "UPDATE reply_keys SET retired_at = ? WHERE retired_at IS NULL", (_iso(now),)
            )
            self.db.execute(
                "INSERT INTO reply_keys (secret, created_at) VALUES (?, ?)",
                (new_secret(), _iso(now)),
            )
        return next(k for k in self.token_keys() if k.retired_at is None)


def _private(path: Path) -> None:
    """Make the state file readable by its owner alone, whatever the umask: it holds readers'
    addresses and answers and the key that signs reply tokens. SQLite gives its side files
    (``-wal``, ``-shm``) the database file's permissions, so they follow."""
    real = path.resolve()  # a --state link to a file not made yet: make its target
    if not real.exists():
        os.close(os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    elif real.is_file() and real.stat().st_mode & 0o077:
        real.chmod(0o600)


def _bare(address: str) -> str:
    from curator.normalize import mailbox_key

    return mailbox_key(address)


def _post(row: sqlite3.Row) -> Post:
    first_seen = datetime.fromisoformat(row["first_seen"])
    return Post(
        id=row["id"],
        feed_url=row["feed_url"],
        feed_name=row["feed_name"],
        key=row["key"],
        title=row["title"],
        link=row["link"],
        canonical_url=row["canonical_url"],
        author=row["author"],
        published=_time(row["published"]),
        first_seen=first_seen,
        excerpt=row["excerpt"],
        word_count=row["word_count"],
        image=row["image"],
        categories=tuple(json.loads(row["categories"] or "[]")),
        duration=row["duration"],
        media_kind=row["media_kind"] if row["media_kind"] in ("audio", "video") else None,
        image_width=row["image_width"],
        image_height=row["image_height"],
    )


def _issue(row: sqlite3.Row) -> StoredIssue:
    return StoredIssue(
        id=row["id"],
        period=row["period"],
        round=row["round"],
        built_at=datetime.fromisoformat(row["built_at"]),
        subject=row["subject"],
        html=row["html"],
        text=row["text"],
        question=row["question"],
        post_count=int(row["post_count"]),
    )


class RunLock:
    """An exclusive lock beside the state file, held for a whole run.

    It is an ``flock``, so the kernel drops it when the process dies: a crash never leaves
    curator stuck. A second run does not wait: it fails at once with :class:`BusyError`.
    """

    def __init__(self, state_path: Path) -> None:
        # The lock belongs to the real file: two spellings of one state (a symlink, a relative
        # path, `..`) must meet at one lock, or two runs would each send every message.
        real = state_path.resolve()
        self.path = real.with_name(real.name + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a symlink planted at the lock's name is refused, never written through.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot create the lock file {self.path}: {exc.strerror or exc}",
                hint="if it is a symlink, remove it: curator makes the lock file itself",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BusyError(
                "another curator run is using this state right now",
                hint="wait for it to finish and run again; nothing was sent twice",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
