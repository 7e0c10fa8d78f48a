"""Per-request cost of an HTTP/1.1 protocol object, without sockets: where our time goes, next to uvicorn's.

A fake transport feeds one keep-alive request at a time into the protocol and answers each complete response
with the next request, on a real event loop, so the figure is the server's own Python work per request (no
syscalls, no load client). Use it to find and check hot-path changes quickly; the numbers that count are the
suite's (`run.py`), which measure whole servers on real sockets.

    python bench/profile_http1.py --server ours --requests 200000
    python bench/profile_http1.py --server uvicorn --profile       # cProfile, top functions by own time

Needs asgi-http1 (and uvicorn, uvloop, httptools for those choices) importable.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import app

REQUESTS = {
    "plaintext": b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "json": b"GET /json HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "stream": b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "post": b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 16384\r\n\r\n" + b"x" * 16384,
}
# What ends each scenario's response, so the driver knows when to send the next request.
RESPONSE_ENDS = {"plaintext": b"Hello, world!", "json": b"}", "stream": b"0\r\n\r\n", "post": b"x"}


class LoopbackTransport(asyncio.Transport):
    """Counts responses and answers each with the next request, on the next loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: bytes, end: bytes, count: int) -> None:
        super().__init__()
        self.loop = loop
        self.request = request
        self.end = end
        self.remaining = count
        self.writes = 0
        self.protocol: asyncio.Protocol | None = None
        self.done: asyncio.Future[None] = loop.create_future()
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        if bytes(data[-len(self.end) :]) != self.end:
            return
        self.remaining -= 1
        if self.remaining > 0:
            self.loop.call_soon(self.feed)
        elif not self.done.done():
            self.done.set_result(None)

    def feed(self) -> None:
        if self.protocol is None:
            raise RuntimeError("no protocol to feed")
        self.protocol.data_received(self.request)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        if not self.done.done():
            self.done.set_exception(RuntimeError("the server closed the connection"))

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def make_protocol(server: str) -> asyncio.Protocol:
    # Each server's modules are imported only when it is asked for: either may be missing from the environment.
    if server == "ours":
        from asgi_core import ServerContext  # noqa: PLC0415
        from asgi_http1 import HTTP1Protocol  # noqa: PLC0415

        return HTTP1Protocol(ServerContext(app=app))
    from uvicorn.config import Config  # noqa: PLC0415
    from uvicorn.server import ServerState  # noqa: PLC0415

    config = Config(app=app, http="httptools", lifespan="off", access_log=False)
    config.load()
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

    return HttpToolsProtocol(config, ServerState(), app_state={})


async def drive(server: str, scenario: str, count: int) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    transport = LoopbackTransport(loop, REQUESTS[scenario], RESPONSE_ENDS[scenario], count)
    protocol = make_protocol(server)
    transport.protocol = protocol
    protocol.connection_made(transport)
    started = time.process_time()
    transport.feed()
    await transport.done
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed, transport.writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("ours", "uvicorn", "both"), default="both")
    parser.add_argument("--scenario", choices=sorted(REQUESTS), default="plaintext")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=5, help="runs to take the fastest of (noise only adds)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions by own time")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop  # noqa: PLC0415 - optional

        runner = uvloop.run
    else:
        runner = asyncio.run
    servers = ("ours", "uvicorn") if args.server == "both" else (args.server,)
    for server in servers:
        runner(drive(server, args.scenario, 1000))  # warm up caches and imports
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        runner(drive(servers[0], args.scenario, args.requests))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    best: dict[str, tuple[float, int]] = {}
    for _ in range(args.trials):  # interleaved, so that a noisy moment hurts both alike
        for server in servers:
            result = runner(drive(server, args.scenario, args.requests))
            best[server] = min(best.get(server, result), result)
    for server, (elapsed, writes) in best.items():
        print(
            f"{server} {args.scenario} on {args.loop}: {elapsed / args.requests * 1e6:.2f} us of CPU per request, "
            f"{args.requests / elapsed:,.0f} requests per CPU-second, {writes / args.requests:.2f} writes per request"
        )
    if len(best) == 2:  # noqa: PLR2004 - ours and uvicorn
        print(f"ours / uvicorn, requests per CPU-second: {best['uvicorn'][0] / best['ours'][0]:.2f}")


if __name__ == "__main__":
    main()
