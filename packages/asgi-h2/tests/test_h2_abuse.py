"""Every abuse limit, with the default values, against the abusive frames themselves.

Each test sends what an attacker would (built with h2, hpack and hyperframe), then checks the outcome a user
relies on: the connection ends with the right GOAWAY code, the app did a bounded amount of work, and the server
holds no more than it should. The cross-connection half ("other clients keep being served") is tested over
real sockets in tests/test_h2_end_to_end.py.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext
from asgi_h2 import H2Limits
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hpack import Encoder
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, PingFrame, PriorityFrame, SettingsFrame

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, run

DEFAULTS = H2Limits()
REQUEST = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"), (b":authority", b"example.org")]


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def closed_with(peer: H2Peer, code: ErrorCodes) -> bool:
    return peer.goaway is not None and peer.goaway.error_code == code and peer.transport.closed


def test_rapid_reset_ends_the_connection_and_bounds_the_work() -> None:
    calls = 0

    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(60)  # ignores http.disconnect: only the grace period can stop it

    async def main() -> None:
        peer = H2Peer(stubborn)
        for _ in range(DEFAULTS.max_resets + 50):
            stream_id = peer.client.get_next_available_stream_id()
            peer.client.send_headers(stream_id, REQUEST, end_stream=True)
            peer.client.reset_stream(stream_id)
            peer.flush()
            if peer.transport.closed:
                break
            await asyncio.sleep(0)  # the handlers of the streams so far get to start
        await peer.settle()
        assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)
        assert peer.goaway is not None
        assert peer.goaway.additional_data == b"too many reset streams"
        # Reset streams keep their tasks for the grace period, so they hold handler slots: no more than
        # SETTINGS_MAX_CONCURRENT_STREAMS handlers ever ran, however many streams were opened.
        assert calls <= peer.context.config.http2_max_concurrent_streams

    run(main())


def test_resets_within_the_budget_are_fine() -> None:
    async def main() -> None:
        peer = H2Peer(ok_app)
        for _ in range(DEFAULTS.max_resets - 10):
            stream_id = peer.client.get_next_available_stream_id()
            peer.client.send_headers(stream_id, REQUEST, end_stream=False)
            peer.client.reset_stream(stream_id)
            peer.flush()
        result = await peer.response(peer.request())
        assert result.status == 200
        assert peer.goaway is None

    run(main())


def test_streams_over_the_limit_are_refused_not_fatal() -> None:
    release = asyncio.Event()

    async def waiting(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await ok_app(scope, receive, send)

    async def main() -> None:
        peer = H2Peer(waiting, config=Config(http2_max_concurrent_streams=5))
        # Sent before the client has read our SETTINGS, so it does not hold itself to the limit.
        ids = [peer.request() for _ in range(8)]
        await peer.settle()
        refused = [i for i in ids if peer.streams[i].reset == ErrorCodes.REFUSED_STREAM]
        assert refused == ids[5:]
        release.set()
        for stream_id in ids[:5]:
            assert (await peer.response(stream_id)).status == 200
        assert peer.goaway is None
        assert not peer.transport.closed

    run(main())


def test_streams_waiting_for_a_handler_slot_are_bounded() -> None:
    calls: list[str] = []
    hold = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        if scope["path"].startswith("/hold"):
            await hold.wait()  # ignores http.disconnect until released
        elif scope["path"].startswith("/stuck"):
            await asyncio.sleep(60)
        else:
            await ok_app(scope, receive, send)

    async def main() -> None:
        limits = H2Limits(max_pending_streams=1)
        peer = H2Peer(app, config=Config(http2_max_concurrent_streams=2), limits=limits)
        peer.receive()
        for path in ("/hold1", "/hold2"):
            peer.client.reset_stream(peer.request("GET", path))  # their tasks outlive their streams
        peer.flush()
        await peer.settle()
        waiting = peer.request("GET", "/waits")
        await peer.settle()
        assert calls == ["/hold1", "/hold2"]  # no handler slot free: the new stream waits
        hold.set()
        assert (await peer.response(waiting)).status == 200  # a slot freed up: it ran
        for path in ("/stuck1", "/stuck2"):
            peer.client.reset_stream(peer.request("GET", path))
        peer.flush()
        await peer.settle()
        peer.client.reset_stream(peer.request("GET", "/gave-up"))  # waited, then reset: forgotten
        peer.flush()
        peer.request("GET", "/waits-too")
        assert peer.goaway is None
        peer.request("GET", "/one-too-many")
        await peer.settle()
        assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)
        assert calls == ["/hold1", "/hold2", "/waits", "/stuck1", "/stuck2"]

    run(main())


def test_continuation_flood_is_cut_off() -> None:
    async def main() -> None:
        peer = H2Peer(ok_app)
        peer.receive()
        block = Encoder().encode(REQUEST)
        peer.send_raw(HeadersFrame(1, data=block[:5]).serialize())
        for _ in range(200):
            if peer.transport.closed:
                break
            peer.send_raw(ContinuationFrame(1, data=b"").serialize())
        peer.receive()
        assert closed_with(peer, ErrorCodes.PROTOCOL_ERROR)

    run(main())


def test_header_block_beyond_the_header_list_size_is_refused() -> None:
    async def main() -> None:
        peer = H2Peer(ok_app)
        peer.receive()
        big = Encoder().encode([*REQUEST, *((f"x-h{i}".encode(), b"v" * 1000) for i in range(80))])
        frames = [big[i : i + 16384] for i in range(0, len(big), 16384)]
        peer.send_raw(HeadersFrame(1, data=frames[0]).serialize())
        for index, piece in enumerate(frames[1:], start=1):
            flags = ["END_HEADERS"] if index == len(frames) - 1 else []
            peer.send_raw(ContinuationFrame(1, data=piece, flags=flags).serialize())
        peer.receive()
        assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)  # decoded size over SETTINGS_MAX_HEADER_LIST_SIZE

    run(main())


def test_hpack_bomb_is_refused() -> None:
    async def main() -> None:
        peer = H2Peer(ok_app)
        peer.receive()
        encoder = Encoder()
        # One 4 KiB field enters the dynamic table, then is referenced again and again by a one-byte index:
        # a few KiB on the wire that decode to more than the 64 KiB header list we allow.
        block = encoder.encode([*REQUEST, *[(b"x-bomb", b"a" * 4000)] * 40])
        assert len(block) < 5000
        peer.send_raw(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
        peer.receive()
        assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)

    run(main())


def test_ping_flood_is_refused() -> None:
    async def main() -> None:
        peer = H2Peer(ok_app)
        peer.receive()
        ping = PingFrame(0, opaque_data=b"12345678").serialize()
        peer.send_raw(ping * 100)  # an ordinary amount
        assert not peer.transport.closed
        peer.send_raw(ping * DEFAULTS.max_control_frames)
        peer.receive()
        assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)

    run(main())


def test_unsolicited_ping_acknowledgements_count_as_control_frames() -> None:
    """PING ACKs we never asked for cost work like any control frame, whatever they carry: the data of our
    drain PING is no pass outside a drain."""
    for data in (b"12345678", b"drain\x00\x00\x00"):

        async def main(data: bytes = data) -> None:
            peer = H2Peer(ok_app)
            peer.receive()
            ack = PingFrame(0, opaque_data=data, flags=["ACK"]).serialize()
            peer.send_raw(ack * (DEFAULTS.max_control_frames + 1))
            peer.receive()
            assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)

        run(main())


def test_settings_and_priority_floods_are_refused() -> None:
    for frame in (
        SettingsFrame(0, settings={SettingCodes.INITIAL_WINDOW_SIZE: 65535}).serialize(),
        PriorityFrame(1, depends_on=0, stream_weight=16).serialize(),
    ):

        async def main(frame: bytes = frame) -> None:
            peer = H2Peer(ok_app)
            peer.receive()
            peer.send_raw(frame * (DEFAULTS.max_control_frames + 1))
            peer.receive()
            assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)

        run(main())


def test_control_frames_unread_by_the_peer_are_capped() -> None:
    async def main() -> None:
        peer = H2Peer(ok_app)
        peer.receive()
        ping = PingFrame(0, opaque_data=b"12345678").serialize()
        peer.protocol.pause_writing()  # the peer is not reading what we send
        peer.send_raw(ping * DEFAULTS.max_queued_control_frames)
        assert not peer.transport.closed
        peer.protocol.resume_writing()  # it read them: the count starts again
        peer.protocol.pause_writing()
        peer.send_raw(ping * DEFAULTS.max_queued_control_frames)
        assert not peer.transport.closed
        peer.send_raw(ping)
        peer.receive()
        assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)

    run(main())


def test_empty_data_frame_flood_is_refused() -> None:
    async def reader(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    async def main() -> None:
        peer = H2Peer(reader)
        stream = peer.request("POST", end=False)
        peer.send_raw(DataFrame(stream, data=b"").serialize() * (DEFAULTS.max_control_frames + 1))
        peer.receive()
        assert closed_with(peer, ErrorCodes.ENHANCE_YOUR_CALM)

    run(main())


def test_oversized_frame_is_refused_from_its_header() -> None:
    async def main() -> None:
        peer = H2Peer(ok_app)
        stream = peer.request("POST", end=False)
        peer.receive()
        # A DATA frame header announcing 1 MiB: refused at once, before any of the payload is buffered.
        header = (1 << 20).to_bytes(3, "big") + b"\x00\x00" + stream.to_bytes(4, "big")
        peer.send_raw(header + b"x" * 100)
        peer.receive()
        assert closed_with(peer, ErrorCodes.FRAME_SIZE_ERROR)

    run(main())


def test_other_connections_are_unaffected_by_one_abusive_peer() -> None:
    async def main() -> None:
        shared = ServerContext(app=ok_app, registry=Registry(discover=False))
        bad = H2Peer(ok_app, context=shared)
        good = H2Peer(ok_app, context=shared)
        bad.send_raw(PingFrame(0, opaque_data=b"12345678").serialize() * (DEFAULTS.max_control_frames + 1))
        await good.settle()
        assert bad.transport.closed
        assert shared.connections == {good.protocol}
        assert (await good.response(good.request())).status == 200

    run(main())
