"""``python -m benchmarks run`` (the table), ``serve`` (the feed server), ``render-once``."""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="measure the floors and curator; print the table")
    run.add_argument("--feeds", type=int, default=200, help="feeds per scenario (200)")
    run.add_argument("--big", type=int, default=1000, help="feeds in the big run; 0 skips it")
    run.add_argument("--runs", type=int, default=3, help="runs per scenario, median (3)")
    run.add_argument("--seed", type=int, default=1, help="seed of the generated feeds (1)")
    run.add_argument("--latency", type=float, default=0.1, help="seconds per request (0.1)")
    run.add_argument(
        "--hang-timeout", type=float, default=5.0, help="fetch.timeout in the hanging run (5)"
    )
    run.add_argument(
        "--stall", type=float, default=5.0, help="seconds a stalling feed is silent (5)"
    )
    run.add_argument("--startup-runs", type=int, default=5, help="runs of --help/--version (5)")
    run.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")

    serve = commands.add_parser("serve", help="run the feed server alone")
    serve.add_argument("--feeds", type=int, default=200)
    serve.add_argument("--hanging", type=int, default=2)
    serve.add_argument("--seed", type=int, default=1)
    serve.add_argument("--latency", type=float, default=0.1)
    serve.add_argument("--stalling", type=int, default=0)
    serve.add_argument("--stall", type=float, default=5.0)

    commands.add_parser("render-once", help="print the ms one 40-post render takes")

    args = parser.parse_args()
    if args.command == "serve":
        from benchmarks.server import serve as serve_feeds

        serve_feeds(args.feeds, args.hanging, args.seed, args.latency, args.stalling, args.stall)
    elif args.command == "render-once":
        from benchmarks.render_once import main as render_once

        render_once()
    else:
        from benchmarks.runner import Options, run_all

        run_all(
            Options(
                feeds=args.feeds,
                big=args.big,
                runs=args.runs,
                seed=args.seed,
                latency=args.latency,
                hang_timeout=args.hang_timeout,
                stall=args.stall,
                startup_runs=args.startup_runs,
                json_out=args.json,
            )
        )


main()
