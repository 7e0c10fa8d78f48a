"""Steady keep-alive load that never retries a request, for worker recycling, reloads and drains.

Each of `--connections` clients sends one request at a time on a kept-alive connection for `--seconds`.
A response that says `Connection: close` (HTTP/1.1) or a GOAWAY (HTTP/2) is the server asking the client to
go elsewhere: the client opens a new connection for its next request, as every client does. Anything else
that ends a request without its whole response (a reset, a close under a request that was sent, a stream reset,
a status other than 200) is a failed request: it is counted and never retried. HTTP/2 streams that a GOAWAY
refuses (ids above its last-stream-id, which RFC 9113 section 6.8 lets a client retry) are counted apart, as
`refused`, and sent again on a new connection.

Prints one JSON line: {"requests": ok, "failed": n, "refused": n, "errors": {kind: count}, "connections": n}.

    python bench/clients/recycle_load.py --port 8000 --connections 16 --seconds 15 [--http2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import time
from typing import Any

REQUEST_TIMEOUT = 10.0


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.refused = 0
        self.connections = 0
        self.errors: collections.Counter[str] = collections.Counter()

    def fail(self, kind: str) -> None:
        self.errors[kind] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failed": sum(self.errors.values()),
            "refused": self.refused,
            "errors": dict(self.errors),
            "connections": self.connections,
        }


async def http1_client(host: str, port: int, path: str, until: float, tally: Tally) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < until:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
                tally.connections += 1
            assert reader is not None  # noqa: S101 - opened together with the writer
            writer.write(request)
            close = await asyncio.wait_for(read_http1_response(reader), REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            tally.fail("timeout")
            close = True
        except asyncio.IncompleteReadError as exc:
            tally.fail("closed before the whole response" if exc.partial else "closed under a sent request")
            close = True
        except (OSError, ValueError) as exc:
            tally.fail(type(exc).__name__)
            close = True
        else:
            tally.requests += 1
        if close and writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            reader = writer = None
    if writer is not None:
        writer.close()


async def read_http1_response(reader: asyncio.StreamReader) -> bool:
    """Read one response; returns whether the server asked to close. Raises ValueError on a bad status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and "close" in value.lower():
            close = True
    await reader.readexactly(length)
    if status != 200:  # noqa: PLR2004
        raise ValueError(f"status {status}")
    return close


async def http2_client(host: str, port: int, path: str, until: float, tally: Tally) -> None:
    import h2.config  # noqa: PLC0415 - only the HTTP/2 mode needs h2
    import h2.connection  # noqa: PLC0415
    import h2.events  # noqa: PLC0415

    headers = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", f"{host}:{port}")]
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            tally.fail(type(exc).__name__)
            await asyncio.sleep(0.01)
            continue
        tally.connections += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        going_away = False
        buffer = b""
        try:
            while not going_away and time.monotonic() < until:
                stream_id = conn.get_next_available_stream_id()
                conn.send_headers(stream_id, headers, end_stream=True)
                writer.write(conn.data_to_send())
                status, done = None, False
                while not done:
                    data = await asyncio.wait_for(reader.read(65536), REQUEST_TIMEOUT)
                    if not data:
                        tally.fail("closed under an open stream")
                        done = going_away = True
                        break
                    buffer += data
                    frames, buffer = whole_frames(buffer)
                    for event in receive_frames(conn, frames):
                        if isinstance(event, h2.events.ResponseReceived):
                            status = dict(event.headers).get(b":status")
                        elif isinstance(event, h2.events.DataReceived):
                            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                            done = True
                            if status == b"200":
                                tally.requests += 1
                            else:
                                tally.fail(f"status {status!r}")
                        elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                            tally.fail(f"stream reset {event.error_code!r}")
                            done = True
                        elif isinstance(event, h2.events.ConnectionTerminated):
                            going_away = True
                            last = event.last_stream_id
                            if not done and last is not None and stream_id > last:
                                tally.refused += 1  # never processed: the next connection sends it again
                                done = True
                    writer.write(conn.data_to_send())
        except asyncio.TimeoutError:
            tally.fail("timeout")
        except (OSError, asyncio.IncompleteReadError) as exc:
            tally.fail(type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - h2 protocol errors: the server sent something broken
            tally.fail(f"protocol: {type(exc).__name__}")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def whole_frames(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut the complete HTTP/2 frames (9-byte header and payload) off the front of `buffer`."""
    frames = []
    while len(buffer) >= 9:  # noqa: PLR2004 - the frame header
        end = 9 + int.from_bytes(buffer[:3], "big")
        if len(buffer) < end:
            break
        frames.append(buffer[:end])
        buffer = buffer[end:]
    return frames, buffer


def receive_frames(conn: Any, frames: list[bytes]) -> list[Any]:
    """Feed h2 one frame at a time. After a GOAWAY, h2's connection state machine refuses every further frame,
    though RFC 9113 section 6.8 has the streams up to the GOAWAY's last-stream-id go on (and a graceful server
    sends a second GOAWAY): a client that wants those responses must take them, so the state is reopened."""
    import h2.connection  # noqa: PLC0415
    import h2.events  # noqa: PLC0415

    events = []
    for frame in frames:
        received = conn.receive_data(frame)
        events += received
        if any(isinstance(event, h2.events.ConnectionTerminated) for event in received):
            conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
    return events


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--http2", action="store_true", help="HTTP/2 with prior knowledge (h2c)")
    args = parser.parse_args()
    tally = Tally()
    until = time.monotonic() + args.seconds
    client = http2_client if args.http2 else http1_client
    await asyncio.gather(*(client(args.host, args.port, args.path, until, tally) for _ in range(args.connections)))
    print(json.dumps(tally.summary()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
