"""Per-request cost of our HTTP/2 protocol object, without sockets or TLS: where the time of a stream goes.

The h2load scenario of the suite in miniature: a client's bytes for batches of `--streams` concurrent GET
requests (HEADERS with END_STREAM, HPACK-compressed as a client would) are made up front, then fed to one
`H2Protocol` batch by batch on a real event loop, each batch once the previous one's streams have all been
answered. What is measured is therefore the server's own work per stream: h2, HPACK, our protocol and the
request cycle. Use it to find and check hot-path changes quickly (under `valgrind --tool=callgrind` its
instruction counts are steady where CPU time on a shared machine is not); the figures that count are the
suite's (`run.py --scenarios h2`), which measure whole servers over TLS.

    python bench/profile_h2.py --requests 100000
    python bench/profile_h2.py --profile            # cProfile, top functions by own time
    python bench/profile_h2.py --streams 100        # h2load's -m: concurrent streams per batch (default 16)

Under callgrind, the client's bytes are made in the same process; `--client-only` makes them and stops, so
that their instructions can be taken out of the server's (bench/README.md, "Profiling the HTTP/2 path").

Needs asgi-h2 and uvloop importable.
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

import h2.config
import h2.connection

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import app

#: What h2load sends for each request of the suite's scenario.
REQUEST_HEADERS = [
    (b":method", b"GET"),
    (b":path", b"/plaintext"),
    (b":scheme", b"https"),
    (b":authority", b"127.0.0.1:8443"),
    (b"user-agent", b"h2load nghttp2/1.52.0"),
]


def client_bytes(batches: int, streams: int) -> tuple[bytes, list[bytes]]:
    """The connection preface, then one chunk of bytes per batch of `streams` new requests."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.increment_flow_control_window(2**31 - 1 - 65535)  # room for every response body, once
    preface = client.data_to_send()
    chunks = []
    stream_id = 1
    for _ in range(batches):
        for _ in range(streams):
            client.send_headers(stream_id, REQUEST_HEADERS, end_stream=True)
            stream_id += 2
        chunks.append(client.data_to_send())
        client.streams.clear()  # no responses come back here: forget the streams, or each new one costs more
    return preface, chunks


class SinkTransport(asyncio.Transport):
    """Takes whatever the server writes; counts the writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8443)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def drive(preface: bytes, chunks: list[bytes]) -> tuple[float, int]:
    from asgi_core import ServerContext  # noqa: PLC0415
    from asgi_h2 import H2Protocol  # noqa: PLC0415

    transport = SinkTransport()
    protocol = H2Protocol(ServerContext(app=app))
    protocol.connection_made(transport)
    protocol.data_received(preface)
    started = time.process_time()
    for chunk in chunks:
        protocol.data_received(chunk)
        # Every stream of the batch answered (a stream is dropped once it has ended). Polling, not an Event:
        # the protocol has no hook for "all streams done", and a turn of the loop is what the server gets anyway.
        while protocol.streams:  # noqa: ASYNC110
            await asyncio.sleep(0)
        if transport.closing:
            raise RuntimeError("the server closed the connection")
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed, transport.writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=16, help="concurrent streams per batch, as h2load -m")
    parser.add_argument("--trials", type=int, default=3, help="runs to take the fastest of (noise only adds)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions by own time")
    parser.add_argument("--client-only", action="store_true", help="make the client's bytes, serve nothing")
    args = parser.parse_args()
    import uvloop  # noqa: PLC0415

    batches = max(1, args.requests // args.streams)
    requests = batches * args.streams
    warm_up = client_bytes(max(1, 1000 // args.streams), args.streams)
    if not args.client_only:
        uvloop.run(drive(*warm_up))
    preface, chunks = client_bytes(batches, args.streams)
    if args.client_only:
        return
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        uvloop.run(drive(preface, chunks))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    elapsed, writes = min(uvloop.run(drive(preface, chunks)) for _ in range(args.trials))
    print(
        f"ours h2 ({args.streams} streams a batch): {elapsed / requests * 1e6:.2f} us of CPU per request, "
        f"{requests / elapsed:,.0f} requests per CPU-second, {writes / batches:.2f} writes per batch"
    )


if __name__ == "__main__":
    main()
