"""Slow readers: how much a server grows for clients that ask for a lot and read almost nothing.

Eight connections each pipeline 32 GETs of a 1 MiB response, two more each ask for a 64 MiB response streamed in
64 KiB messages, and every connection reads 1 KiB a second. A server that starts each pipelined request as soon
as the previous response was handed to its transport (not once it left) queues all 256 MiB; one that waits for
its write buffer holds about a buffer and a message per connection. The script prints the server's resident
memory (VmRSS of its process tree, from /proc) before, at the peak, at the end, and once the clients are gone.

It is bounded (15 s of slow reading by default) and binds loopback only. The server is any command line, with
`{port}` and `{bench}` (this directory) filled in; it runs with this directory as its working directory and
serves the app in this module (`slow_readers:app`), which any ASGI server can import:

    python bench/slow_readers.py --ours                       # asgi-core's server with asgi-http1, standalone
    python bench/slow_readers.py -- gunicorn-asgi --worker-class egg:gunicorn-asgi#asgi -w 1 \\
        --bind 127.0.0.1:{port} --no-control-socket slow_readers:app
    python bench/slow_readers.py -- gunicorn -k asgi -w 1 --bind 127.0.0.1:{port} --no-control-socket slow_readers:app
    python bench/slow_readers.py -- uvicorn --host 127.0.0.1 --port {port} slow_readers:app
    python bench/slow_readers.py -- hypercorn --bind 127.0.0.1:{port} --workers 1 slow_readers:app

Standard library only on the client side; `--ours` needs asgi-core and asgi-http1 importable.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from suite.procs import can_connect, free_port, rss_bytes  # noqa: E402 - after the path is set

MIB = 1 << 20
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# ---- the app ---------------------------------------------------------------------------------------------------


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`/bytes/N`: N bytes in one message. `/stream/N/C`: N bytes in messages of C bytes. Anything else: 404."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    parts = scope["path"].strip("/").split("/")
    octets = [(b"content-type", b"application/octet-stream")]
    if len(parts) == 2 and parts[0] == "bytes" and parts[1].isdigit():  # noqa: PLR2004 - /bytes/N
        size = int(parts[1])
        body = b"x" * size  # made per request, as a real app makes its responses: what a server holds is real
        headers = [*octets, (b"content-length", b"%d" % size)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif len(parts) == 3 and parts[0] == "stream" and parts[1].isdigit() and parts[2].isdigit():  # noqa: PLR2004
        total, piece = int(parts[1]), max(1, int(parts[2]))
        await send({"type": "http.response.start", "status": 200, "headers": octets})
        sent = 0
        while sent < total:
            part = b"y" * min(piece, total - sent)  # a new message each time, as a real stream makes them
            await send({"type": "http.response.body", "body": part, "more_body": True})
            sent += len(part)
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"9")]})
        await send({"type": "http.response.body", "body": b"not found"})


def serve_ours(port: int) -> None:
    """asgi-core's standalone server with asgi-http1 (on uvloop when installed), serving `app`."""
    import asyncio  # noqa: PLC0415 - only the server side needs these

    from asgi_core import Config, serve  # noqa: PLC0415
    from asgi_http1 import HTTP1Protocol  # noqa: PLC0415

    runner = asyncio.run
    try:
        import uvloop  # noqa: PLC0415

        runner = uvloop.run
    except ImportError:
        pass
    runner(serve(app, HTTP1Protocol, host="127.0.0.1", port=port, config=Config(lifespan="off")))


# ---- the clients -----------------------------------------------------------------------------------------------


class SlowReader(threading.Thread):
    """One connection: sends its requests at once, then reads `rate` bytes a second until told to stop."""

    def __init__(self, port: int, requests: bytes, rate: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.requests = requests
        self.rate = rate
        self.stop = stop
        self.received = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(self.requests)
                sock.settimeout(0.2)
                next_read = time.monotonic()
                while not self.stop.is_set():
                    now = time.monotonic()
                    if now < next_read:
                        self.stop.wait(next_read - now)
                        continue
                    next_read += 1.0
                    try:
                        data = sock.recv(self.rate)
                    except TimeoutError:
                        continue
                    if not data:
                        self.error = "closed by the server"
                        return
                    self.received += len(data)
        except OSError as exc:
            self.error = repr(exc)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def warm_up(port: int) -> None:
    """One request of each kind, read whole: imports and caches settle before the first reading."""
    for path in ("/bytes/1048576", f"/stream/{MIB}/65536"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(get(path)[:-2] + b"Connection: close\r\n\r\n")
            while sock.recv(1 << 20):
                pass


# ---- the run ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the clients read slowly")
    parser.add_argument("--connections", type=int, default=8, help="connections pipelining 1 MiB GETs")
    parser.add_argument("--pipelined", type=int, default=32, help="GETs pipelined on each of them")
    parser.add_argument("--streams", type=int, default=2, help="connections asking for a 64 MiB stream")
    parser.add_argument("--rate", type=int, default=1024, help="bytes each connection reads per second")
    parser.add_argument("--port", type=int, default=0, help="port for the server (default: a free one)")
    parser.add_argument("--ours", action="store_true", help="run asgi-core's server with asgi-http1")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server side of --ours
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the server command line, after --")
    return parser.parse_args(argv)


def start_server(command: list[str], port: int) -> subprocess.Popen[bytes]:
    filled = [part.replace("{port}", str(port)).replace("{bench}", str(BENCH)) for part in command]
    # Its own session, so that what it spawns (a Gunicorn worker) can be stopped with it.
    server = subprocess.Popen(filled, cwd=BENCH, start_new_session=True)
    deadline = time.monotonic() + 30
    while not can_connect(port):
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise SystemExit(f"slow_readers: the server did not start: {' '.join(filled)}")
        time.sleep(0.1)
    return server


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the session this script started for it
            server.wait(5)


def measure(args: argparse.Namespace, server: subprocess.Popen[bytes], port: int) -> dict[str, Any]:
    warm_up(port)
    time.sleep(0.5)
    baseline = peak = rss_bytes(server.pid)
    stop = threading.Event()
    pipelined = b"".join(get("/bytes/1048576") for _ in range(args.pipelined))
    readers = [SlowReader(port, pipelined, args.rate, stop) for _ in range(args.connections)]
    readers += [SlowReader(port, get(f"/stream/{64 * MIB}/65536"), args.rate, stop) for _ in range(args.streams)]
    for reader in readers:
        reader.start()
    ends = time.monotonic() + args.seconds
    while time.monotonic() < ends:
        time.sleep(0.25)
        peak = max(peak, rss_bytes(server.pid))
    end = rss_bytes(server.pid)
    stop.set()
    for reader in readers:
        reader.join(5)
    time.sleep(2.0)  # the server notices the clients left and lets go of what it held for them
    after = rss_bytes(server.pid)
    return {
        "seconds": args.seconds,
        "connections": args.connections,
        "pipelined": args.pipelined,
        "streams": args.streams,
        "rate": args.rate,
        "baseline_mib": round(baseline / MIB, 1),
        "peak_mib": round(peak / MIB, 1),
        "end_mib": round(end / MIB, 1),
        "after_clients_left_mib": round(after / MIB, 1),
        "growth_mib": round((peak - baseline) / MIB, 1),
        "held_after_mib": round((after - baseline) / MIB, 1),
        "client_bytes_read": sum(reader.received for reader in readers),
        "client_errors": [reader.error for reader in readers if reader.error],
    }


def main() -> int:
    args = parse_args()
    if args.serve:
        serve_ours(args.port)
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.ours:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", "--port", "{port}"]
    if not command:
        print("slow_readers: give --ours or a server command line after --", file=sys.stderr)
        return 2
    port = args.port or free_port()
    server = start_server(command, port)
    try:
        result = measure(args, server, port)
    finally:
        stop_server(server)
    print(
        f"RSS growth {result['growth_mib']} MiB (baseline {result['baseline_mib']} MiB, peak {result['peak_mib']}"
        f" MiB), {result['held_after_mib']} MiB still held 2 s after the clients left"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
