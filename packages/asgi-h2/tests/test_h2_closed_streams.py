"""What a connection remembers of its closed streams: enough to answer a frame the client sent before it
learnt of a stream's end as RFC 9113 section 5.1 says, and no more, so that a connection serving streams for
hours stays the size it was after its first thousand."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

from asgi_core import Config, Receive, Scope, Send
from asgi_h2._closed_streams import ClosedStreams
from asgi_h2._settings import CLOSED_STREAMS_FLOOR, CLOSED_STREAMS_PER_OPEN, closed_streams_remembered
from h2.errors import ErrorCodes
from h2.stream import StreamClosedBy
from h2.utilities import SizeLimitDict
from hyperframe.frame import GoAwayFrame, RstStreamFrame
from hypothesis import given
from hypothesis import strategies as st

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, parse_frames, run

BATCH = 50


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


async def serve_streams(peer: H2Peer, count: int) -> None:
    """`count` GET requests, `BATCH` at a time, each answered in full."""
    for start in range(0, count, BATCH):
        ids = [peer.request("GET", "/") for _ in range(min(BATCH, count - start))]

        def answered(ids: list[int] = ids) -> bool:
            return all(peer.streams[i].ended for i in ids)

        await peer.until(answered)
        for stream_id in ids:
            del peer.streams[stream_id]
        peer.events.clear()


def trailers_frame(stream_id: int) -> bytes:
    """The trailers of an upload (HEADERS, END_STREAM | END_HEADERS, `x-sum: 1` as a literal HPACK leaves out
    of its table), as they arrive when the client sent them before it learnt that the stream was reset; h2's
    client would not send them on a stream it knows is closed."""
    block = b"\x00\x05x-sum\x011"
    return len(block).to_bytes(3, "big") + b"\x01\x05" + stream_id.to_bytes(4, "big") + block


async def reset_by_the_client(peer: H2Peer) -> int:
    """An upload the client gives up on, before its trailers."""
    stream_id = peer.request("POST", "/", body=b"part", end=False)
    peer.client.reset_stream(stream_id, ErrorCodes.CANCEL)
    peer.flush()
    await peer.settle()
    return stream_id


def test_a_long_lived_connection_stays_the_same_size() -> None:
    # h2 alone remembers the last 65,536 closed streams, some 8 MB a connection once full.
    async def main() -> None:
        peer = H2Peer(hello)
        peer.client._closed_streams = SizeLimitDict(size_limit=BATCH)  # the client's own h2 record is not ours
        tracemalloc.start()
        try:
            await serve_streams(peer, closed_streams_remembered(Config()) + 500)  # the record is full
            before, _ = tracemalloc.get_traced_memory()
            await serve_streams(peer, 2000)
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peer.goaway is None
        # h2's own record would have grown by some 240 KB.
        assert after - before < 100_000, f"{after - before} bytes more held after 2,000 more streams"

    run(main())


def test_late_trailers_on_a_stream_reset_a_while_ago_are_answered_on_that_stream() -> None:
    async def main() -> None:
        peer = H2Peer(hello)
        reset = await reset_by_the_client(peer)
        await serve_streams(peer, 600)  # closed since, while the trailers were on their way
        peer.receive()
        peer.send_raw(trailers_frame(reset))
        frames = parse_frames(peer.transport.take())
        assert [(type(f), f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)] == [
            (RstStreamFrame, reset, ErrorCodes.STREAM_CLOSED)
        ]
        assert not any(isinstance(f, GoAwayFrame) for f in frames)
        after = peer.request("GET", "/")
        assert (await peer.response(after)).status == 200

    run(main())


def test_trailers_on_a_stream_long_forgotten_end_the_connection_cleanly() -> None:
    # As h2 does past its own record: no client keeping to our concurrency limit can have them in flight.
    async def main() -> None:
        peer = H2Peer(hello)
        reset = await reset_by_the_client(peer)
        await serve_streams(peer, closed_streams_remembered(Config()) + 200)
        peer.receive()
        peer.send_raw(trailers_frame(reset))
        goaways = [f for f in parse_frames(peer.transport.take()) if isinstance(f, GoAwayFrame)]
        assert [f.error_code for f in goaways] == [ErrorCodes.PROTOCOL_ERROR]
        assert peer.transport.closed

    run(main())


def test_the_record_follows_the_concurrency_limit() -> None:
    assert closed_streams_remembered(Config()) == CLOSED_STREAMS_FLOOR
    many = Config(http2_max_concurrent_streams=1000)
    assert closed_streams_remembered(many) == CLOSED_STREAMS_PER_OPEN * 1000
    assert closed_streams_remembered(Config(http2_max_concurrent_streams=2**31 - 1)) == 2**16


@given(
    limit=st.integers(min_value=1, max_value=8),
    writes=st.lists(st.tuples(st.integers(min_value=1, max_value=20), st.sampled_from(list(StreamClosedBy)))),
)
def test_the_record_reads_and_forgets_as_h2s_own(limit: int, writes: list[tuple[int, StreamClosedBy]]) -> None:
    ours, theirs = ClosedStreams(limit), SizeLimitDict(size_limit=limit)
    for stream_id, closed_by in writes:
        ours[stream_id] = closed_by
        theirs[stream_id] = closed_by
        assert list(ours.items()) == list(theirs.items())
        assert len(ours) == len(theirs)
    for stream_id in range(1, 21):
        assert (stream_id in ours) == (stream_id in theirs)
        if stream_id in theirs:
            assert ours[stream_id] == theirs[stream_id]
