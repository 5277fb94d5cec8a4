"""The command line. The only module that imports typer.

Each command does three things: read the config, call one library function in
:mod:`curator.app` (or :mod:`curator.manage`, :mod:`curator.doctor`, :mod:`curator.init`), and
turn what comes back (or a :class:`CuratorError`) into output and the contract's exit code:
0 done, 1 the job failed, 2 usage or configuration error.

Shared parts every command uses, so a new command behaves like the old ones:

- :func:`print_table` prints a listing: a table that fits the terminal on a terminal, and
  tab-separated rows under one header row anywhere else (a pipe, a file, a CI log).
- :func:`feed_progress` shows a progress bar on stderr on a terminal, nothing off one.
- The global options (``--config``, ``--state``, ``--debug``) are accepted before or after the
  command: :func:`hoist_global_options` moves them in front before click parses.
- Every command's help gets its whole first line as its summary and an example
  (:data:`EXAMPLES`), filled in by :func:`_finish_help` once all commands are defined.

Longer than the ~450 lines a module should keep to, on purpose: it is one short function per
command and the tables they print, and it must stay the only module that imports typer.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from curator import __version__
from curator.errors import CuratorError

if TYPE_CHECKING:
    from curator.models import Config, FeedOutcome
    from curator.plan import Note

T = TypeVar("T")

# ---------------------------------------------------------------- global options anywhere

_GLOBAL_FLAGS = frozenset({"--debug"})
_GLOBAL_WITH_VALUE = frozenset({"--config", "-c", "--state"})


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Move the global options to the front, wherever they were given.

    ``curator history --debug`` then means ``curator --debug history``, as in git. Everything
    after ``--`` is left alone, and so is an option missing its value (click reports it)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if arg in _GLOBAL_FLAGS or (name in _GLOBAL_WITH_VALUE and "=" in arg):
            front.append(arg)
        elif arg in _GLOBAL_WITH_VALUE and i + 1 < len(args):
            front += [arg, args[i + 1]]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class _AnywhereGroup(TyperGroup):
    """The root group: global options may follow the command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        parsed: list[str] = super().parse_args(ctx, hoist_global_options(args))
        return parsed


class _ManPageCommand(TyperCommand):
    """A command whose help reads like a man page: arguments by their metavar in capitals
    (``URL``, ``[DIR]``), never a type name (typer's own help shows ``{url}``, ``url <str>``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        params = self.get_params(ctx)
        pieces = ["[OPTIONS]"] if any(p.param_type_name == "option" for p in params) else []
        for param in params:
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), getattr(param, "help", None) or ""))
            elif param.param_type_name == "option":
                record = param.get_help_record(ctx)
                if record is not None:
                    options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _argument_name(param: Any) -> str:
    return str(param.metavar or (param.name or "").upper())


app = typer.Typer(
    name="curator",
    cls=_AnywhereGroup,
    help="Turn the writers you learn from into one well-made weekly email.\n\n"
    "A new newsletter: `curator init`, then `curator doctor`, then `curator preview`.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
feeds_app = typer.Typer(help="Manage the sources in feeds.yaml.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
replies_app = typer.Typer(
    help="Collect readers' replies (new answers, unsubscribes); `send` does this first itself.",
    invoke_without_command=True,
)
app.add_typer(replies_app, name="replies")

state_app = typer.Typer(
    help="Carry the whole state as one file, encrypted with CURATOR_STATE_KEY.",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")

# One example per command, shown at the end of its --help (see _finish_help).
EXAMPLES: dict[str, str] = {
    "init": "curator init newsletter --github",
    "doctor": "curator doctor --config newsletter/feeds.yaml",
    "send": "curator send --to me@example.org",
    "preview": "curator preview --open",
    "fetch": "curator fetch | grep failed",
    "history": "curator history",
    "questions": "curator questions --now 2026-11-30",
    "feeds list": "curator feeds list | cut -f1,2",
    "feeds add": "curator feeds add ronedmondson.com --tag leadership",
    "feeds remove": 'curator feeds remove "Michael Hyatt"',
    "feeds check": "curator feeds check --fix",
    "feeds import": "curator feeds import subscriptions.opml",
    "feeds export": "curator feeds export --out feeds.opml",
    # Commands other branches add; an entry for a command not (yet) here is harmless.
    "state export": "curator state export state.enc  # key from env CURATOR_STATE_KEY",
    "state import": "curator state import state.enc  # key from env CURATOR_STATE_KEY",
    "replies": "curator replies",
    "replies rotate-key": "curator replies rotate-key",
    "journal": "curator journal --format md > journal.md",
    "readers": "curator readers | cut -f1,2",
}


# ---------------------------------------------------------------- output helpers


def _cell(value: object) -> str:
    return re.sub(r"[\t\r\n]+", " ", str(value))


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    notes: Sequence[str] = (),
    narrow: Sequence[str] = (),
) -> None:
    """Print a listing on stdout: a table that fits the terminal's width on a terminal, else
    one header row and one tab-separated row per item (tabs and newlines in a cell become
    spaces).

    ``notes`` are summary lines: under the table on a terminal, on stderr off one, so a pipe
    reads rows only. Columns named in ``narrow`` (counts, short codes) are never wrapped."""
    from rich.console import Console

    # Feed titles are data: no rich markup ("[b]"), emoji codes or highlighting in them.
    out = Console(highlight=False, markup=False, emoji=False)
    if not out.is_terminal:
        lines = ["\t".join(_cell(c) for c in row) for row in [columns, *rows]]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        for note in notes:
            typer.echo(note, err=True)
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    for column in columns:
        if column in narrow:
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(c) for c in row))
    out.print(table)
    for note in notes:
        out.print(note)


@contextlib.contextmanager
def feed_progress(total: int, label: str = "fetching") -> Iterator[Callable[[FeedOutcome], None]]:
    """A callback that advances a progress bar on stderr, on a terminal; off one it does
    nothing (logs get the command's own lines, not a bar redrawn a hundred times)."""
    from rich.console import Console

    err = Console(stderr=True)
    if not err.is_terminal or total == 0:
        yield lambda outcome: None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def advance(outcome: FeedOutcome) -> None:
            bar.advance(task)

        yield advance


# ---------------------------------------------------------------- settings and errors


class _Settings:
    def __init__(self, config: Path | None, state: Path | None, debug: bool) -> None:
        self.config = config
        self.state = state
        self.debug = debug


def _version(value: bool) -> None:
    if value:
        typer.echo(f"curator {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="PATH",
            help="feeds.yaml to use (default ./feeds.yaml, or $CURATOR_CONFIG). "
            "Before or after the command.",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            metavar="PATH",
            help="State database (default .curator/state.db beside the config, or "
            "$CURATOR_STATE). Before or after the command.",
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show tracebacks on errors. Before or after the command."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """curator: one digest email of the writers you follow, with a question for the week."""
    ctx.obj = _Settings(config, state, debug)


def _settings(ctx: typer.Context) -> _Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, _Settings) else _Settings(None, None, False)


def _fail(error: CuratorError, debug: bool) -> typer.Exit:
    from curator.redact import env_secrets, redact

    # The last guard: whatever a server echoed, no secret from the environment is printed.
    secrets = env_secrets()
    if debug:
        shown = "".join(traceback.format_exception(error))
        typer.echo(redact(shown, secrets), err=True, nl=False)
    typer.echo(redact(f"curator: error: {error}", secrets), err=True)
    if error.hint:
        typer.echo(f"  {redact(error.hint, secrets)}", err=True)
    return typer.Exit(error.exit_code)


def _guard(ctx: typer.Context, work: Callable[[], T]) -> T:
    """Run ``work``; a CuratorError becomes one or two clean lines and its exit code."""
    debug = _settings(ctx).debug
    try:
        return work()
    except CuratorError as error:
        raise _fail(error, debug) from None
    except KeyboardInterrupt:
        typer.echo("curator: interrupted", err=True)
        raise typer.Exit(130) from None


def _config_path(ctx: typer.Context) -> Path:
    from curator.config import resolve_config_path

    return resolve_config_path(_settings(ctx).config, os.environ)


def _load(ctx: typer.Context) -> Config:
    from curator.config import load_config

    return load_config(_config_path(ctx), state_path=_settings(ctx).state)


def _now(option: str | None, config: Config) -> datetime:
    from curator.config import parse_now

    zone = config.newsletter.timezone
    if option:
        return parse_now(option, timezone=zone)
    if os.environ.get("CURATOR_NOW"):
        return parse_now(os.environ["CURATOR_NOW"], source="CURATOR_NOW", timezone=zone)
    return datetime.now(UTC)


def _step_summary(text: str) -> None:
    """Append ``text`` to the file GITHUB_STEP_SUMMARY names, when it names one. A summary
    that cannot be written is said on stderr; the run's own outcome stands."""
    from curator.redact import env_secrets, redact

    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    text = redact(text, env_secrets())  # the summary is on the run's public page
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(text)
    except OSError as exc:
        typer.echo(f"curator: cannot write the run summary to {path}: {exc.strerror}", err=True)


def _in_ci() -> bool:
    """Whether this runs in CI: env CI or GITHUB_ACTIONS set to true (GitHub sets both)."""
    return any(os.environ.get(name, "").lower() == "true" for name in ("CI", "GITHUB_ACTIONS"))


def _say(note: Note) -> None:
    """Word one of the library's notes by its level: problems to stderr, the story to stdout."""
    prefix = {"error": "curator: error: ", "note": "note: "}.get(note.level, "")
    typer.echo(f"{prefix}{note.text}", err=note.level in ("warning", "error"))


RetryFailedOption = Annotated[
    bool,
    typer.Option(
        "--retry-failed", help="Fetch feeds resting after failures now, ignoring their backoff."
    ),
]

NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        metavar="TS",
        help="Act as if it were this time: ISO 8601 with Z or an offset, or a date "
        "(default now; or $CURATOR_NOW).",
    ),
]


# ---------------------------------------------------------------- start and check


@app.command()
def init(
    ctx: typer.Context,
    folder: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="Folder to set up (default: this one)."),
    ] = Path("."),
    github: Annotated[
        bool,
        typer.Option("--github", help="Also write the weekly GitHub Actions workflow."),
    ] = False,
) -> None:
    """Start a newsletter: write feeds.yaml (two writers, a question bank, outbox delivery)
    and .gitignore into DIR; never overwrites a file."""
    from curator.init import run_init

    def work() -> None:
        report = run_init(folder, github=github)
        for line in report.lines:
            typer.echo(line)

    _guard(ctx, work)


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Check the config, the state, every feed, delivery (without sending), the replies
    mailboxes and the From domain's SPF and DMARC records; exits 1 if anything fails."""
    from curator.doctor import run_doctor

    def work() -> int:
        settings = _settings(ctx)
        report = run_doctor(_config_path(ctx), state_path=settings.state, env=os.environ)
        print_table(
            ("check", "result", "detail"),
            [(c.subject, c.status, c.detail + (f" ({c.hint})" if c.hint else "")) for c in report],
            notes=[_doctor_summary(report)],
            narrow=("result",),
        )
        return 1 if any(c.status == "fail" for c in report) else 0

    raise typer.Exit(_guard(ctx, work))


def _doctor_summary(checks: Sequence[Any]) -> str:
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("ok", "warn", "fail")}
    verdict = "fix the failed rows, then run doctor again" if counts["fail"] else "ready"
    return f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail: {verdict}"


# ---------------------------------------------------------------- the issue


@app.command()
def send(  # noqa: PLR0917 - each typer option is a parameter
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and write to the outbox; record nothing.")
    ] = False,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            metavar="ADDR",
            help="Send a test copy to ADDR only (repeat it, or separate addresses with commas); "
            "nothing is recorded.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send this period's issue again, to everyone.")
    ] = False,
    retry_failed: RetryFailedOption = False,
    now: NowOption = None,
) -> None:
    """Fetch all feeds, build this period's issue, deliver it and record it."""
    from curator.app import SendOptions, run_send
    from curator.config import recipients_from_text
    from curator.summary import failure_summary, send_summary

    def work() -> int:
        config = _load(ctx)
        addresses = recipients_from_text(to or [], "--to")
        options = SendOptions(
            dry_run=dry_run,
            to=tuple(addresses),
            force=force,
            retry_failed=retry_failed,
            ci=_in_ci(),
        )
        try:
            with feed_progress(len(config.enabled_feeds)) as progress:
                report = run_send(config, options, _now(now, config), progress=progress)
        except CuratorError as error:
            _step_summary(failure_summary("send", str(error)))
            raise
        for note in report.notes:
            _say(note)
        _step_summary(send_summary(report))
        return report.exit_code

    code = _guard(ctx, work)
    raise typer.Exit(code)


@app.command()
def preview(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for issue.html, issue.txt, issue.eml (default preview/ beside the "
            "config).",
        ),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML in the default browser.")
    ] = False,
    retry_failed: RetryFailedOption = False,
    now: NowOption = None,
) -> None:
    """Build the issue send would send now and write it to files, without sending or
    recording it."""
    from curator.app import run_preview

    def work() -> None:
        config = _load(ctx)
        with feed_progress(len(config.enabled_feeds)) as progress:
            report = run_preview(
                config,
                _now(now, config),
                out or config.base_dir / "preview",
                retry_failed=retry_failed,
                progress=progress,
            )
        for line in report.lines:
            typer.echo(line)
        if open_browser and report.html_path is not None:
            webbrowser.open(report.html_path.resolve().as_uri())

    _guard(ctx, work)


@app.command()
def fetch(
    ctx: typer.Context, retry_failed: RetryFailedOption = False, now: NowOption = None
) -> None:
    """Fetch and store all feeds; print a status row per feed."""
    from curator.app import run_fetch
    from curator.summary import failure_summary, fetch_summary

    def work() -> int:
        from rich.console import Console

        config = _load(ctx)
        total = len(config.enabled_feeds)
        if Console(stderr=True).is_terminal:
            with feed_progress(total) as advance:
                outcomes = run_fetch(
                    config, _now(now, config), progress=advance, retry_failed=retry_failed
                )
        else:
            # Off a terminal each feed gets a line as it finishes: a log shows which feed a
            # long run is waiting for.
            def line(outcome: FeedOutcome) -> None:
                print(
                    f"fetched {outcome.feed.name}: {_fetch_status(outcome)}",
                    file=sys.stderr,
                    flush=True,
                )

            outcomes = run_fetch(
                config, _now(now, config), progress=line, retry_failed=retry_failed
            )
        failed = sum(1 for o in outcomes if not o.ok or o.resting)
        new = sum(o.new_entries for o in outcomes)
        print_table(
            ("feed", "status", "new", "time", "note"),
            [_fetch_row(o) for o in outcomes],
            notes=[f"{total} feeds: {total - failed} ok, {failed} failed or resting; {new} new"],
            narrow=("new", "time"),
        )
        code = 1 if outcomes and failed == len(outcomes) else 0
        _step_summary(fetch_summary(outcomes, code))
        return code

    def summarised() -> int:
        try:
            return work()
        except CuratorError as error:
            _step_summary(failure_summary("fetch", str(error)))
            raise

    raise typer.Exit(_guard(ctx, summarised))


def _fetch_row(o: FeedOutcome) -> tuple[str, str, str, str, str]:
    """feed, status, new entries, time, note: one feed's line of `curator fetch`."""
    note = o.error or (o.parsed.warning if o.parsed and o.parsed.warning else "")
    if o.fetch.status == "skipped":
        note = o.fetch.error or ""
    if o.fetch.permanent_redirect:
        moved = f"moved for good to {o.fetch.permanent_redirect}: update feeds.yaml"
        note = f"{moved}; {note}" if note else moved
    elapsed = "" if o.fetch.status == "skipped" else f"{o.fetch.elapsed:.2f}s"
    return o.feed.name, _fetch_status(o), str(o.new_entries), elapsed, note


def _fetch_status(o: FeedOutcome) -> str:
    """One word or code for a feed's fetch: what the status column shows."""
    if o.fetch.ok and not o.ok:
        return "bad feed"
    if o.fetch.status == "failed" and o.fetch.http_status:
        return f"failed ({o.fetch.http_status})"
    return {
        "ok": "ok",
        "not_modified": "304",
        "unchanged": "same",
        "failed": "failed",
        "skipped": "backed off",
    }[o.fetch.status]


@app.command()
def history(ctx: typer.Context) -> None:
    """List the issues built: period, date, posts, recipients delivered/failed, question."""
    from curator.app import run_history

    def work() -> None:
        rows = run_history(_load(ctx))
        print_table(
            ("period", "round", "built (UTC)", "posts", "delivered", "failed", "pending",
             "question"),
            [
                (i.issue.period, i.issue.round, f"{i.issue.built_at:%Y-%m-%d %H:%M}",
                 i.issue.post_count, i.sent, i.failed, i.pending, i.issue.question or "")
                for i in rows
            ],
            notes=[] if rows else ["no issues yet"],
            # Short codes and counts never wrap; the date wraps at its space, the question
            # takes what is left.
            narrow=("period", "round", "posts", "delivered", "failed", "pending"),
        )  # fmt: skip

    _guard(ctx, work)


@app.command()
def questions(ctx: typer.Context, now: NowOption = None) -> None:
    """Show the question bank, when each was last used, and which comes next."""
    from curator.app import run_questions

    def work() -> None:
        config = _load(ctx)
        rows = run_questions(config, _now(now, config))
        print_table(
            ("", "question", "themes", "last used", "this cycle"),
            [
                (
                    row.mark,
                    row.text,
                    ", ".join(row.themes),
                    row.last_used or "never",
                    "used" if row.used_in_cycle else "",
                )
                for row in rows
            ],
            notes=[f"{row.mark}: {row.text} ({row.reason})" for row in rows if row.reason],
            narrow=("",),
        )

    _guard(ctx, work)


# ---------------------------------------------------------------- feeds


@feeds_app.command("list")
def feeds_list(ctx: typer.Context) -> None:
    """List the sources: name, URL, tags, enabled, last post, last fetch status."""
    from curator.manage import run_feeds_list

    def work() -> None:
        listing = run_feeds_list(_load(ctx))
        rows = []
        for feed, h in listing:
            last_post = f"{h.last_post:%Y-%m-%d}" if h and h.last_post else "-"
            if h is None or h.last_attempt is None:
                status = "never fetched"
            elif h.last_error:
                status = f"failed: {h.last_error}"
            else:
                status = f"ok {h.last_status or ''} at {h.last_attempt:%Y-%m-%d %H:%M}".strip()
            rows.append((feed.name, feed.url, ", ".join(feed.tags),
                         "yes" if feed.enabled else "no", last_post, status))  # fmt: skip
        print_table(
            ("name", "url", "tags", "enabled", "last post", "last fetch"),
            rows,
            narrow=("enabled", "last post"),
        )

    _guard(ctx, work)


@feeds_app.command("add")
def feeds_add(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL", help="The feed's URL, or the writer's site: its feed is found."
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Name to show (default: the feed's title)."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="TAG", help="A tag for the feed; repeat for more."),
    ] = None,
) -> None:
    """Add a source by its feed URL or its site's address; comments in feeds.yaml are kept."""
    from curator.manage import run_feeds_add

    def work() -> None:
        report = run_feeds_add(_config_path(ctx), url, name=name, tags=tag or ())
        for line in report.lines:
            typer.echo(line)

    _guard(ctx, work)


@feeds_app.command("remove")
def feeds_remove(
    ctx: typer.Context,
    name_or_url: Annotated[
        str,
        typer.Argument(
            metavar="NAME_OR_URL",
            help="The feed to remove: its name (or, unnamed, its own title) or its URL.",
        ),
    ],
) -> None:
    """Remove a source by its name or URL; the rest of feeds.yaml is left as it was."""
    from curator.manage import known_titles, run_feeds_remove

    def work() -> None:
        path = _config_path(ctx)
        titles = known_titles(path, _settings(ctx).state, os.environ)
        for line in run_feeds_remove(path, name_or_url, titles=titles).lines:
            typer.echo(line)

    _guard(ctx, work)


@feeds_app.command("check")
def feeds_check(
    ctx: typer.Context,
    fix: Annotated[
        bool, typer.Option("--fix", help="Write moved and discovered feed URLs into feeds.yaml.")
    ] = False,
    now: NowOption = None,
) -> None:
    """Fetch every source now: status, last post, posts, errors and what to do about them;
    exits 1 when any source fails."""
    from curator.manage import run_feeds_check

    def work() -> int:
        config = _load(ctx)
        report = run_feeds_check(config, _now(now, config), fix=fix)
        print_table(
            ("feed", "status", "last post", "posts", "error", "suggestion"),
            [
                (row.feed.name, "fixed" if row.fixed else row.status,
                 f"{row.last_post:%Y-%m-%d}" if row.last_post else "-", row.posts,
                 row.error or "", "; ".join(row.suggestions))
                for row in report.rows
            ],
            notes=report.lines,
            narrow=("posts",),
        )  # fmt: skip
        return report.exit_code

    raise typer.Exit(_guard(ctx, work))


@feeds_app.command("import")
def feeds_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE.opml", help="An OPML subscription list.")],
) -> None:
    """Add the feeds an OPML file lists (no network; `feeds check` tests them)."""
    from curator.manage import run_feeds_import

    def work() -> None:
        for line in run_feeds_import(_config_path(ctx), file).lines:
            typer.echo(line)

    _guard(ctx, work)


@feeds_app.command("export")
def feeds_export(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="File to write (default: standard output)."),
    ] = None,
) -> None:
    """Write the sources as OPML 2.0, for other feed readers."""
    from curator.manage import run_feeds_export

    def work() -> None:
        report = run_feeds_export(_load(ctx), datetime.now(UTC), out)
        if out is None:
            sys.stdout.buffer.write(report.document)
            sys.stdout.flush()
        for line in report.lines:
            typer.echo(line, err=True)

    _guard(ctx, work)


@replies_app.callback()
def replies(ctx: typer.Context, now: NowOption = None) -> None:
    """Collect readers' replies from the configured mailboxes and print what was found."""
    if ctx.invoked_subcommand is not None:
        return
    from curator.replies import run_replies

    def work() -> int:
        config = _load(ctx)
        report = run_replies(config, _now(now, config))
        problems = {f"replies: {p.message}" for p in report.problems}
        for line in report.lines():
            typer.echo(line, err=line in problems)
        return 1 if report.problems else 0

    raise typer.Exit(_guard(ctx, work))


@replies_app.command("rotate-key")
def replies_rotate_key(ctx: typer.Context) -> None:
    """Make a new key for reply tokens; the old one still matches replies for 60 days."""
    from curator.replies import run_rotate_key

    def work() -> None:
        config = _load(ctx)
        key = run_rotate_key(config, datetime.now(UTC))
        typer.echo(f"new reply-token key {key.id}; the previous key still verifies for 60 days")

    _guard(ctx, work)


@app.command()
def journal(
    ctx: typer.Context,
    reader: Annotated[
        str | None, typer.Option("--reader", metavar="ADDR", help="Only this reader's answers.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", metavar="FORMAT", help="text, md (Markdown a reader can keep) or json."
        ),
    ] = "text",
) -> None:
    """Every answer readers gave, by date, issue and question."""
    from curator.errors import ConfigError
    from curator.replies import journal_answers, run_journal

    def work() -> None:
        if fmt not in ("text", "md", "json"):
            raise ConfigError(f"{fmt!r} is not one of text, md, json", key="--format")
        config = _load(ctx)
        if fmt != "text":
            typer.echo(run_journal(config, reader, fmt), nl=False)
            return
        header = ("date", "reader", "issue", "question", "answer")
        rows = [
            (f"{a.received_at:%Y-%m-%d}", a.reader, a.period, a.question or "", a.text)
            for a in journal_answers(config, reader)
        ]
        print_table(header, rows, narrow=("date",))

    _guard(ctx, work)


@app.command()
def readers(
    ctx: typer.Context,
    resubscribe: Annotated[
        str | None,
        typer.Option("--resubscribe", metavar="ADDR", help="Undo ADDR's unsubscribe."),
    ] = None,
) -> None:
    """Every recipient: delivered and failed counts, last reply, unsubscribed or not."""
    from curator.replies import run_readers

    def work() -> None:
        report = run_readers(_load(ctx), resubscribe)
        if resubscribe is not None:
            said = "resubscribed" if report.resubscribed else "was not unsubscribed"
            typer.echo(f"{resubscribe}: {said}", err=True)
        header = ("#", "address", "in to", "delivered", "failed", "last reply", "unsubscribed")
        rows = [
            (f"#{r.number}" if r.number else "-", r.address,
             "yes" if r.address in report.in_config else "no", str(r.delivered),
             str(r.failed), f"{r.last_reply:%Y-%m-%d}" if r.last_reply else "-",
             f"{r.unsubscribed_at:%Y-%m-%d}" if r.unsubscribed_at else "no")
            for r in report.rows
        ]  # fmt: skip
        print_table(header, rows, narrow=("#", "in to", "delivered", "failed", "last reply"))

    _guard(ctx, work)


@state_app.command("export")
def state_export(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The file to write.")],
    plain: Annotated[
        bool, typer.Option("--plain", help="Write it unencrypted (it holds every address).")
    ] = False,
) -> None:
    """Write the whole state to PATH, encrypted with the key in env CURATOR_STATE_KEY."""
    from curator.statefile import export_state

    _guard(ctx, lambda: typer.echo(export_state(_state_path(ctx), path, os.environ, plain=plain)))


@state_app.command("import")
def state_import(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="The exported file to read.")]
) -> None:
    """Replace the state with the one exported to PATH (decrypted with CURATOR_STATE_KEY)."""
    from curator.statefile import import_state

    _guard(ctx, lambda: typer.echo(import_state(path, _state_path(ctx), os.environ)))


def _state_path(ctx: typer.Context) -> Path:
    return _load(ctx).state_path


# ---------------------------------------------------------------- help text


def _finish_help(group: typer.Typer, prefix: str = "") -> None:
    """Give every command its whole first docstring paragraph as its summary in the command
    list (click would cut it at 45 characters) and its example from EXAMPLES as the epilog.

    Commands added later (by other modules or branches) get the same by being registered
    before this runs and having an entry in EXAMPLES; a test checks both."""
    for info in group.registered_commands:
        callback = info.callback
        name = info.name or (callback.__name__.replace("_", "-") if callback else "")
        doc = (callback.__doc__ or "") if callback else ""
        first = " ".join(doc.strip().split("\n\n", 1)[0].split())
        if info.cls in (None, TyperCommand):
            info.cls = _ManPageCommand
        if info.short_help is None and first:
            info.short_help = first
        example = EXAMPLES.get(f"{prefix}{name}")
        if info.epilog is None and example:
            # \b keeps click from re-wrapping the example into the paragraph above it.
            info.epilog = f"\b\nExample:\n  {example}\n"
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _finish_help(sub.typer_instance, f"{prefix}{sub.name} ")


# Every command must be registered above this line to get its summary, example and help style.
_finish_help(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    # By now every file and connection curator opened is closed (each command closes its own).
    # Skipping the interpreter's teardown, a quarter of a second spent freeing objects, makes
    # every command that much quicker; only the output buffers still need flushing.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    os._exit(code or 0)
