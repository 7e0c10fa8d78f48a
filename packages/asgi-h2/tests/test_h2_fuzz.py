"""Bytes in any shape: a conversation fed whole or one byte at a time gets the same answer, and garbage after
the preface only ever ends in a clean close (a GOAWAY), never an exception out of the protocol."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext
from asgi_h2 import PREFACE, H2Protocol
from h2 import events as ev
from h2.config import H2Configuration
from h2.connection import H2Connection
from hyperframe.frame import GoAwayFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import MemoryTransport, parse_frames


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"date", b"fixed")]})
    await send({"type": "http.response.body", "body": scope["path"].encode() + b" " + body})


def conversation() -> tuple[H2Connection, bytes]:
    client = H2Connection(H2Configuration(client_side=True))
    client.initiate_connection()
    for stream_id, path in ((1, "/one"), (3, "/two")):
        headers = [(":method", "POST"), (":path", path), (":scheme", "http"), (":authority", "x")]
        client.send_headers(stream_id, headers)
        client.send_data(stream_id, b"body of " + path.encode(), end_stream=True)
    return client, client.data_to_send()


async def serve_bytes(pieces: list[bytes]) -> tuple[bytes, bool]:
    """What the server wrote, and whether it closed the connection itself. Errors in callbacks the protocol
    scheduled on the loop fail the test too (asyncio would only log them)."""
    failures: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, info: failures.append(info))
    context = ServerContext(app=echo, config=Config(date_header=False), registry=Registry(discover=False))
    protocol = H2Protocol(context)
    transport = MemoryTransport(protocol)
    protocol.connection_made(transport)
    out = bytearray()
    for piece in pieces:
        if transport.closed:
            break
        protocol.data_received(piece)
        out += transport.take()
    for _ in range(20):
        await asyncio.sleep(0)
    out += transport.take()
    closed_by_server = transport.closed
    transport.close()
    await asyncio.sleep(0)
    assert failures == []
    return bytes(out), closed_by_server


def test_whole_and_byte_at_a_time_give_the_same_responses() -> None:
    def responses(*, split: bool) -> list[tuple[int, bytes]]:
        client, data = conversation()
        pieces = [data[i : i + 1] for i in range(len(data))] if split else [data]
        bodies: dict[int, bytes] = {}
        out, _ = asyncio.run(serve_bytes(pieces))
        for event in client.receive_data(out):
            if isinstance(event, ev.DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
        return sorted(bodies.items())

    whole = responses(split=False)
    assert whole == [(1, b"/one body of /one"), (3, b"/two body of /two")]
    assert responses(split=True) == whole


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(min_size=1, max_size=300), split=st.integers(min_value=1, max_value=50))
def test_garbage_after_the_preface_ends_in_goaway_or_nothing(garbage: bytes, split: int) -> None:
    data = PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + garbage  # preface, empty SETTINGS, then noise
    pieces = [data[i : i + split] for i in range(0, len(data), split)]
    out, closed_by_server = asyncio.run(serve_bytes(pieces))  # raises if anything escapes the protocol
    frames = parse_frames(out)
    if closed_by_server:
        last = frames[-1]
        assert isinstance(last, GoAwayFrame)
        assert last.error_code != 0  # a peer error, named
    else:
        assert not any(isinstance(frame, GoAwayFrame) for frame in frames)


frames_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10),  # DATA .. CONTINUATION, and one unknown type
        st.sampled_from([0, 1, 4, 5, 8, 0x20, 0x25, 0xFF]),
        st.sampled_from([0, 1, 2, 3, 5, 2**31 - 1]),
        st.binary(max_size=24),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=frames_strategy)
def test_well_framed_nonsense_ends_in_goaway_or_nothing(frames: list[tuple[int, int, int, bytes]]) -> None:
    data = PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    for frame_type, flags, stream_id, payload in frames:
        data += (
            len(payload).to_bytes(3, "big") + bytes([frame_type, flags]) + stream_id.to_bytes(4, "big") + payload
        )
    out, closed_by_server = asyncio.run(serve_bytes([data]))
    sent = parse_frames(out)
    peer_goaway = any(frame_type == 7 and stream_id == 0 for frame_type, _, stream_id, _ in frames)
    if closed_by_server and not peer_goaway:  # after the peer's own GOAWAY we may just close
        assert isinstance(sent[-1], GoAwayFrame)
    elif not closed_by_server:
        assert not any(isinstance(frame, GoAwayFrame) for frame in sent)
