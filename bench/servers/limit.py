"""The "limit" server: the most a single Python process on uvloop can answer, the ceiling for every peer.

It never parses a request. HTTP/1.1 requests are counted by their blank line and each gets the same canned
response; WebSocket messages are counted by their fixed frame size and each gets a canned echo; HTTP/2 is
answered from frame headers alone (the stream id is all a response needs); a uWSGI packet gets a canned
HTTP response and a close. Every scenario's canned reply has the same bytes the real servers send, so the
load clients see identical traffic.

    python bench/servers/limit.py --port 8000 --scenario plaintext [--certfile C --keyfile K]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop
from app import ONE_MIB, PLAINTEXT, STREAM_CHUNKS

# The WebSocket load client sends this key and 64-byte masked text frames; see clients/ws_load.py.
WS_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
WS_PAYLOAD = 64
WS_CLIENT_FRAME = 2 + 4 + WS_PAYLOAD
POST_BODY_SIZE = 16 * 1024
# HTTP/2 frame types and flags (RFC 9113 section 6) that the canned responder looks at.
FRAME_HEADER = 9
HEADERS, SETTINGS, PING, GOAWAY = 0x1, 0x4, 0x6, 0x7
END_STREAM = ACK = 0x1
#: The HTTP/2 scenarios (h2load with 16, 1 and 100 streams per connection): one canned responder for all.
H2_SCENARIOS = ("h2", "h2-1", "h2-100")


def _response(content_type: bytes, body: bytes, *, close: bool = False) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nserver: limit\r\ncontent-type: %s\r\ncontent-length: %d\r\n" % (
        content_type,
        len(body),
    )
    if close:
        head += b"connection: close\r\n"
    return head + b"\r\n" + body


def _chunked(content_type: bytes, chunks: tuple[bytes, ...]) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nserver: limit\r\ncontent-type: %s\r\ntransfer-encoding: chunked\r\n\r\n" % (
        content_type
    )
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


HTTP_REPLIES = {
    "plaintext": _response(b"text/plain", PLAINTEXT),
    "memory": _response(b"text/plain", PLAINTEXT),
    "json": _response(b"application/json", json.dumps({"message": "Hello, world!"}).encode()),
    "post": _response(b"application/octet-stream", b"x" * POST_BODY_SIZE),
    "close": _response(b"text/plain", PLAINTEXT, close=True),
    "stream": _chunked(b"text/plain", STREAM_CHUNKS),
    "1mib": _response(b"application/octet-stream", ONE_MIB),
}


class CannedHTTP(asyncio.Protocol):
    """One canned response per request head seen; the split of a blank line across reads is tracked."""

    def __init__(self, reply: bytes, *, close: bool) -> None:
        self.reply = reply
        self.close = close
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        window = self.tail + data
        count = window.count(b"\r\n\r\n")
        # Keep what could be the start of a blank line split across reads, never part of one already counted.
        last = window.rfind(b"\r\n\r\n")
        start = max(len(window) - 3, 0 if last < 0 else last + 4)
        self.tail = window[start:]
        if count:
            self.transport.write(self.reply * count)
            if self.close:
                self.transport.close()


class CannedWebSocket(asyncio.Protocol):
    """A canned 101 for the first head, then one canned echo frame per fixed-size client frame."""

    HANDSHAKE = (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-accept: " + WS_ACCEPT + b"\r\n\r\n"
    )
    ECHO = bytes([0x81, WS_PAYLOAD]) + b"m" * WS_PAYLOAD

    def __init__(self) -> None:
        self.head = b""
        self.open = False
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.open = True
            self.transport.write(self.HANDSHAKE)
            data = self.head[end + 4 :]
        self.pending += len(data)
        frames, self.pending = divmod(self.pending, WS_CLIENT_FRAME)
        if frames:
            self.transport.write(self.ECHO * frames)


class CannedH2(asyncio.Protocol):
    """HTTP/2 from frame headers only: settings and pings acknowledged, each request's HEADERS answered."""

    PREFACE = 24
    SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
    # HEADERS with END_HEADERS carrying ":status: 200" (HPACK static index 8), then the body with END_STREAM.
    STATUS_200 = b"\x88"

    def __init__(self) -> None:
        self.buffer = b""
        self.preface_left = self.PREFACE

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # our (empty) SETTINGS

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if self.preface_left:
            skipped = min(self.preface_left, len(buffer))
            self.preface_left -= skipped
            buffer = buffer[skipped:]
        out = []
        offset = 0
        while len(buffer) - offset >= FRAME_HEADER:
            length = int.from_bytes(buffer[offset : offset + 3], "big")
            end = offset + FRAME_HEADER + length
            if end > len(buffer):
                break
            kind, flags = buffer[offset + 3], buffer[offset + 4]
            stream = buffer[offset + 5 : offset + 9]
            if kind == HEADERS and flags & END_STREAM:  # a whole GET: answer it
                out.append(struct.pack(">I", len(self.STATUS_200))[1:] + b"\x01\x04" + stream + self.STATUS_200)
                out.append(struct.pack(">I", len(PLAINTEXT))[1:] + b"\x00\x01" + stream + PLAINTEXT)
            elif kind == SETTINGS and not flags & ACK:
                out.append(self.SETTINGS_ACK)
            elif kind == PING and not flags & ACK:
                out.append(b"\x00\x00\x08\x06\x01\x00\x00\x00\x00" + buffer[offset + FRAME_HEADER : end])
            elif kind == GOAWAY:
                self.transport.close()
                return
            offset = end
        self.buffer = buffer[offset:]
        if out:
            self.transport.write(b"".join(out))


class CannedUWSGI(asyncio.Protocol):
    """The first bytes of a uWSGI packet get a canned HTTP response and the close nginx expects."""

    REPLY = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
        len(PLAINTEXT),
        PLAINTEXT,
    )

    def __init__(self) -> None:
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.answered:
            self.answered = True
            self.transport.write(self.REPLY)
            self.transport.close()


def factory(scenario: str) -> asyncio.Protocol:
    if scenario == "ws":
        return CannedWebSocket()
    if scenario in H2_SCENARIOS:
        return CannedH2()
    if scenario == "uwsgi":
        return CannedUWSGI()
    return CannedHTTP(HTTP_REPLIES[scenario], close=scenario == "close")


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
        context.set_alpn_protocols(["h2"])
    server = await loop.create_server(
        lambda: factory(args.scenario), args.host, args.port, ssl=context, backlog=2048
    )
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenario", required=True, choices=[*HTTP_REPLIES, "ws", *H2_SCENARIOS, "uwsgi"])
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    return parser.parse_args(argv)


if __name__ == "__main__":
    uvloop.run(main(parse_args()))
