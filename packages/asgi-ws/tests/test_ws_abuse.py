"""A misbehaving peer at a bounded cost: fail fast after a violation, frames per message, huge announced
lengths, and bursts of tiny frames served a slice at a time. Each scenario runs on the common-frame path (the
connection starts with frames `FrameReader` reads), on the wsproto path (a ping first hands it over), and
over an HTTP/2 extended CONNECT stream (RFC 8441, wsproto path too)."""

from __future__ import annotations

import asyncio
import struct

import pytest
from asgi_core import Config, Receive, Send
from asgi_wsproto import _extensions, _protocol
from ws_peer import Peer, Recorder, echo, h2_request, run, until
from wsproto.events import CloseConnection, Event, Ping, Pong, TextMessage

PATHS = ["common-frames", "wsproto", "http2-tunnel"]


def frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, length: int | None = None
) -> bytes:
    """One client frame, masked with a zero key (so the payload is written as is)."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    if size <= 125:
        head = bytes((first, 0x80 | size))
    elif size <= 0xFFFF:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    return head + b"\x00\x00\x00\x00" + payload


async def opened(app: Recorder, path: str, config: Config | None = None) -> Peer:
    request = h2_request() if path == "http2-tunnel" else None
    peer = Peer(app, config=config or Config(websocket_per_message_deflate=False), request=request)
    await peer.open()
    if path != "common-frames":
        peer.send(Ping(payload=b"p"))
        assert isinstance(await peer.next_event(), Pong)
        assert peer.protocol._frames is None
    else:
        assert peer.protocol._frames is not None
    return peer


async def events_until_close(peer: Peer) -> list[Event]:
    events: list[Event] = []
    while not events or not isinstance(events[-1], CloseConnection):
        events.append(await peer.next_event())
    return events


VIOLATIONS = {
    "reserved-bits": frame(1, b"Hello", rsv=2),
    "reserved-opcode": frame(5, b"Hello"),
    "reserved-control-opcode": frame(15, b"Hello"),
    "bad-continuation": frame(0, b"nothing to continue", fin=False),
    "utf8-in-fragment": frame(1, b"ok", fin=False) + frame(0, b"\xce\xba\xf4\x90\x80\x80", fin=False),
}
CODES = {"utf8-in-fragment": 1007}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_violation_fails_at_once_after_answering_what_came_before(violation: str, path: str) -> None:
    """Autobahn 3.2, 4.1.3, 5.15...: the message before is echoed, then the close; nothing after is read."""

    async def scenario() -> None:
        app = Recorder(echo)
        peer = await opened(app, path)
        peer.send_raw(frame(1, b"before") + VIOLATIONS[violation] + frame(9, b"ping after") + frame(1, b"after"))
        events = await events_until_close(peer)
        assert events[0] == TextMessage(data="before")
        close = events[-1]
        assert isinstance(close, CloseConnection)
        assert close.code == CODES.get(violation, 1002)
        assert len(events) == 2  # no pong, no echo of "after"
        peer.protocol.connection_lost(None)
        await asyncio.wait_for(app.done.wait(), 2)
        texts = [message.get("text") for message in app.received]
        assert "after" not in texts

    run(scenario())


@pytest.mark.parametrize("path", PATHS)
def test_invalid_utf8_fails_before_the_frame_is_complete(path: str) -> None:
    """Autobahn 6.4.3: a text frame whose first bytes are already invalid is failed without its rest."""

    async def scenario() -> None:
        peer = await opened(Recorder(echo), path)
        payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5" + b"\xf4\x90\x80\x80" + b"edited"
        whole = frame(1, payload)
        peer.send_raw(whole[:17])  # the valid part
        await asyncio.sleep(0.05)
        assert not peer.transport.data
        peer.send_raw(whole[17:22])  # up to the invalid byte: the rest never comes
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1007

    run(scenario())


@pytest.mark.parametrize("path", PATHS)
def test_frame_announcing_more_than_the_limit_gets_1009_at_once(path: str) -> None:
    async def scenario() -> None:
        app = Recorder(echo)
        peer = await opened(app, path)
        peer.send_raw(frame(2, length=2**31)[:14])  # the header alone: 2 GiB announced
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1009
        assert peer.transport.eof_written

    run(scenario())


def test_compressed_frame_announcing_far_more_than_the_limit_gets_1009() -> None:
    async def scenario() -> None:
        peer = Peer(Recorder(echo), config=Config(websocket_max_message_size=1000), deflate=True)
        await peer.open()
        peer.send_raw(frame(2, rsv=4, length=10_000)[:8])
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1009

    run(scenario())


@pytest.mark.parametrize("path", PATHS)
def test_endless_empty_continuations_are_cut_at_the_frames_per_message_bound(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_extensions, "MAX_FRAMES_PER_MESSAGE", 100)

    async def scenario() -> None:
        app = Recorder(echo)
        peer = await opened(app, path)
        peer.send_raw(frame(1, b"start", fin=False) + frame(0, fin=False) * 98 + frame(0, b" end"))
        assert await peer.next_event() == TextMessage(data="start end")  # 100 frames: still one message
        peer.send_raw(frame(1, b"start", fin=False) + frame(0, fin=False) * 200)
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1009

    run(scenario())


@pytest.mark.parametrize("path", PATHS)
def test_a_burst_of_frames_is_read_a_slice_at_a_time(path: str) -> None:
    """One read of many frames is not processed in one go: other connections get the loop in between."""

    async def scenario() -> None:
        app = Recorder(echo)
        peer = await opened(app, path)
        loop = asyncio.get_running_loop()
        turns = 0

        def count_turn() -> None:
            nonlocal turns
            turns += 1
            if not peer.transport.closed:
                loop.call_soon(count_turn)

        slices = 8
        loop.call_soon(count_turn)
        peer.send_raw(frame(9, b"p") * (_protocol.FRAMES_PER_SLICE * slices))
        pongs = len(peer.transport.data) // 3  # each pong: 2 header bytes + b"p"
        assert pongs == _protocol.FRAMES_PER_SLICE
        assert not peer.transport.reading  # paused until its next slice
        await until(lambda: len(peer.transport.data) // 3 == _protocol.FRAMES_PER_SLICE * slices)
        assert turns >= slices - 1  # the loop went round between slices
        # The last slice used its whole budget, so it ended like the others and reading resumes a turn later;
        # `until` may look in between.
        await until(lambda: peer.transport.reading)
        peer.send(TextMessage(data="still here"))
        events = [await peer.next_event() for _ in range(_protocol.FRAMES_PER_SLICE * slices + 1)]
        assert events[-1] == TextMessage(data="still here")

    run(scenario())


@pytest.mark.parametrize("path", PATHS)
def test_a_peer_still_flooding_after_the_close_is_dropped(path: str) -> None:
    """After the close frame the server reads (to see the peer hang up) only a bounded amount."""

    async def scenario() -> None:
        peer = await opened(Recorder(echo), path)
        peer.send_raw(frame(5, b"reserved"))
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert peer.transport.eof_written
        assert not peer.transport.aborted
        peer.send_raw(frame(0, fin=False) * 1000)  # a little more: still read, to see the hang-up
        assert not peer.transport.aborted
        for _ in range(200):
            peer.send_raw(frame(2, b"x" * 10_000))
        assert peer.transport.aborted

    run(scenario())


def test_violation_fails_even_if_the_app_never_takes_what_came_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_protocol, "VIOLATION_GRACE", 0.1)
    never = asyncio.Event()

    async def app(scope: object, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await never.wait()  # busy elsewhere: never reads again

    async def scenario() -> None:
        peer = Peer(app, config=Config(websocket_per_message_deflate=False))
        await peer.open()
        peer.send_raw(frame(1, b"before") + frame(5, b"reserved"))
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1002

    run(scenario())
