"""Received bytes cut at frame boundaries: the frame-size guard, and new requests taken in without h2's frame
objects, h2's state advanced exactly as its `receive_data` would.

**The guard.** h2 checks a frame's length against SETTINGS_MAX_FRAME_SIZE only once the whole frame is
buffered, so a peer announcing a 16 MiB frame would make it hold 16 MiB first. Reading the 9-byte frame
headers as bytes stream past refuses such a frame as soon as its header arrives.

**New requests.** For every frame h2 makes a hyperframe object and a set of flags, formats the frame's `repr`
for a log line nobody reads, and wraps each outcome in events: for a request in one HEADERS frame, more CPU
than opening the stream itself. Since the frame boundaries are known here anyway, a HEADERS frame that opens
a new stream (END_HEADERS set, no padding or priority, an odd stream id above every one seen, not inside
another header block) is handled here: the same steps as h2's `_receive_headers_frame`, in its order (the
stream count that also forgets closed streams, here only once the stream table has doubled, the HPACK block
decoded, the connection's state machine, the stream made and given its headers, END_STREAM included), then
the request goes straight to the protocol. Where the outcome of a state machine's input is known, the end
state is written rather than computed (see `_frames` for why): an open server connection stays open on a
new request, and a new stream given a request (no `:status` field, which h2 would weigh as a response) is
opened, or half-closed with END_STREAM, as h2's `request_received` and `stream_half_closed` leave it. The
stream itself is made as h2's `_begin_new_stream` makes it, without the checks the conditions above already
passed (an odd id above every one seen) and the log lines of a logger h2 is not given here.
Every other frame, and everything while the client's preface is still arriving, goes to h2 as it came, in
order; an error is h2's own (`ProtocolError`, with the GOAWAY h2 would queue). The h2 names used here that are
not its public API (`_decode_headers`, `receive_headers`, `_initialize_content_length`) are h2's since 3.0 and
unchanged through 4.x.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

import h2
from h2.connection import ConnectionInputs, ConnectionState, H2Connection, _decode_headers
from h2.exceptions import ProtocolError
from h2.stream import H2Stream, StreamState

from ._closed_streams import closed_streams, forget_closed
from ._errors import FrameTooLarge
from ._frame_codes import CONTINUATION, END_HEADERS, END_STREAM, FRAME_HEADER_SIZE, HEADERS, PUSH_PROMISE

#: The protocol's: frames for h2, and a new stream's request head; each says whether the connection goes on.
ToH2 = Callable[[bytes], bool]
NewRequest = Callable[[int, list[tuple[bytes, bytes]], bool], bool]

_RECV_HEADERS: Final = ConnectionInputs.RECV_HEADERS
_SERVER_OPEN: Final = ConnectionState.SERVER_OPEN
#: h2 4.1 also gives each new stream a `max_inbound_frame_size` (which nothing in h2 reads; 4.2 dropped it).
_H2_4_1: Final = h2.__version__.startswith("4.1.")
_STREAM_OPEN: Final = StreamState.OPEN
_HALF_CLOSED_REMOTE: Final = StreamState.HALF_CLOSED_REMOTE
#: Flags of a HEADERS frame taken here: END_STREAM and END_HEADERS, nothing else (PADDED, PRIORITY go to h2).
_PLAIN_FLAGS: Final = END_STREAM | END_HEADERS
#: Streams h2's table holds at least before its closed ones are forgotten (see `_take_request`).
_PRUNE_FLOOR: Final = 64


class InboundFrames:
    """One connection's received bytes, frame by frame, to h2 or (new requests) straight to the protocol."""

    __slots__ = (
        "_closed",
        "_conn",
        "_header",
        "_in_block",
        "_max_size",
        "_new_request",
        "_prune_at",
        "_skip",
        "_to_h2",
    )

    def __init__(
        self, conn: H2Connection, max_size: int, *, skip: int, to_h2: ToH2, new_request: NewRequest
    ) -> None:
        self._conn = conn
        self._closed = closed_streams(conn)
        self._to_h2 = to_h2
        self._new_request = new_request
        self._max_size = max_size
        #: Bytes still to pass before the next frame header (the preface, then the rest of a frame's payload).
        self._skip = skip
        #: The start of a frame header split across reads.
        self._header = bytearray()
        #: Inside a header block that CONTINUATION frames complete: every frame goes to h2 until it ends.
        self._in_block = False
        #: The size of h2's stream table at which its closed streams are next forgotten.
        self._prune_at = _PRUNE_FLOOR

    def receive(self, data: bytes) -> None:
        """Hand `data` on, in order. Raises `FrameTooLarge`, or h2's `ProtocolError` (the GOAWAY queued)."""
        to_h2 = self._to_h2
        position, end = 0, len(data)
        start = 0  # where the bytes not yet handed to h2 begin
        while position < end:
            if self._skip or self._header:
                position = self._pass(data, position, end)
                continue
            if end - position < FRAME_HEADER_SIZE:
                self._header += data[position:]
                break
            length = int.from_bytes(data[position : position + 3], "big")
            if length > self._max_size:
                raise FrameTooLarge
            kind = data[position + 3]
            flags = data[position + 4]
            following = position + FRAME_HEADER_SIZE + length
            if kind == HEADERS and flags & ~_PLAIN_FLAGS == 0 and flags & END_HEADERS and not self._in_block:
                if following <= end:
                    if start < position and not to_h2(data[start:position]):
                        return
                    start = position
                    stream_id = int.from_bytes(data[position + 5 : position + 9], "big") & 0x7FFFFFFF
                    taken = self._take_request(stream_id, data[position + FRAME_HEADER_SIZE : following], flags)
                    if taken is not None:
                        start = following
                        if not taken:
                            return
            else:
                self._follow_blocks(kind, flags)
            if following > end:
                self._skip = following - end
                break
            position = following
        if start < end:
            to_h2(data[start:] if start else data)

    def _pass(self, data: bytes, position: int, end: int) -> int:
        """Go past a payload still being skipped, or complete a split frame header (then its payload is
        skipped: a frame split across reads is h2's to put together)."""
        if self._skip:
            taken = min(self._skip, end - position)
            self._skip -= taken
            return position + taken
        needed = FRAME_HEADER_SIZE - len(self._header)
        self._header += data[position : position + needed]
        position += needed
        if len(self._header) == FRAME_HEADER_SIZE:
            header = self._header
            length = int.from_bytes(header[:3], "big")
            if length > self._max_size:
                raise FrameTooLarge
            self._follow_blocks(header[3], header[4])
            self._skip = length
            header.clear()
        return position

    def _follow_blocks(self, kind: int, flags: int) -> None:
        """Whether a header block is left open for CONTINUATION frames, after a frame of `kind`."""
        if kind in (HEADERS, PUSH_PROMISE):
            self._in_block = not flags & END_HEADERS
        elif kind == CONTINUATION and flags & END_HEADERS:
            self._in_block = False

    def _take_request(self, stream_id: int, block: bytes, flags: int) -> bool | None:
        """A HEADERS frame that opens stream `stream_id`, as h2's `_receive_headers_frame` takes it: whether
        the connection goes on, or None (nothing done) when it does not open a new stream, for h2 to judge."""
        conn = self._conn
        if stream_id & 1 == 0 or stream_id <= conn.highest_inbound_stream_id or stream_id in conn.streams:
            return None
        try:
            # As h2 does: count the open streams, decode, then move the state machines. h2's count walks its
            # whole stream table, forgetting the closed streams as it goes: with 100 streams open, a hundred
            # steps for every new one. The limit it checks is ours (`_settings._LocalSettings`), so only the
            # forgetting matters, and it waits until the table has doubled since the last time: O(1) a stream,
            # and closed streams stay in the table meanwhile, as in h2 itself until its next count.
            streams = len(conn.streams)
            if streams >= self._prune_at:
                if forget_closed(conn, self._closed) + 1 > conn.local_settings.max_concurrent_streams:
                    return None  # h2's own error, then
                self._prune_at = max(_PRUNE_FLOOR, 2 * len(conn.streams))
            # A list of (bytes, bytes) pairs: raw, from hpack's `Decoder` (ours remembers repeated blocks).
            headers = cast("list[tuple[bytes, bytes]]", _decode_headers(conn.decoder, block))
            machine = conn.state_machine
            if machine.state is not _SERVER_OPEN:  # the first stream, or a closing connection: h2 decides
                machine.process_input(_RECV_HEADERS)
            stream = _new_stream(conn, stream_id)
            ended = bool(flags & END_STREAM)
            if _names_status(headers):
                _, events = stream.receive_headers(headers, ended, conn.config.header_encoding)
                headers = events[0].headers  # type: ignore[attr-defined]
            else:
                _open_by_request(stream, headers, ended=ended)
        except ProtocolError as exc:
            conn.close_connection(exc.error_code)  # the GOAWAY h2's receive_data would queue
            raise
        return self._new_request(stream_id, headers, ended)


def _new_stream(conn: H2Connection, stream_id: int) -> H2Stream:
    """A stream the peer opens, in h2's table, as h2's `_begin_new_stream` makes it once its checks passed."""
    stream = H2Stream(
        stream_id,
        config=conn.config,
        inbound_window_size=conn.local_settings.initial_window_size,
        outbound_window_size=conn.remote_settings.initial_window_size,
    )
    stream.max_outbound_frame_size = conn.max_outbound_frame_size
    if _H2_4_1:
        vars(stream)["max_inbound_frame_size"] = conn.max_inbound_frame_size
    conn.streams[stream_id] = stream
    conn.highest_inbound_stream_id = stream_id
    return stream


def _names_status(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a `:status` field is among `headers`: h2 may then weigh the block as an informational response."""
    return any(name == b":status" for name, _ in headers)


def _open_by_request(stream: H2Stream, headers: list[tuple[bytes, bytes]], *, ended: bool) -> None:
    """What h2's `receive_headers` leaves of a new server stream given a request: its machine moved by
    RECV_HEADERS from IDLE (`request_received`) and, with END_STREAM, by RECV_END_STREAM (`stream_half_closed`),
    then the expected body length read from `content-length` (h2's `ProtocolError` if invalid). h2's events
    are not made: the request goes to the protocol as it is."""
    machine = stream.state_machine
    machine.client = False
    machine.headers_received = True
    machine.state = _HALF_CLOSED_REMOTE if ended else _STREAM_OPEN
    stream._initialize_content_length(headers)  # noqa: SLF001 - h2's since 3.0
