"""The command line. The only module that imports typer.

Each command does three things: read the config, call one library function in
:mod:`curator.app`, and turn what comes back (or a :class:`CuratorError`) into output and the
contract's exit code: 0 done, 1 the job failed, 2 usage or configuration error.
"""

from __future__ import annotations

import os
import sys
import traceback
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from curator import __version__
from curator.errors import CuratorError

if TYPE_CHECKING:
    from curator.models import Config, FeedOutcome

T = TypeVar("T")

app = typer.Typer(
    name="curator",
    help="Turn the writers you learn from into one well-made weekly email.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
feeds_app = typer.Typer(help="Manage the sources in feeds.yaml.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
state_app = typer.Typer(
    help="Carry the whole state as one file, encrypted with CURATOR_STATE_KEY.",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")


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
            "--config", "-c", help="feeds.yaml to use (default ./feeds.yaml, or $CURATOR_CONFIG)."
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state", help="State database (default .curator/state.db beside the config)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
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


def _load(ctx: typer.Context) -> Config:
    from curator.config import load_config, resolve_config_path

    settings = _settings(ctx)
    path = resolve_config_path(settings.config, os.environ)
    return load_config(path, state_path=settings.state)


def _now(option: str | None, config: Config) -> datetime:
    from curator.config import parse_now

    zone = config.newsletter.timezone
    if option:
        return parse_now(option, timezone=zone)
    if os.environ.get("CURATOR_NOW"):
        return parse_now(os.environ["CURATOR_NOW"], source="CURATOR_NOW", timezone=zone)
    return datetime.now(UTC)


# Lines of a send report that tell of a problem go to stderr; the rest is the story of the run.
_PROBLEM_LINES = (
    "feed ",
    "will retry",
    "failed for good",
    "every feed failed",
    "curator: error:",
)

NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        metavar="TS",
        help="Act as if it were this time: ISO 8601 with Z or an offset, or a date "
        "(default now; or $CURATOR_NOW).",
    ),
]


@app.command()
def send(
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
    now: NowOption = None,
) -> None:
    """Fetch all feeds, build this period's issue, deliver it and record it."""
    from curator.app import SendOptions, run_send
    from curator.config import recipients_from_text

    def work() -> int:
        config = _load(ctx)
        addresses = recipients_from_text(to or [], "--to")
        options = SendOptions(dry_run=dry_run, to=addresses, force=force)
        report = run_send(config, options, _now(now, config))
        for line in report.lines:
            typer.echo(
                line,
                err=line.startswith(_PROBLEM_LINES),
            )
        return report.exit_code

    code = _guard(ctx, work)
    raise typer.Exit(code)


@app.command()
def preview(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for issue.html, issue.txt, issue.eml (default preview/)."
        ),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML in the default browser.")
    ] = False,
    now: NowOption = None,
) -> None:
    """Build the issue send would send now, without sending or recording it."""
    from curator.app import run_preview

    def work() -> None:
        config = _load(ctx)
        report = run_preview(config, _now(now, config), out or config.base_dir / "preview")
        for line in report.lines:
            typer.echo(line)
        if open_browser and report.html_path is not None:
            webbrowser.open(report.html_path.resolve().as_uri())

    _guard(ctx, work)


@app.command()
def fetch(ctx: typer.Context, now: NowOption = None) -> None:
    """Fetch and store all feeds; print a status table per feed."""
    from curator.app import run_fetch

    def work() -> int:
        from rich.console import Console
        from rich.progress import Progress
        from rich.table import Table

        config = _load(ctx)
        err = Console(stderr=True)
        total = len(config.enabled_feeds)
        if err.is_terminal:
            with Progress(console=err, transient=True) as bar:
                task = bar.add_task("fetching", total=total)

                def advance(outcome: FeedOutcome) -> None:
                    bar.advance(task)

                outcomes = run_fetch(config, _now(now, config), progress=advance)
        else:

            def line(outcome: FeedOutcome) -> None:
                print(
                    f"fetched {outcome.feed.name}: {_fetch_status(outcome)}",
                    file=sys.stderr,
                    flush=True,
                )

            outcomes = run_fetch(config, _now(now, config), progress=line)
        rows = [_fetch_row(o) for o in outcomes]
        out = Console()
        if out.is_terminal:
            table = Table(title=f"{total} feeds")
            for column in ("feed", "status", "new", "time", "note"):
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*row)
            out.print(table)
        else:
            # Logs and pipes get one tab-separated line per feed: greppable, and far cheaper
            # than laying out a table for hundreds of feeds.
            for row in [("feed", "status", "new", "time", "note"), *rows]:
                typer.echo("\t".join(row))
        failed = sum(1 for o in outcomes if not o.ok)
        new = sum(o.new_entries for o in outcomes)
        typer.echo(f"{total} feeds: {total - failed} ok, {failed} failed or resting; {new} new")
        return 1 if outcomes and all(not o.ok for o in outcomes) else 0

    raise typer.Exit(_guard(ctx, work))


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
    """List the issues built: period, date, question, posts, recipients delivered/failed."""
    from curator.app import run_history

    def work() -> None:
        from rich.console import Console
        from rich.table import Table

        rows = run_history(_load(ctx))
        if not rows:
            typer.echo("no issues yet")
            return
        table = Table()
        for column in (
            "period",
            "round",
            "built (UTC)",
            "posts",
            "delivered",
            "failed",
            "pending",
            "question",
        ):
            table.add_column(column, overflow="fold")
        for row in rows:
            i = row.issue
            table.add_row(
                i.period, str(i.round), f"{i.built_at:%Y-%m-%d %H:%M}", str(i.post_count),
                str(row.sent), str(row.failed), str(row.pending), i.question or "",
            )  # fmt: skip
        Console(width=max(120, Console().width)).print(table)

    _guard(ctx, work)


@app.command()
def questions(ctx: typer.Context, now: NowOption = None) -> None:
    """Show the question bank, when each was last used, and which comes next."""
    from curator.app import run_questions

    def work() -> None:
        from rich.console import Console
        from rich.table import Table

        config = _load(ctx)
        rows = run_questions(config, _now(now, config))
        table = Table()
        for column in ("", "question", "themes", "last used", "this cycle"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(
                "next" if row.is_next else "",
                row.text,
                ", ".join(row.themes),
                row.last_used or "never",
                "used" if row.used_in_cycle else "",
            )
        Console(width=max(120, Console().width)).print(table)
        for row in rows:
            if row.is_next and row.reason:
                typer.echo(f"next: {row.text} ({row.reason})")

    _guard(ctx, work)


@feeds_app.command("list")
def feeds_list(ctx: typer.Context) -> None:
    """List the sources: name, URL, tags, enabled, last post, last fetch status."""
    from curator.manage import run_feeds_list

    def work() -> None:
        from rich.console import Console
        from rich.table import Table

        rows = run_feeds_list(_load(ctx))
        table = Table()
        for column in ("name", "url", "tags", "enabled", "last post", "last fetch"):
            table.add_column(column, overflow="fold")
        for feed, h in rows:
            last_post = f"{h.last_post:%Y-%m-%d}" if h and h.last_post else "-"
            if h is None or h.last_attempt is None:
                status = "never fetched"
            elif h.last_error:
                status = f"failed: {h.last_error}"
            else:
                status = f"ok {h.last_status or ''} at {h.last_attempt:%Y-%m-%d %H:%M}".strip()
            table.add_row(
                feed.name, feed.url, ", ".join(feed.tags), "yes" if feed.enabled else "no",
                last_post, status,
            )  # fmt: skip
        Console(width=max(120, Console().width)).print(table)

    _guard(ctx, work)


def _config_path(ctx: typer.Context) -> Path:
    from curator.config import resolve_config_path

    return resolve_config_path(_settings(ctx).config, os.environ)


@feeds_app.command("add")
def feeds_add(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Argument(help="The feed's URL, or the writer's site: its feed is found.")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Name to show (default: the feed's title).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag for the feed; repeat for more.")
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
    name_or_url: Annotated[str, typer.Argument(metavar="NAME_OR_URL", help="The feed to remove.")],
) -> None:
    """Remove a source by its name or URL; the rest of feeds.yaml is left as it was."""
    from curator.manage import run_feeds_remove

    def work() -> None:
        for line in run_feeds_remove(_config_path(ctx), name_or_url).lines:
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
    """Fetch every source now: status, last post, posts, errors and what to do about them.
    Exits 1 when any source fails."""
    from curator.manage import run_feeds_check

    def work() -> int:
        from rich.console import Console
        from rich.table import Table

        config = _load(ctx)
        report = run_feeds_check(config, _now(now, config), fix=fix)
        table = Table()
        for column in ("feed", "status", "last post", "posts", "error", "suggestion"):
            table.add_column(column, overflow="fold")
        for row in report.rows:
            table.add_row(
                row.feed.name, "fixed" if row.fixed else row.status,
                f"{row.last_post:%Y-%m-%d}" if row.last_post else "-", str(row.posts),
                row.error or "", "; ".join(row.suggestions),
            )  # fmt: skip
        Console(width=max(120, Console().width)).print(table)
        for line in report.lines:
            typer.echo(line)
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
        Path | None, typer.Option("--out", help="File to write (default: standard output).")
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
