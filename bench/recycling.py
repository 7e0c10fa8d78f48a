#!/usr/bin/env python3
"""Failed requests through worker recycling, ours next to Gunicorn's own ASGI worker and uvicorn's.

Each server runs as users run it in production: a Gunicorn master with two workers recycled by
`--max-requests 500 --max-requests-jitter 50`, serving `bench/app.py`. The load is steady keep-alive traffic
from a client that never retries (`bench/clients/recycle_load.py`: every request that ends without its whole
response counts as failed). Servers take turns, round after round, so that each meets the same machine.

    python3 bench/recycling.py [--seconds 20] [--rounds 2] [--connections 16] [--only ours,gunicorn,uvicorn]

Writes `bench/results/<date>-recycling.md` and prints the same table. Needs the venvs of `bench/run.py`
(`python3 bench/run.py --install-only`); uvicorn's Gunicorn worker gets a venv of its own here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from suite import venvs
from suite.servers import SERVERS

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"
LOAD = BENCH / "clients" / "recycle_load.py"
TODAY = dt.datetime.now(tz=dt.timezone.utc).date().isoformat()
RECYCLING = ["-w", "2", "--max-requests", "500", "--max-requests-jitter", "50", "--graceful-timeout", "10"]
GUNICORN_ARGS = ["--no-control-socket", "--asgi-loop", "uvloop", *RECYCLING]
COMMON = ["--chdir", str(BENCH), "--log-level", "info", "--keep-alive", "30", "--backlog", "2048"]


def servers() -> dict[str, tuple[str, list[str]]]:
    """name -> (title, command line without --bind)."""
    ours = VENVS / "ours" / "bin"
    gunicorn = VENVS / "gunicorn" / "bin"
    uvicorn = VENVS / "uvicorn-worker" / "bin"
    return {
        "ours": (
            "gunicorn-asgi",
            [str(ours / "gunicorn-asgi"), "--no-control-socket", "--asgi-loop", "uvloop", *RECYCLING, *COMMON],
        ),
        "gunicorn": (
            "Gunicorn 27 -k asgi",
            [str(gunicorn / "gunicorn"), "-k", "asgi", *GUNICORN_ARGS, *COMMON],
        ),
        "uvicorn": (
            "uvicorn-worker under Gunicorn",
            [str(uvicorn / "gunicorn"), "-k", "uvicorn_worker.UvicornWorker", *RECYCLING, *COMMON],
        ),
    }


def ensure_uvicorn_worker() -> None:
    bin_dir = VENVS / "uvicorn-worker" / "bin"
    if (bin_dir / "gunicorn").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENVS / "uvicorn-worker")], check=True, timeout=300)
    packages = ["gunicorn>=23", "uvicorn-worker", "uvicorn[standard]"]
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", *packages], check=True, timeout=900)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def run_one(command: list[str], seconds: float, connections: int) -> dict[str, object]:
    port = free_port()
    with tempfile.TemporaryFile() as log:
        master = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{port}", "app:app"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_listening(port)
            time.sleep(1.0)  # both workers booted
            load = [str(VENVS / "tools" / "bin" / "python"), str(LOAD), "--port", str(port)]
            load += ["--path", "/plaintext", "--seconds", str(seconds), "--connections", str(connections)]
            done = subprocess.run(load, capture_output=True, text=True, timeout=seconds + 120, check=True)
            summary: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            os.killpg(master.pid, signal.SIGTERM)
            try:
                master.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(master.pid, signal.SIGKILL)
                master.wait()
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    # Every worker boot after the first two is a recycle, whatever the server logs about it.
    summary["recycles"] = max(0, output.count("Booting worker") - 2)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", default="ours,gunicorn,uvicorn")
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name]
    if "ours" in chosen:  # the working tree, built and installed as a user gets it (not editable)
        for note in venvs.ensure_ours(SERVERS["ours"], compiled=False):
            print(f"[ours] {note}", flush=True)
    if "uvicorn" in chosen:
        ensure_uvicorn_worker()
    table = servers()
    totals = {name: {"requests": 0, "failed": 0, "recycles": 0} for name in chosen}
    for round_number in range(args.rounds):
        for name in chosen:
            summary = run_one(table[name][1], args.seconds, args.connections)
            print(f"round {round_number + 1} {name}: {json.dumps(summary)}", flush=True)
            for key in totals[name]:
                totals[name][key] += int(summary[key])  # type: ignore[call-overload]
    lines = [
        f"# Worker recycling, {TODAY}",
        "",
        f"`python3 bench/recycling.py --seconds {args.seconds:g} --rounds {args.rounds} "
        f"--connections {args.connections}`: two workers, `--max-requests 500 --max-requests-jitter 50`, "
        "keep-alive load that never retries, servers interleaved round by round.",
        "",
        "| server | requests | failed | recycles | failed per recycle | failed share |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in chosen:
        total = totals[name]
        per_recycle = total["failed"] / total["recycles"] if total["recycles"] else 0.0
        share = total["failed"] / max(1, total["requests"] + total["failed"])
        lines.append(
            f"| {table[name][0]} | {total['requests']} | {total['failed']} | {total['recycles']} | "
            f"{per_recycle:.2f} | {share:.3%} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    results = BENCH / "results" / f"{TODAY}-recycling.md"
    results.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
