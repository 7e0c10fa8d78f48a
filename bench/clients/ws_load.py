"""WebSocket echo load: N connections, each keeping one fixed-size text message in flight, for a duration.

Raw asyncio over uvloop rather than a WebSocket library, so that the client's own cost per round trip is one
prebuilt write and a few slices: it must not be what limits the servers. Server pings are answered, no
extension is offered, and the key is fixed (the limit server's canned handshake depends on it). Prints one
JSON object: round trips counted in the window, seconds, errors, p50/p99 round-trip latency in ms.

    python bench/clients/ws_load.py --port 8000 --connections 32 --duration 10 [--path /ws] [--probe]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time

try:
    import uvloop
except ImportError:  # the load still runs, only slower; the suite always provides uvloop
    uvloop = None  # type: ignore[assignment]

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x5a\xc3\x3c\xa5"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
LENGTH_16, LENGTH_64 = 126, 127  # payload length markers for 16-bit and 64-bit extended lengths


def masked_frame(opcode: int, payload: bytes) -> bytes:
    if len(payload) >= LENGTH_16:
        raise ValueError("this client only sends payloads shorter than 126 bytes")
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + MASK + masked


class EchoClient(asyncio.Protocol):
    transport: asyncio.Transport

    def __init__(self, run: Run) -> None:
        self.run = run
        self.buffer = b""
        self.open = False
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(
            b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (self.run.path, KEY)
        )

    def _send(self) -> None:
        if self.run.stopping:
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.run.frame)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith((b"HTTP/1.1 101", b"HTTP/1.0 101")):
                self.run.fail(f"handshake refused: {buffer[:end].splitlines()[0]!r}")
                return
            self.open = True
            buffer = buffer[end + 4 :]
            self._send()
        offset = 0
        while True:
            header = _frame_header(buffer, offset)
            if header is None:
                break
            opcode, size, length = header
            end = offset + size + length
            if end > len(buffer):
                break
            if opcode in {TEXT, BINARY}:
                if length != self.run.size:
                    self.run.fail(f"echo of {length} bytes for a message of {self.run.size}")
                    return
                self.run.record(time.perf_counter() - self.sent_at)
                self._send()
            elif opcode == PING:
                self.transport.write(masked_frame(PONG, buffer[offset + size : end]))
            elif opcode == CLOSE:
                self.run.fail("server closed the WebSocket")
                return
            offset = end
        self.buffer = buffer[offset:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.run.stopping:
            self.run.fail(f"connection lost: {exc or 'closed by the server'}")


def _frame_header(buffer: bytes, offset: int) -> tuple[int, int, int] | None:
    """(opcode, header size, payload length) of the server frame at `offset`, or None if incomplete."""
    available = len(buffer) - offset
    if available < 2:  # noqa: PLR2004 - the fixed part of every frame header
        return None
    opcode, length = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
    extra = {LENGTH_16: 2, LENGTH_64: 8}.get(length, 0)
    if available < 2 + extra:
        return None
    if extra:
        length = int.from_bytes(buffer[offset + 2 : offset + 2 + extra], "big")
    return opcode, 2 + extra, length


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.path = args.path.encode()
        self.size = args.size
        self.frame = masked_frame(0x1, b"m" * args.size)
        self.stopping = False
        self.counting = False
        self.count = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.done = asyncio.Event()
        self.target = args.probe_messages

    def record(self, seconds: float) -> None:
        if self.counting:
            self.count += 1
            self.latencies.append(seconds)
            if self.target and self.count >= self.target:
                self.done.set()

    def fail(self, reason: str) -> None:
        self.errors.append(reason)
        self.done.set()


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    run = Run(args)
    transports = []
    for _ in range(args.connections):
        transport, _protocol = await asyncio.wait_for(
            loop.create_connection(lambda: EchoClient(run), args.host, args.port), timeout=5
        )
        transports.append(transport)
    run.counting = True
    started = time.perf_counter()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(run.done.wait(), timeout=args.duration)
    elapsed = time.perf_counter() - started
    run.stopping = True
    for transport in transports:
        transport.abort()
    return {
        "round_trips": run.count,
        "seconds": elapsed,
        "errors": len(run.errors),
        "first_error": run.errors[0] if run.errors else None,
        "p50_ms": _percentile(run.latencies, 0.50),
        "p99_ms": _percentile(run.latencies, 0.99),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--size", type=int, default=64, choices=range(1, 126), metavar="BYTES")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--probe-messages", type=int, default=0, help="stop after this many round trips (0: run the duration)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    runner = uvloop.run if uvloop is not None else asyncio.run
    result = runner(main(arguments))
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0 if not result["errors"] else 1)
