"""A whole response's frames written without h2's frame objects, h2's state advanced exactly as h2 would.

h2's `send_headers` and `send_data` make a hyperframe object per frame and a set of flags per object, pass the
fields through a chain of generators (even with h2's own header checks off), and serialize frame by frame:
for a small response, more CPU than the rest of the stream's sending put together. A response whose whole
body fits one DATA frame within the peer's flow-control windows (most responses) is written here instead, as
HEADERS (with CONTINUATION frames past the peer's frame size) then one DATA frame carrying END_STREAM; a
response without a body ends on its HEADERS.

h2 must not be able to tell: the connection and stream state machines take the same inputs in the same order
as h2's `send_headers` then `send_data` give them, before the HPACK encoder changes its dynamic table (as h2
does, since that change cannot be undone), and both flow-control windows shrink by the body's size. A later
RST_STREAM, WINDOW_UPDATE or frame from the peer on the stream finds the state h2 would have left. What h2
checks and raises (`ProtocolError` on a closed connection or stream) it still raises, from the same state
machines. The attributes used here (`state_machine`, `outbound_flow_control_window`, `max_outbound_frame_size`)
are h2's since 3.0 and unchanged through 4.x.

**The usual case without the state machines' calls.** A response to a request that has ended (the stream
half-closed by the peer, no response sent yet, on an open server connection) makes h2's machines take five
inputs whose outcome is known: the connection's stay where they are, and the stream's mark the response head
as sent and close the stream by END_STREAM (`response_sent`, then `send_end_stream`). Each input costs a
lookup keyed by a tuple of two `Enum` members, whose hash is a Python function on 3.11, and makes an event
nobody reads: together about a sixth of a stream's CPU. In that case the same end state is written directly
(`_end_half_closed_stream`); in every other state the inputs go to h2's machines as above. The differential
tests compare every attribute of both machines after each path.
"""

from __future__ import annotations

import struct
from typing import Final

from asgi_core import Headers
from h2.connection import ConnectionInputs, ConnectionState, H2Connection
from h2.stream import H2StreamStateMachine, StreamClosedBy, StreamInputs, StreamState

from ._frame_codes import CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS

# h2's members, as `Final` globals: h2 runs interpreted, so compiled code cannot load them statically as it does
# our own enums' (design.md, "Speed").
_CONN_SEND_HEADERS: Final = ConnectionInputs.SEND_HEADERS
_CONN_SEND_DATA: Final = ConnectionInputs.SEND_DATA
_SEND_HEADERS: Final = StreamInputs.SEND_HEADERS
_SEND_DATA: Final = StreamInputs.SEND_DATA
_SEND_END_STREAM: Final = StreamInputs.SEND_END_STREAM
_SERVER_OPEN: Final = ConnectionState.SERVER_OPEN
_HALF_CLOSED_REMOTE: Final = StreamState.HALF_CLOSED_REMOTE
_CLOSED: Final = StreamState.CLOSED
_BY_SEND_END_STREAM: Final = StreamClosedBy.SEND_END_STREAM

#: RFC 9113 section 4.1: a frame's 9-byte header, the 24-bit length split in a high byte and a 16-bit rest.
_FRAME_HEADER: Final = struct.Struct(">BHBBL")


def whole_response(conn: H2Connection, stream_id: int, head: Headers, body: bytes) -> bytes | None:
    """The frames of a response in one piece, h2's state advanced as if h2 had sent them; None, with nothing
    changed, when the body does not fit one DATA frame in the peer's windows now: then the stream's own path
    must send it, which buffers what the windows do not admit and gives the connection's streams one frame
    each per round. Raises h2's `ProtocolError` where h2's `send_headers` or `send_data` would."""
    stream = conn.streams.get(stream_id)
    size = len(body)
    if (
        stream is None
        or size > stream.outbound_flow_control_window
        or size > conn.outbound_flow_control_window
        or size > conn.max_outbound_frame_size
    ):
        return None
    stream_machine = stream.state_machine
    conn_machine = conn.state_machine
    usual = _end_half_closed_stream(conn_machine.state, stream_machine)
    if not usual:
        conn_machine.process_input(_CONN_SEND_HEADERS)
        stream_machine.process_input(_SEND_HEADERS)
    block = conn.encoder.encode(head)  # only after the transitions, as h2 does: this changes the HPACK table
    headers_flags = END_HEADERS
    if not size:
        if not usual:
            stream_machine.process_input(_SEND_END_STREAM)
        headers_flags |= END_STREAM
    frames = _header_block(stream_id, block, headers_flags, stream.max_outbound_frame_size or len(block))
    if size:
        if not usual:
            conn_machine.process_input(_CONN_SEND_DATA)
            stream_machine.process_input(_SEND_DATA)
            stream_machine.process_input(_SEND_END_STREAM)
        stream.outbound_flow_control_window -= size
        conn.outbound_flow_control_window -= size
        frames += _FRAME_HEADER.pack(size >> 16, size & 0xFFFF, DATA, END_STREAM, stream_id) + body
    return frames


def _end_half_closed_stream(conn_state: ConnectionState, machine: H2StreamStateMachine) -> bool:
    """Whether the stream's whole response is the usual case, and if so its end state written: what h2's machines
    make of SEND_HEADERS, SEND_DATA and SEND_END_STREAM from HALF_CLOSED_REMOTE on a server stream whose response
    has not started, on an open server connection (where the connection's inputs change nothing)."""
    if (
        conn_state is not _SERVER_OPEN
        or machine.state is not _HALF_CLOSED_REMOTE
        or machine.headers_sent
        or machine.client is not False
    ):
        return False
    machine.headers_sent = True  # response_sent
    machine.stream_closed_by = _BY_SEND_END_STREAM  # send_end_stream
    machine.state = _CLOSED
    return True


def _header_block(stream_id: int, block: bytes, flags: int, max_size: int) -> bytes:
    """HEADERS carrying `flags`, or, for a block over `max_size`, HEADERS then CONTINUATION frames with
    END_HEADERS on the last (section 6.10); END_STREAM stays on the HEADERS frame."""
    length = len(block)
    if length <= max_size:
        return _FRAME_HEADER.pack(length >> 16, length & 0xFFFF, HEADERS, flags, stream_id) + block
    parts = []
    for start in range(0, length, max_size):
        piece = block[start : start + max_size]
        last = start + max_size >= length
        if start == 0:
            kind, piece_flags = HEADERS, flags & ~END_HEADERS
        else:
            kind, piece_flags = CONTINUATION, END_HEADERS if last else 0
        size = len(piece)
        parts.append(_FRAME_HEADER.pack(size >> 16, size & 0xFFFF, kind, piece_flags, stream_id))
        parts.append(piece)
    return b"".join(parts)
