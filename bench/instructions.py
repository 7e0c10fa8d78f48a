#!/usr/bin/env python3
"""CPU instructions per HTTP/1.1 request, counted by valgrind's callgrind: a measure that the machine's noise
does not move, for comparing two builds of our server on one scenario.

The bench app is served by asgi-core's `serve` on uvloop, under callgrind, for N1 and then N2 requests from a
client outside valgrind (one request at a time); the difference of the two totals over N2 - N1 is the cost of a
request with startup and shutdown taken out. `close` opens a connection per request (`Connection: close`),
`keep` sends every request on one keep-alive connection.

    python bench/instructions.py [--python PATH] [--mode close|keep] [--requests 200 1200] [--keep-output DIR]

`--python` is the interpreter whose installed packages are measured, e.g. a venv holding the compiled wheels
of `tools/compiled_wheels.py --install --python PATH`; by default this one. `--keep-output` keeps the callgrind
files for `callgrind_annotate`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
_SERVER = """
import asyncio, sys
sys.path.insert(0, {bench!r})
import uvloop
from asgi_core import Config, serve
from app import app

PORT, LIMIT, READY = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


async def main():
    stop = asyncio.Event()

    def ready(server):
        async def watch():
            while server.requests_served < LIMIT:
                await asyncio.sleep(0.05)
            stop.set()

        asyncio.get_running_loop().create_task(watch())
        open(READY, "w").close()

    await serve(app, port=PORT, config=Config(lifespan="off"), stop=stop, ready=ready, graceful_timeout=1)


uvloop.run(main())
"""
_CLOSE = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
_KEEP = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_requests(port: int, count: int, mode: str) -> None:
    if mode == "close":
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.sendall(_CLOSE)
                while sock.recv(65536):
                    pass
        return
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        stream = sock.makefile("rb")
        for _ in range(count):
            sock.sendall(_KEEP)
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            stream.read(length)


def count_instructions(python: str, requests: int, mode: str, workdir: Path) -> int:
    port = free_port()
    ready = workdir / f"ready-{mode}-{requests}"
    ready.unlink(missing_ok=True)
    script = workdir / "server.py"
    script.write_text(_SERVER.format(bench=str(BENCH)))
    out = workdir / f"callgrind.{mode}.{requests}.out"
    log = workdir / f"callgrind.{mode}.{requests}.log"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, str(script)]
    with log.open("wb") as stderr:
        server = subprocess.Popen(
            [*command, str(port), str(requests), str(ready)], stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            deadline = time.monotonic() + 300
            while not ready.exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start under valgrind: see {log}")
                time.sleep(0.1)
            send_requests(port, requests, mode)
            server.wait(timeout=600)
        finally:
            if server.poll() is None:
                server.kill()
    found = re.search(r"Collected : (\d+)", log.read_text())
    if found is None:
        raise SystemExit(f"no instruction count in {log}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--mode", choices=("close", "keep"), default="close")
    parser.add_argument("--requests", type=int, nargs=2, default=(200, 1200), metavar=("N1", "N2"))
    parser.add_argument("--keep-output", type=Path, help="keep the callgrind files here")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    first, second = args.requests
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as temporary:
        workdir = args.keep_output or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        low = count_instructions(args.python, first, args.mode, workdir)
        high = count_instructions(args.python, second, args.mode, workdir)
    print(f"{args.mode}: {(high - low) / (second - first):,.0f} instructions per request ({args.python})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
