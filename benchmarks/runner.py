"""Run the scenarios: floors first, then whole `curator` processes, then one table.

Every curator figure is a median over ``runs`` processes and is printed next to the floors
measured in the same run on the same feeds, so a noisy or slower machine moves both.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# `send --now` for the benchmark: just after the newest generated post (benchmarks.feeds).
SEND_NOW = "2026-11-26T08:00:00Z"
# A floor request that fails after this many seconds met a stalling feed: not tried again.
STALL_FLOOR = 1.0
# Requests in flight for the network floor; see _fetch_all.
FLOOR_IN_FLIGHT = 32


# ---------------------------------------------------------------- the server process


@dataclass
class Server:
    """The feed server, running as its own process so it never competes for our GIL."""

    process: subprocess.Popen[str]
    feeds: list[str]
    kinds: list[str]
    hanging: list[str]
    stalling: list[str]
    stats_url: str

    def stats(self, reset: bool = False) -> dict[str, object]:
        url = self.stats_url.replace("/_stats", "/_reset") if reset else self.stats_url
        with urllib.request.urlopen(url, timeout=10) as answer:
            data: dict[str, object] = json.load(answer)
        return data

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(  # noqa: PLR0917 - the server's knobs
    feeds: int, hanging: int, seed: int, latency: float, stalling: int = 0, stall: float = 5.0
) -> Server:
    """Start ``python -m benchmarks serve`` and wait for its line of addresses."""
    command = [sys.executable, "-m", "benchmarks", "serve", "--feeds", str(feeds)]
    command += ["--hanging", str(hanging), "--seed", str(seed), "--latency", str(latency)]
    command += ["--stalling", str(stalling), "--stall", str(stall)]
    process = subprocess.Popen(
        command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise SystemExit(f"the feed server did not start (exit {process.returncode})")
    info = json.loads(line)
    return Server(
        process, info["feeds"], info["kinds"], info["hanging"], info["stalling"], info["stats"]
    )


# ---------------------------------------------------------------- floors


@dataclass
class Fetched:
    url: str
    body: bytes
    content_type: str | None


async def _fetch_all(urls: Sequence[str], in_flight: int) -> list[Fetched]:
    import httpx

    # httpcore's pool scans its connections and its queue of waiting requests on every
    # change, so 200 connections, or 1000 queued requests, cost seconds of CPU on their own.
    # A semaphore in front keeps both small: `in_flight` requests in the pool, no queue.
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    gate = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(
        limits=limits, timeout=30, follow_redirects=True, trust_env=False
    ) as client:

        async def one(url: str) -> Fetched:
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.get(url)
                except httpx.TransportError:
                    # On a machine starved of CPU the server can drop a connection; one more
                    # try keeps the floor a measurement of the feeds, not of that accident.
                    # A drop after a stall is the feed itself: the floor waits it out once.
                    if time.perf_counter() - started > STALL_FLOOR:
                        return Fetched(url, b"", None)
                    try:
                        response = await client.get(url)
                    except httpx.TransportError:
                        return Fetched(url, b"", None)
            kind = response.headers.get("content-type")
            return Fetched(str(response.url), response.content, kind)

        return list(await asyncio.gather(*(one(url) for url in urls)))


def network_floor(
    urls: Sequence[str], in_flight: int = FLOOR_IN_FLIGHT
) -> tuple[float, list[Fetched]]:
    """Seconds to GET every URL with a bare httpx client, ``in_flight`` at a time, no parsing."""
    import httpx  # noqa: F401 - imported before the clock starts: curator's import is timed apart

    started = time.perf_counter()
    fetched = asyncio.run(_fetch_all(urls, in_flight))
    return time.perf_counter() - started, fetched


def parse_floor(fetched: Sequence[Fetched]) -> float:
    """Seconds feedparser needs, in this one process, for every body that came back 200."""
    import feedparser

    started = time.perf_counter()
    for item in fetched:
        headers = {"content-location": item.url}
        if item.content_type:
            headers["content-type"] = item.content_type
        feedparser.parse(io.BytesIO(item.body), response_headers=headers)
    return time.perf_counter() - started


# ---------------------------------------------------------------- timing processes


@dataclass
class Run:
    wall: float
    exit_code: int
    max_rss_mb: float  # the largest single process in the tree (getrusage of the child)
    tree_rss_mb: float  # sampled peak of the whole tree (curator plus its parse workers)
    output: str


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, from /proc (Linux)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        stack += [int(c) for c in children]
    return total


def time_process(command: Sequence[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run ``command`` to its end; wall time, exit code and memory of that process alone."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], _tree_rss_kb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 gives this child's own rusage (and its waited-for children's), not that of
        # every child this runner ever had, such as the feed server.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        out.seek(0)
        return Run(wall, process.returncode, usage.ru_maxrss / 1024, peak[0] / 1024, out.read())


def curator_command() -> list[str]:
    """The installed `curator` script beside this Python, else `python -m curator`."""
    script = Path(sys.executable).with_name("curator")
    return [str(script)] if script.exists() else [sys.executable, "-m", "curator"]


def clean_env() -> dict[str, str]:
    """Our environment without CURATOR_* settings that would change what curator does."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CURATOR_")}


def write_config(folder: Path, urls: Sequence[str], timeout: float | None = None) -> Path:
    """A feeds.yaml for ``urls`` with the outbox as delivery; curator's defaults otherwise."""
    lines = [
        "newsletter:",
        "  title: Benchmark Weekly",
        '  from: "Benchmark <bench@example.org>"',
        "  to: [reader@example.org]",
        "delivery:",
        "  method: outbox",
    ]
    if timeout is not None:
        lines += ["fetch:", f"  timeout: {timeout:g}"]
    lines.append("feeds:")
    for n, url in enumerate(urls):
        lines += [f"  - name: Writer {n}", f"    url: {url}"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- the report


@dataclass
class Row:
    scenario: str
    seconds: float | None
    versus: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)
        print(text, flush=True)

    def table(self) -> str:
        head = ("scenario", "curator", "vs floor", "target", "result", "notes")
        body = [
            (
                r.scenario,
                "-" if r.seconds is None else _seconds(r.seconds),
                r.versus,
                r.target,
                "-" if r.passed is None else ("PASS" if r.passed else "FAIL"),
                r.note,
            )
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

        def fmt(row: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([fmt(head), rule, *(fmt(row) for row in body)])


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------- scenarios


@dataclass
class Options:
    feeds: int = 200
    big: int = 1000
    runs: int = 3
    seed: int = 1
    latency: float = 0.1
    hang_timeout: float = 5.0
    stall: float = 5.0
    startup_runs: int = 5
    json_out: Path | None = None


def run_all(options: Options) -> Report:
    """Start the server, measure the floors and every scenario, print the table."""
    report = Report()
    n = options.feeds
    hanging = max(1, n // 100)
    command = curator_command()
    env = clean_env()
    report.say(f"curator: {' '.join(command)}")
    report.say(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{_cpu_model()}; seed {options.seed}, latency {options.latency * 1000:.0f} ms"
    )
    report.say(f"load average at the start: {_load()}")
    served = max(n, options.big)
    report.say(f"building {served} feeds (+{hanging} hanging) in the server process ...")
    server = start_server(served, hanging, options.seed, options.latency, hanging, options.stall)
    work = Path(tempfile.mkdtemp(prefix="curator-bench-"))
    try:
        _scenarios(Bench(options, report, server, work, command, env, hanging))
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    report.say(
        f"load average at the end: {_load()} (other work on the machine moves the floors too)"
    )
    report.say("")
    report.say(report.table())
    if options.json_out is not None:
        rows = [r.__dict__ for r in report.rows]
        options.json_out.write_text(json.dumps({"rows": rows, "log": report.lines}, indent=2))
    return report


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


@dataclass
class Bench:
    """What every scenario shares: options, the server, a scratch folder, the report."""

    options: Options
    report: Report
    server: Server
    work: Path
    command: list[str]
    env: dict[str, str]
    hanging: int
    floors: dict[str, float] = field(default_factory=dict)
    walls: dict[str, float] = field(default_factory=dict)

    def curator(self, config: Path, state: Path, *args: str) -> Run:
        """One curator process on ``config`` and ``state``."""
        full = [*self.command, "--config", str(config), "--state", str(state), *args]
        run = time_process(full, config.parent, self.env)
        _check(self.report, [run], " ".join(args))
        return run

    def median_of(self, prepare: Callable[[int], tuple[Path, Path]], *args: str) -> list[Run]:
        """``runs`` curator processes; ``prepare(i)`` gives each its config and state paths."""
        return [self.curator(*prepare(i), *args) for i in range(self.options.runs)]

    def add(self, row: Row) -> None:
        self.report.rows.append(row)

    # ------------------------------------------------------------ scenarios

    def floors_for(self, urls: Sequence[str], kinds: Sequence[str]) -> tuple[float, float]:
        """The network and parse floors over ``urls``, medians of ``runs``."""
        net_times: list[float] = []
        fetched: list[Fetched] = []
        for _ in range(self.options.runs):
            seconds, fetched = network_floor(urls)
            net_times.append(seconds)
        ok_bodies = [f for f, k in zip(fetched, kinds, strict=True) if k != "error"]
        net = _median(net_times)
        parse = _median([parse_floor(ok_bodies) for _ in range(self.options.runs)])
        wire = sum(len(f.body) for f in fetched)
        self.report.say(
            f"network floor: {_seconds(net)} ({len(urls)} GETs, {FLOOR_IN_FLIGHT} in flight, "
            f"bare httpx, {wire / 1e6:.1f} MB decoded)"
        )
        self.report.say(
            f"parse floor: {_seconds(parse)} (feedparser over {len(ok_bodies)} bodies, one CPU)"
        )
        return net, parse

    def cold_and_warm(self) -> Path:
        """Cold and warm `curator fetch`; returns the warm state for the scenarios after."""
        n, runs = self.options.feeds, self.options.runs
        urls, kinds = self.server.feeds[:n], self.server.kinds[:n]
        self.report.say(f"{n} feeds: {dict(sorted(Counter(kinds).items()))}")
        net, parse = self.floors_for(urls, kinds)
        self.floors.update(net=net, parse=parse)
        floor_note = f"bare httpx, {FLOOR_IN_FLIGHT} in flight"
        self.add(Row(f"network floor, {n} feeds", net, note=floor_note))
        self.add(Row(f"parse floor, {n} feeds", parse, note="feedparser, one process"))

        # Cold: a new, empty state for every run.
        config = write_config(self.work / "main", urls)
        self.server.stats(reset=True)
        cold = self.median_of(lambda i: (config, self.work / f"cold-{i}" / "state.db"), "fetch")
        self.report.say(f"server counters over {runs} cold runs: {self.server.stats()}")
        cold_s = self.walls["cold"] = _median([r.wall for r in cold])
        self.add(
            Row(
                f"cold `curator fetch`, {n} feeds",
                cold_s,
                f"{cold_s / (net + parse):.2f} x (net+parse)",
                "<= 0.65 x (net+parse)",
                cold_s <= 0.65 * (net + parse),
                f"{cold_s / net:.1f} x net, {cold_s / parse:.2f} x parse; "
                f"peak RSS {max(r.max_rss_mb for r in cold):.0f} MB",
            )
        )

        # Warm: the state the last cold run left; every healthy feed answers 304.
        state = self.work / f"cold-{runs - 1}" / "state.db"
        self.server.stats(reset=True)
        warm = self.median_of(lambda i: (config, state), "fetch")
        counters = self.server.stats()
        self.report.say(f"server counters over {runs} warm runs: {counters}")
        warm_s = self.walls["warm"] = _median([r.wall for r in warm])
        self.add(
            Row(
                f"warm `curator fetch` (304s), {n} feeds",
                warm_s,
                f"{warm_s / net:.2f} x net",
                "<= 1.25 x net",
                warm_s <= 1.25 * net,
                f"statuses {counters.get('statuses')}",
            )
        )
        self.warm_healthy(urls, kinds, state)
        return state

    def warm_healthy(self, urls: Sequence[str], kinds: Sequence[str], state: Path) -> None:
        """Warm again without the broken feeds: curator's own cost per 304.

        A 500 is retried with backoff (about 1.5 s), which sets the wall time of the full
        warm run; this row shows what the rest costs.
        """
        healthy = [u for u, k in zip(urls, kinds, strict=True) if k in ("ok", "redirect")]
        net = _median([network_floor(healthy)[0] for _ in range(self.options.runs)])
        config = write_config(self.work / "healthy", healthy)
        copy = self.work / "healthy" / "state.db"
        shutil.copy(state, copy)
        runs = self.median_of(lambda i: (config, copy), "fetch")
        seconds = _median([r.wall for r in runs])
        self.add(
            Row(
                f"warm `curator fetch` (304s), {len(healthy)} healthy feeds",
                seconds,
                f"{seconds / net:.2f} x net",
                "<= 1.25 x net",
                seconds <= 1.25 * net,
                f"net floor of these feeds {_seconds(net)}",
            )
        )

    def send_dry_run(self, state: Path) -> None:
        """`curator send --dry-run` on the warm state, against the warm fetch."""
        n = self.options.feeds
        config = self.work / "main" / "feeds.yaml"
        runs = self.median_of(lambda i: (config, state), "send", "--dry-run", "--now", SEND_NOW)
        seconds = _median([r.wall for r in runs])
        extra = seconds - self.walls["warm"]
        self.add(
            Row(
                f"`curator send --dry-run`, {n} feeds",
                seconds,
                f"+{extra:.2f} s over warm fetch",
                "<= fetch + 1 s",
                extra <= 1.0,
            )
        )

    def hanging_feeds(self, state: Path) -> None:
        """1% of the feeds swapped for ones that never answer, with a short deadline."""
        n, hanging, timeout = self.options.feeds, self.hanging, self.options.hang_timeout
        # Spread through the list, not first: a feed's deadline starts with its slot, so a tool
        # that starts feeds in list order would add the queue ahead of a hanging feed to its
        # deadline. (curator starts feeds it has never fetched first.)
        urls = list(self.server.feeds[:n])
        for k in range(hanging):
            urls[(k + 1) * n // (hanging + 1)] = self.server.hanging[k]
        config = write_config(self.work / "hang", urls, timeout=timeout)

        def fresh_state(i: int) -> tuple[Path, Path]:
            # Each run starts from the warm state, so the hanging feeds are met for the first
            # time every run: a second run in the same period would find them backed off.
            copy = self.work / "hang" / f"state-{i}.db"
            shutil.copy(state, copy)
            return config, copy

        runs = self.median_of(fresh_state, "fetch")
        seconds = _median([r.wall for r in runs])
        self.add(
            Row(
                f"warm fetch, {hanging} of {n} feeds hanging",
                seconds,
                f"deadline {timeout:g} s",
                f"<= {timeout + 1:g} s",
                seconds <= timeout + 1,
                f"exit codes {sorted({r.exit_code for r in runs})}",
            )
        )

    def stalling_feeds(self) -> None:
        """Cold `send --dry-run` with 1% of the feeds stalling (silent, then a hang-up), against
        the fetch+parse floor of the same list measured now: a stall must cost one wait, not
        one per retry."""
        n, stall = self.options.feeds, self.options.stall
        urls, kinds = list(self.server.feeds[:n]), list(self.server.kinds[:n])
        count = len(self.server.stalling)
        for k in range(count):
            place = (k + 1) * n // (count + 1)
            urls[place], kinds[place] = self.server.stalling[k], "error"
        net, parse = self.floors_for(urls, kinds)
        config = write_config(self.work / "stall", urls)
        runs = self.median_of(
            lambda i: (config, self.work / "stall" / f"cold-{i}" / "state.db"),
            "send",
            "--dry-run",
            "--now",
            SEND_NOW,
        )
        seconds = _median([r.wall for r in runs])
        ratio = seconds / (net + parse)
        self.add(
            Row(
                f"cold `send --dry-run`, {count} of {n} feeds stalling {stall:g} s",
                seconds,
                f"{ratio:.2f} x (net+parse)",
                "<= 0.8 x (net+parse)",
                ratio <= 0.8,
                f"floors {_seconds(net)} + {_seconds(parse)} over the same feeds",
            )
        )

    def startup(self) -> None:
        """`curator --help` and `--version`, whole processes."""
        for flag, target in (("--help", 0.35), ("--version", 0.25)):
            runs = [
                time_process([*self.command, flag], self.work, self.env)
                for _ in range(self.options.startup_runs)
            ]
            _check(self.report, runs, f"curator {flag}")
            seconds = _median([r.wall for r in runs])
            self.add(
                Row(f"`curator {flag}`", seconds, "", f"< {target * 1000:.0f} ms", seconds < target)
            )

    def render(self) -> None:
        """One 40-post render, each in a fresh process."""
        command = [sys.executable, "-m", "benchmarks", "render-once"]
        runs = [time_process(command, REPO, self.env) for _ in range(self.options.runs)]
        _check(self.report, runs, "render-once")
        ms = _median([float(r.output.strip().splitlines()[-1]) for r in runs])
        self.add(
            Row("render a 40-post issue", ms / 1000, "", "< 150 ms", ms < 150, "templates + CSS")
        )

    def big(self) -> None:
        """One cold run at ``options.big`` feeds: memory, and growth against the small run."""
        big, n = self.options.big, self.options.feeds
        urls, kinds = self.server.feeds[:big], self.server.kinds[:big]
        net, fetched = network_floor(urls)
        parse = parse_floor([f for f, k in zip(fetched, kinds, strict=True) if k != "error"])
        self.report.say(
            f"{big} feeds: network floor {_seconds(net)}, parse floor {_seconds(parse)}"
        )
        config = write_config(self.work / "big", urls)
        run = self.curator(config, self.work / "big" / "state.db", "fetch")
        growth = run.wall / self.walls["cold"]
        self.add(
            Row(
                f"cold `curator fetch`, {big} feeds (1 run)",
                run.wall,
                f"{run.wall / (net + parse):.2f} x (net+parse)",
                f"wall <= {big / n:g} x the {n}-feed run",
                growth <= big / n,
                f"{growth:.2f} x the {n}-feed wall; floors {_seconds(net)} + {_seconds(parse)}",
            )
        )
        self.add(
            Row(
                f"peak RSS, {big} feeds cold",
                None,
                f"{run.max_rss_mb:.0f} MB",
                "<= 250 MB",
                run.max_rss_mb <= 250,
                f"largest process (getrusage); whole tree sampled {run.tree_rss_mb:.0f} MB",
            )
        )

    def peers(self) -> None:
        """rss2email and reader, side by side, where installed."""
        peers = {
            "rss2email": shutil.which("r2e") is not None,
            "reader": importlib.util.find_spec("reader") is not None,
        }
        for name, installed in peers.items():
            note = (
                "installed, but the runner has no scenario for it yet: not measured"
                if installed
                else "not installed: not measured"
            )
            self.add(Row(name, None, note=note))


def _scenarios(bench: Bench) -> None:
    state = bench.cold_and_warm()
    bench.send_dry_run(state)
    bench.hanging_feeds(state)
    bench.stalling_feeds()
    bench.startup()
    bench.render()
    if bench.options.big > 0:
        bench.big()
    bench.peers()


def _check(report: Report, runs: Sequence[Run], what: str) -> None:
    """A run that crashed is not a timing: show its output so it can be fixed."""
    for run in runs:
        if run.exit_code not in (0, 1):
            report.say(f"{what}: exit {run.exit_code}\n{run.output[-2000:]}")
            raise SystemExit(1)
