#!/usr/bin/env python3
"""Benchmark gunicorn-asgi against its peers and the limit server, in one run; see bench/README.md.

    python3 bench/run.py                                  # everything: 3 rounds x 10 s per server and scenario
    python3 bench/run.py --smoke                          # every scenario for about a second: does it all work?
    python3 bench/run.py --servers ours,uvicorn-httptools --scenarios plaintext,json --rounds 5 --duration 20

Needs Linux with 2+ cores, python3 with venv, and wrk / h2load / nginx / openssl (installed with apt-get
when run as root). Load only ever goes to 127.0.0.1, and every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shlex
import signal
import sys
from pathlib import Path
from types import FrameType

from suite import memory, report, runner, tools, venvs
from suite.scenarios import SCENARIOS
from suite.servers import BENCH, SERVERS

DEFAULT_SERVERS = ["limit", "ours", "gunicorn", "uvicorn-httptools", "uvicorn-h11", "hypercorn", "granian"]


def _names(value: str, known: list[str], what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown or value!r}; choose from {', '.join(known)}")
    return names


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--servers",
        type=lambda v: _names(v, list(SERVERS), "server"),
        default=DEFAULT_SERVERS,
        help=f"comma-separated, from: {', '.join(SERVERS)} (default: all)",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda v: _names(v, list(SCENARIOS), "scenario"),
        default=list(SCENARIOS),
        help=f"comma-separated, from: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s, no warm-up, a small memory run")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default 3; smoke 1)")
    parser.add_argument("--duration", type=float, help="seconds of measured load per run (default 10; smoke 1)")
    parser.add_argument(
        "--warmup", type=float, help="seconds of load before each measured run (default 2; smoke 0)"
    )
    parser.add_argument("--memory-connections", type=int, help="connections churned (default 100000; smoke 1000)")
    parser.add_argument(
        "--memory-idle", type=int, help="idle keep-alive connections held (default 1000; smoke 100)"
    )
    parser.add_argument(
        "--here",
        action="store_true",
        help="run ours, the limit server and the load clients with this interpreter instead of venvs under "
        "bench/.venvs (it needs the workspace packages and uvloop; the test suite's smoke test uses this)",
    )
    parser.add_argument("--results-dir", type=Path, help="default bench/results (smoke: bench/results/raw)")
    parser.add_argument("--no-readme", action="store_true", help="do not quote this run in bench/README.md")
    parser.add_argument("--server-cpu", type=int, default=1, help="core the servers are pinned to (default 1)")
    parser.add_argument("--client-cpu", type=int, default=0, help="core the load generators run on (default 0)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin anything (machines with one core)")
    parser.add_argument(
        "--ours-build",
        choices=["compiled", "source"],
        default="compiled",
        help="compiled (default): asgi-core and asgi-http1 as mypyc-compiled wheels, as released, falling back to "
        "source (noted in the results) when they cannot be built; source: pure-Python wheels only",
    )
    parser.add_argument("--install-only", action="store_true", help="install tools and venvs, then stop")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace, argv: list[str]) -> runner.Options:
    smoke = args.smoke

    def pick(value: float | None, normal: float, quick: float) -> float:
        return value if value is not None else (quick if smoke else normal)

    results_dir = args.results_dir or (BENCH / "results" / ("raw" if smoke else ""))
    server_cpu, client_cpu = (None, None) if args.no_pin else (args.server_cpu, args.client_cpu)
    if not args.no_pin and args.server_cpu == args.client_cpu:
        sys.exit("bench/run.py: --server-cpu and --client-cpu must differ (or pass --no-pin)")
    if not args.no_pin and (os.cpu_count() or 1) <= max(args.server_cpu, args.client_cpu):
        sys.exit(
            f"bench/run.py: this machine has no CPU {max(args.server_cpu, args.client_cpu)}; choose cores with "
            "--server-cpu/--client-cpu, or pass --no-pin to share one (figures are then much noisier)"
        )
    rounds = int(pick(args.rounds, 3, 1))
    duration, warmup = pick(args.duration, 10.0, 1.0), pick(args.warmup, 2.0, 0.0)
    if rounds < 1 or duration <= 0 or warmup < 0:
        sys.exit("bench/run.py: --rounds must be at least 1, --duration above 0, --warmup not negative")
    connections = int(pick(args.memory_connections, 100_000, 1_000))
    idle = int(pick(args.memory_idle, 1_000, 100))
    full_run = not smoke and args.results_dir is None and args.scenarios == list(SCENARIOS)
    return runner.Options(
        scenarios=args.scenarios,
        servers=args.servers,
        rounds=rounds,
        duration=duration,
        warmup=warmup,
        smoke=smoke,
        here=args.here,
        ours_compiled=args.ours_build == "compiled",
        results_dir=results_dir.resolve(),
        update_readme=full_run and not args.no_readme,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        memory=memory.MemorySettings(
            connections=connections, idle=idle, warm=min(1_000, max(1, connections // 10))
        ),
        command=shlex.join(["python3", "bench/run.py", *argv]),
    )


def _raise_on_term(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every `finally` that stops a server


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    options = options_from(args, argv)
    signal.signal(signal.SIGTERM, _raise_on_term)
    # 1,000 idle connections and then some, in the servers and clients that inherit this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        if args.install_only:
            tools.ensure_tools(runner.required_tools(options))
            runner.prepare(options)
            return 0
        data, md_path, json_path = runner.execute(options)
    except (tools.ToolError, venvs.InstallError) as exc:
        print(f"bench/run.py: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.summary_tables(data)))
    print(f"\nresults: {md_path}\njson: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
