"""The few aioquic internals HTTP/3 serving needs, in one place so that an aioquic upgrade is checked here.

aioquic's public API has no setting for the peer's concurrent-stream limit, no measure of what a stream still
holds unacknowledged (write backpressure), no way to send GOAWAY (RFC 9114 section 5.2), and it raises a
stream's receive window as data arrives rather than as the application reads it. Each is a reach into an
attribute or method of `QuicConnection` or `H3Connection`, covered by this package's tests.
"""

from __future__ import annotations

from typing import Protocol

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import FrameType, H3Connection, encode_frame
from aioquic.quic.connection import MAX_STREAM_DATA_FRAME_CAPACITY, QuicConnection
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.stream import QuicStream


class BodyBuffer(Protocol):
    """What holds a request body for its app (asgi-core's `RequestCycle`)."""

    @property
    def buffered_body(self) -> int: ...


class PacedConnection(QuicConnection):
    """aioquic's connection, with a request stream's receive window following what its app has read.

    aioquic doubles a stream's window whenever the peer has sent half of it, whoever reads the data: a client
    could then push any request body into the server's memory while the app reads none of it. Here the credit
    of a stream in `paced` (a request whose body is still coming) is the offset its app has read up to plus
    one window (RFC 9000 section 4.1), so the peer can never have more than a window of body waiting. Other
    streams (bodiless requests, control and QPACK streams) keep aioquic's rule.
    """

    #: Request streams whose body is still arriving, and what holds it for the app.
    paced: dict[int | None, BodyBuffer]

    def _write_stream_limits(self, builder: QuicPacketBuilder, space: object, stream: QuicStream) -> None:
        # Called for every stream in every packet aioquic builds: the common case is one dict lookup.
        body = self.paced.get(stream.stream_id)
        if body is None or not stream.max_stream_data_local:
            super()._write_stream_limits(builder, space, stream)  # type: ignore[arg-type]
            return
        window = self._configuration.max_stream_data
        credit = stream.receiver.starting_offset() - body.buffered_body + window
        # Raised in steps of at least half a window, so that reading a few bytes does not cost a frame.
        if credit - stream.max_stream_data_local >= window // 2:
            stream.max_stream_data_local = credit
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            buf = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=MAX_STREAM_DATA_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            buf.push_uint_var(stream.stream_id or 0)  # never None: paced streams are request streams
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local


def pace(quic: QuicConnection, paced: dict[int | None, BodyBuffer]) -> None:
    """Make `quic` (aioquic's) a `PacedConnection` pacing the streams in `paced` (which its owner fills)."""
    quic.__class__ = PacedConnection
    assert isinstance(quic, PacedConnection)  # noqa: S101 - for the type checker
    quic.paced = paced


def limit_concurrent_streams(quic: QuicConnection, streams: int) -> None:
    """RFC 9000 section 4.6: the peer may open at most `streams` request streams at once (initial_max_streams_bidi,
    raised again by aioquic as streams close). Must be called before the handshake sends the transport params."""
    limit = quic._local_max_streams_bidi  # noqa: SLF001 - no public setting
    limit.value = limit.sent = streams


def unacknowledged(quic: QuicConnection, stream_id: int) -> int:
    """Bytes queued on a stream that the peer has not acknowledged yet (sent or not)."""
    stream = quic._streams.get(stream_id)  # noqa: SLF001 - no public measure
    if stream is None:
        return 0
    sender = stream.sender
    return sender._buffer_stop - sender._buffer_start  # noqa: SLF001


def closing(quic: QuicConnection) -> bool:
    """Whether the connection is closing: closed by us, by the peer, or by aioquic's HTTP/3 layer for a peer's
    protocol error (which it handles without telling its user until the closing period ends)."""
    return quic._close_event is not None  # noqa: SLF001


def send_goaway(h3: H3Connection, quic: QuicConnection, stream_id: int) -> None:
    """A GOAWAY frame on our control stream: requests on `stream_id` and later ones will not be processed."""
    control = h3._local_control_stream_id  # noqa: SLF001 - aioquic sends no GOAWAY itself
    if control is not None:
        quic.send_stream_data(control, encode_frame(FrameType.GOAWAY, encode_uint_var(stream_id)))
