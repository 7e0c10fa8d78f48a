"""What the operations features cost the request path: wrk against one gunicorn-asgi worker, each feature off
and on, in interleaved rounds, bounded to about two minutes.

Variants (each a fresh server, one worker, the benchmark app's plaintext route, keep-alive):

- `off`: no access log, no metrics: the baseline.
- `text-log`: `--access-logfile` with Gunicorn's default `--access-logformat`.
- `json-log`: `--access-logfile --access-log-json`.
- `metrics`: `--metrics-bind` (prometheus_client multiprocess files), no access log.

One round runs every variant once, in a rotated order; the median over rounds is reported, with the cost per
request against `off` in microseconds of the worker's time (one saturated worker: 1e6 / rps per request).
On a shared machine those swing with the neighbours' load, so the script ends with the in-process cost of each
observer alone (the JSON line's formatting, the metrics' counter and histogram), best of five runs.

    python bench/ops_cost.py [--rounds 3] [--duration 4] [--connections 32] [--server-cpu 1 --client-cpu 0]
                             [--variants off,text-log,json-log,metrics]

Run it with an interpreter that has the workspace packages and prometheus-client (the hatch test env:
`python3 dev.py run hatch-test.py3.11:python bench/ops_cost.py`, or that env's python directly). Needs `wrk`.
Load goes to 127.0.0.1 only; every server is stopped by its own PID.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
GUNICORN_ASGI = Path(sys.executable).parent / "gunicorn-asgi"
#: Longest a whole run may take, whatever the arguments: the machine is shared.
BUDGET = 150.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def variants(tmp: Path) -> dict[str, list[str]]:
    return {
        "off": [],
        "text-log": ["--access-logfile", str(tmp / "text.log")],
        "json-log": ["--access-logfile", str(tmp / "json.log"), "--access-log-json"],
        "metrics": ["--metrics-bind", f"127.0.0.1:{free_port()}"],
    }


def pinned(cpu: int | None, command: list[str]) -> list[str]:
    return command if cpu is None or not shutil.which("taskset") else ["taskset", "-c", str(cpu), *command]


def start(args: list[str], port: int, cpu: int | None, log: Path) -> subprocess.Popen[bytes]:
    command = [str(GUNICORN_ASGI), "--no-control-socket", "--workers", "1", "--log-level", "warning"]
    command += ["--bind", f"127.0.0.1:{port}", "--chdir", str(BENCH), *args, "app:app"]
    with log.open("wb") as out:
        proc = subprocess.Popen(pinned(cpu, command), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return proc
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError("server did not start within 15 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the master and its worker
        proc.wait(5)


def wrk(port: int, seconds: float, connections: int, cpu: int | None) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}/plaintext"]
    done = subprocess.run(pinned(cpu, command), capture_output=True, text=True, timeout=seconds + 30, check=True)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if match is None or "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        raise RuntimeError(f"wrk failed or saw errors:\n{done.stdout}")
    return float(match.group(1))


def micro(tmp: Path, count: int = 50_000) -> dict[str, float]:
    """Microseconds per record of each observer alone, in this process (best of 5 runs of `count`): stable on a
    busy machine, where wrk's figures swing with the neighbours' load."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp)
    from asgi_core import AccessRecord  # noqa: PLC0415 - only the micro part needs the packages in-process
    from gunicorn_asgi._json_log import JsonAccessLog  # noqa: PLC0415
    from gunicorn_asgi._metrics import WorkerMetrics  # noqa: PLC0415

    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk/4.2"), (b"accept", b"*/*")]
    record = AccessRecord(
        "GET", "/plaintext", b"", "1.1", 200, 13, 0.0003, ("127.0.0.1", 40000), headers, [], "http"
    )

    class _Log:
        access_log = None

    json_log, metrics = JsonAccessLog(_Log()), WorkerMetrics()
    candidates = {
        "json line (format only)": lambda: json_log.line(record, time.time()),
        "metrics observe": lambda: metrics.observe(record),
    }
    results: dict[str, float] = {}
    for name, call in candidates.items():
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(count):
                call()
            best = min(best, (time.perf_counter() - started) / count * 1e6)
        results[name] = best
    return results


def add_round_options(parser: argparse.ArgumentParser) -> None:
    """Interleaved rounds against one pinned worker: how many, how long, and on which cores."""
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--no-pin", action="store_true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_round_options(parser)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--variants", default="off,text-log,json-log,metrics", help="comma-separated; off first")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("ops_cost.py needs wrk (Debian: apt-get install wrk)")
    server_cpu = None if args.no_pin else args.server_cpu
    client_cpu = None if args.no_pin else args.client_cpu
    chosen = [name.strip() for name in args.variants.split(",") if name.strip()]
    if not chosen or chosen[0] != "off" or not set(chosen) <= set(variants(Path())):
        sys.exit(f"--variants: 'off' first, then any of {', '.join(variants(Path()))}")
    per_run = args.duration + args.warmup + 2.0
    if per_run * len(chosen) * args.rounds > BUDGET:
        sys.exit(
            f"{args.rounds} rounds of {per_run:.0f} s x {len(chosen)} variants exceed the {BUDGET:.0f} s budget"
        )
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ops-cost-") as tmp_name:
        tmp = Path(tmp_name)
        names = chosen
        for number in range(args.rounds):
            order = names[number % len(names) :] + names[: number % len(names)]  # rotate: no variant always first
            for name in order:
                port = free_port()
                proc = start(variants(tmp)[name], port, server_cpu, tmp / f"{name}.server.log")
                try:
                    if args.warmup:
                        wrk(port, args.warmup, args.connections, client_cpu)
                    rps = wrk(port, args.duration, args.connections, client_cpu)
                finally:
                    stop(proc)
                results.setdefault(name, []).append(rps)
                print(f"round {number + 1} {name:9} {rps:10.0f} req/s", file=sys.stderr, flush=True)
        json_lines = (tmp / "json.log").read_text().splitlines() if (tmp / "json.log").exists() else []
        metrics_dir = tmp / "micro-metrics"
        metrics_dir.mkdir()
        in_process = micro(metrics_dir)
    base = statistics.median(results["off"])
    print(f"| variant | req/s (median of {args.rounds}) | vs off | cost per request |")
    print("| --- | --- | --- | --- |")
    for name in names:
        rps = statistics.median(results[name])
        cost = 1e6 / rps - 1e6 / base
        print(f"| {name} | {rps:.0f} | {100 * (rps / base - 1):+.1f}% | {cost:+.2f} µs |")
    print(f"\n(json-log wrote {len(json_lines)} lines; every round: {results})")
    print("\nIn-process, per record (best of 5 x 50,000):")
    for name, micros in in_process.items():
        print(f"- {name}: {micros:.2f} µs")


if __name__ == "__main__":
    main()
