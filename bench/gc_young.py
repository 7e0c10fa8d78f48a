"""What CPython's young-generation threshold costs one gunicorn-asgi worker serving many HTTP/2 streams at once:
h2load against a worker at the interpreter's default and at higher thresholds, in interleaved rounds.

With hundreds of streams in flight, the objects of the requests still being served keep the young generation's
count above its default threshold (700), so the collector runs every few batches and frees almost nothing. The
server leaves the thresholds to the app (a higher one also lets cyclic garbage wait longer); this measures what
raising it in a `post_worker_init` hook gains, to back the advice in docs/how-to/http2.md.

Each variant is a fresh server (cleartext HTTP/2, by prior knowledge here, so that TLS does not blur the figure) whose
`gunicorn.conf.py` sets the threshold, counts the collections and writes the count when the worker exits. The
figure is requests per CPU-second of the worker (from /proc), medians over the rounds.

    python bench/gc_young.py [--thresholds default,10000] [--streams 16,100] [--rounds 3] [--duration 4]

Run it with an interpreter that has the workspace packages (the hatch test env, or bench/.venvs/ours). Needs
h2load (Debian: nghttp2-client). Load goes to 127.0.0.1 only; every server is stopped by its own PID.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ops_cost import add_round_options, free_port, pinned, start, stop

#: Longest a whole run may take, whatever the arguments: the machine is shared.
BUDGET = 300.0
CLOCK_TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux

_HOOK = """\
import atexit, gc, json

def post_worker_init(worker):
    if {threshold!r} is not None:
        gc.set_threshold({threshold!r}, 10, 10)
    atexit.register(_report)

def _report():
    with open({report!r}, "w") as out:
        json.dump([stats["collections"] for stats in gc.get_stats()], out)
"""


def _config(tmp: Path, name: str) -> tuple[Path, Path]:
    report = tmp / f"{name}.gc.json"
    config = tmp / f"{name}.conf.py"
    threshold = None if name == "default" else int(name)
    config.write_text(_HOOK.format(threshold=threshold, report=str(report)))
    return config, report


def _worker_cpu_seconds(master: int) -> float:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    fields = Path(f"/proc/{children[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _h2load(port: int, streams: int, seconds: float, cpu: int | None) -> int:
    command = ["h2load", "-c8", f"-m{streams}", "-D", f"{seconds:g}", f"http://127.0.0.1:{port}/plaintext"]
    done = subprocess.run(pinned(cpu, command), capture_output=True, text=True, timeout=seconds + 30, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("requests:"):
            fields = line.split()
            succeeded, total = int(fields[7]), int(fields[1])
            if succeeded == 0 or succeeded < total * 0.99:
                break
            return succeeded
    raise RuntimeError(f"h2load failed or saw errors:\n{done.stdout}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thresholds", default="default,10000", help="comma-separated; 'default' first")
    parser.add_argument("--streams", default="16,100", help="h2load -m values, comma-separated")
    add_round_options(parser)
    args = parser.parse_args()
    if not shutil.which("h2load"):
        sys.exit("gc_young.py needs h2load (Debian: apt-get install nghttp2-client)")
    names = [name.strip() for name in args.thresholds.split(",") if name.strip()]
    if not names or names[0] != "default" or not all(name.isdigit() and int(name) > 0 for name in names[1:]):
        sys.exit("--thresholds: 'default' first, then whole numbers above 0")
    shapes = [int(value) for value in args.streams.split(",")]
    server_cpu, client_cpu = (None, None) if args.no_pin else (args.server_cpu, args.client_cpu)
    per_run = (args.duration + args.warmup) * len(shapes) + 3.0
    if per_run * len(names) * args.rounds > BUDGET:
        sys.exit(f"{args.rounds} rounds x {len(names)} thresholds x {len(shapes)} shapes exceed {BUDGET:.0f} s")
    per_cpu: dict[tuple[str, int], list[float]] = {}
    collections: dict[str, list[int]] = {}
    served: dict[str, int] = {}
    flags = ["--http-protocols", "h2,h1", "--http2-cleartext", "both", "--forwarded-allow-ips", "127.0.0.1"]
    with tempfile.TemporaryDirectory(prefix="gc-young-") as tmp_name:
        tmp = Path(tmp_name)
        for number in range(args.rounds):
            order = names[number % len(names) :] + names[: number % len(names)]  # rotate: no variant always first
            for name in order:
                config, report = _config(tmp, name)
                port = free_port()
                proc = start([*flags, "-c", str(config)], port, server_cpu, tmp / f"{name}.server.log")
                try:
                    for streams in shapes:
                        if args.warmup:
                            served[name] = served.get(name, 0) + _h2load(port, streams, args.warmup, client_cpu)
                        before = _worker_cpu_seconds(proc.pid)
                        requests = _h2load(port, streams, args.duration, client_cpu)
                        used = _worker_cpu_seconds(proc.pid) - before
                        per_cpu.setdefault((name, streams), []).append(requests / used)
                        served[name] = served.get(name, 0) + requests
                        print(
                            f"round {number + 1} {name:8} m{streams:<4} {requests / used:9.0f} req/CPU-s",
                            flush=True,
                        )
                finally:
                    stop(proc)
                counts = json.loads(report.read_text()) if report.exists() else [0, 0, 0]
                collections[name] = [a + b for a, b in zip(collections.get(name, [0, 0, 0]), counts, strict=True)]
    print(
        f"\n| threshold | {' | '.join(f'-c8 -m{s}: req/CPU-s (vs default)' for s in shapes)} | collections 0/1/2 |"
    )
    print(f"| --- | {' | '.join('---:' for _ in shapes)} | --- |")
    for name in names:
        cells = []
        for streams in shapes:
            mine, base = statistics.median(per_cpu[name, streams]), statistics.median(per_cpu["default", streams])
            cells.append(f"{mine:,.0f} ({100 * (mine / base - 1):+.1f}%)")
        counted = " / ".join(f"{count:,}" for count in collections[name])
        print(f"| {name} | {' | '.join(cells)} | {counted} in {served[name]:,} requests (worker lives) |")


if __name__ == "__main__":
    main()
