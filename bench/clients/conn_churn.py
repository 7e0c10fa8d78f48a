"""Connection churn and idle connections for the memory scenario.

`churn`: open N connections (C at a time), send one keep-alive GET on each, read the whole response, close
from the client side (the path where a server forgets per-connection state). `hold`: open N connections with
one request each and keep them idle; print `held N` once all are answered, then wait for a line on stdin (or
the time limit) before closing them. Prints one JSON summary line at the end.

    python bench/clients/conn_churn.py churn --port 8000 --connections 100000 --concurrency 64
    python bench/clients/conn_churn.py hold --port 8000 --connections 1000 --seconds 60
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
except ImportError:  # slower, still correct; the suite always provides uvloop
    uvloop = None  # type: ignore[assignment]

REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
MAX_ERRORS = 100  # past this many failed connections the server is broken; stop churning
BATCH = 100  # idle connections opened at a time


class OneRequest(asyncio.Protocol):
    """Sends the request on connect and resolves `answered` once a whole Content-Length response arrived."""

    def __init__(self, answered: asyncio.Future[None]) -> None:
        self.answered = answered
        self.buffer = b""
        self.expected = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(REQUEST)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expected < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            if not head.startswith(b"http/1.1 200"):
                self._settle(ConnectionError(f"unexpected response {head.splitlines()[0]!r}"))
                return
            marker = head.find(b"content-length:")
            if marker < 0:
                self._settle(ConnectionError("response without content-length"))
                return
            length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
            self.expected = end + 4 + length
        if len(self.buffer) >= self.expected:
            self._settle(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(ConnectionError(f"closed before the response completed: {exc}"))

    def _settle(self, error: Exception | None) -> None:
        if self.answered.done():
            return
        if error is None:
            self.answered.set_result(None)
        else:
            self.answered.set_exception(error)


async def _open(host: str, port: int) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: OneRequest(answered), host, port)
    try:
        await asyncio.wait_for(answered, timeout=10)
    except BaseException:
        transport.abort()
        raise
    return transport


async def churn(args: argparse.Namespace) -> dict[str, object]:
    remaining = args.connections
    errors: list[str] = []

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0 and len(errors) < MAX_ERRORS:
            remaining -= 1
            try:
                transport = await _open(args.host, args.port)
            except (OSError, asyncio.TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            transport.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(lane() for _ in range(args.concurrency))), timeout=args.seconds)
    return {
        "connections": args.connections - max(remaining, 0) - len(errors),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": time.perf_counter() - started,
    }


async def hold(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    held: list[asyncio.Transport] = []
    errors: list[str] = []
    started = time.perf_counter()
    for batch in range(0, args.connections, BATCH):
        results = await asyncio.gather(
            *(_open(args.host, args.port) for _ in range(min(BATCH, args.connections - batch))),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                errors.append(f"{type(result).__name__}: {result}")
            else:
                held.append(result)
    print(f"held {len(held)}", flush=True)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout=args.seconds)
    still_open = sum(not transport.is_closing() for transport in held)
    for transport in held:
        transport.close()
    return {
        "connections": len(held),
        "still_open": still_open,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": time.perf_counter() - started,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["churn", "hold"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=300.0, help="upper bound on the whole run")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    runner = uvloop.run if uvloop is not None else asyncio.run
    summary = runner(churn(arguments) if arguments.mode == "churn" else hold(arguments))
    print(json.dumps(summary), flush=True)
    # Not sys.exit: a stdin reader thread left blocked by the hold timeout would keep the process alive.
    os._exit(1 if summary["errors"] else 0)
