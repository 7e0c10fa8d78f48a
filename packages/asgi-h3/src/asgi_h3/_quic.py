"""The few aioquic internals HTTP/3 serving needs, in one place so that an aioquic upgrade is checked here.

aioquic's public API has no setting for the peer's concurrent-stream limit, no measure of what a stream still
holds unacknowledged (write backpressure), and no way to send GOAWAY (RFC 9114 section 5.2); each is a
one-line reach into an attribute of `QuicConnection` or `H3Connection`, tested by this package's tests.
"""

from __future__ import annotations

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import FrameType, H3Connection, encode_frame
from aioquic.quic.connection import QuicConnection


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


def send_goaway(h3: H3Connection, quic: QuicConnection, stream_id: int) -> None:
    """A GOAWAY frame on our control stream: requests on `stream_id` and later ones will not be processed."""
    control = h3._local_control_stream_id  # noqa: SLF001 - aioquic sends no GOAWAY itself
    if control is not None:
        quic.send_stream_data(control, encode_frame(FrameType.GOAWAY, encode_uint_var(stream_id)))
