"""HTTP/3 load on aioquic's client: C QUIC connections, each keeping S requests in flight, for a duration.

aioquic is the only HTTP/3 stack in Python, so the client is as costly per request as a server on it: the
figure to compare servers by is the server's requests per CPU-second (bench/h3.py measures it), not this
client's rate alone. The certificate is not verified (the bench makes a throwaway one). Prints one JSON
object: requests completed in the window, seconds, errors, p50/p99 latency in ms.

    python bench/clients/h3_load.py --port 8443 --connections 4 --streams 16 --duration 5 [--path /plaintext]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import ssl
import sys
import time
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3 import events as h3
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.quic import events as quic_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

try:
    import uvloop
except ImportError:  # the load still runs, only slower
    uvloop = None  # type: ignore[assignment]


OK = 200
#: Latency samples kept: enough for a p99, bounded however long the run.
MAX_SAMPLES = 200_000


class LoadClient(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.waiters: dict[int, asyncio.Future[int]] = {}
        self.statuses: dict[int, int] = {}

    async def get(self, head: list[tuple[bytes, bytes]]) -> int:
        stream_id = self._quic.get_next_available_stream_id()
        waiter: asyncio.Future[int] = self._loop.create_future()
        self.waiters[stream_id] = waiter
        self.h3.send_headers(stream_id, head, end_stream=True)
        self.transmit()
        return await waiter

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.ConnectionTerminated):
            for waiter in self.waiters.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError(event.reason_phrase))
            self.waiters.clear()
            return
        if isinstance(event, quic_events.StreamReset):
            waiter = self.waiters.pop(event.stream_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionError(f"stream reset {event.error_code}"))
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, h3.HeadersReceived):
                status = dict(h3_event.headers).get(b":status", b"0")
                if not status.startswith(b"1"):
                    self.statuses[h3_event.stream_id] = int(status)
            if isinstance(h3_event, (h3.HeadersReceived, h3.DataReceived)) and h3_event.stream_ended:
                waiter = self.waiters.pop(h3_event.stream_id, None)
                status = self.statuses.pop(h3_event.stream_id, 0)
                if waiter is not None and not waiter.done():
                    waiter.set_result(status)


@contextlib.asynccontextmanager
async def connection(host: str, port: int) -> Any:
    loop = asyncio.get_running_loop()
    configuration = QuicConfiguration(is_client=True, alpn_protocols=list(H3_ALPN), server_name="localhost")
    configuration.verify_mode = ssl.CERT_NONE
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    quic = QuicConnection(configuration=configuration)
    transport, protocol = await loop.create_datagram_endpoint(lambda: LoadClient(quic), sock=sock)
    try:
        protocol.connect((host, port))
        await asyncio.wait_for(protocol.wait_connected(), 5)
        yield protocol
    finally:
        protocol.close()
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(protocol.wait_closed(), 1)
        transport.close()


class Run:
    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.start = 0.0
        self.end = 0.0
        self.requests = 0
        self.errors = 0
        self.latencies: list[float] = []


async def worker(client: LoadClient, head: list[tuple[bytes, bytes]], run: Run) -> None:
    while True:
        sent = time.perf_counter()
        if sent >= run.end:
            return
        try:
            status = await asyncio.wait_for(client.get(head), 10)
        except (ConnectionError, asyncio.TimeoutError):
            run.errors += 1
            return
        done = time.perf_counter()
        if status != OK:
            run.errors += 1
        elif done <= run.end:
            run.requests += 1
            if len(run.latencies) < MAX_SAMPLES:
                run.latencies.append(done - sent)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    head = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"localhost"),
        (b":path", args.path.encode()),
    ]
    run = Run(args.duration)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(connection(args.host, args.port)) for _ in range(args.connections)
        ]
        if args.probe:
            status = await clients[0].get(head)
            return {"probe_status": status}
        run.start = time.perf_counter()
        run.end = run.start + args.duration
        await asyncio.gather(*(worker(client, head, run) for client in clients for _ in range(args.streams)))
    latencies = sorted(run.latencies)

    def percentile(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 3) if latencies else 0.0

    return {
        "requests": run.requests,
        "seconds": args.duration,
        "rps": round(run.requests / args.duration, 1),
        "errors": run.errors,
        "p50_ms": percentile(0.5),
        "p99_ms": percentile(0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--streams", type=int, default=16, help="requests in flight per connection")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--path", default="/plaintext")
    parser.add_argument("--probe", action="store_true", help="one request; print its status")
    args = parser.parse_args()
    if args.duration > 60:  # noqa: PLR2004 - a load loop on a shared machine stays bounded
        parser.error("--duration is at most 60 s")
    runner = (
        asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None)
        if sys.version_info >= (3, 11)
        else None
    )
    if runner is None:
        result = asyncio.run(main_async(args))
    else:
        with runner:
            result = runner.run(main_async(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
