"""The oracle of the differential tests: h11's own `Connection` with our checks beside it, as the reference engine
was before the engine became one with two head parsers. The engine, with either parser, must give the same
events, refusals and bytes as this for any input (`test_http1_engines.py`): h11 judges the state machine, the
framing, the chunked reader and the response writer, not only the heads.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Final, cast

import h11
from asgi_core import REASONS, Config, Headers, PeerError
from asgi_http1._chunked import MAX_CHUNK_EXTENSIONS, MAX_CHUNK_LINE
from asgi_http1._limits import HeadGuard, refuse_control_characters
from asgi_http1._request import Event, Request, Signal

_SIGNALS: dict[Any, Signal] = {
    h11.NEED_DATA: Signal.NEED_DATA,
    h11.PAUSED: Signal.PAUSED,
    h11.EndOfMessage: Signal.END_OF_MESSAGE,
    h11.ConnectionClosed: Signal.CONNECTION_CLOSED,
}


class _FileBody:
    """Stands in for a file body in h11's passthrough mode: h11 needs only its length to frame it."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count


class H11Oracle:
    """h11's `Connection`, with our checks beside it: `HeadGuard` on the raw head, the control characters h11
    lets through in field values, and the bounds on chunked framing (`ChunkGuard`). Duck-types the engine."""

    def __init__(self, config: Config) -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_head_size)
        self._head = bytearray()  # the bytes of the next head, for the guard (h11 keeps its own buffer)
        self._guard = HeadGuard(config, self._head)
        self._chunks: ChunkGuard | None = None  # while a chunked request body is read
        self._guard_done = False  # the guard has returned this head: it reads no more bytes until the next

    def receive_data(self, data: bytes) -> None:
        if data:
            state = self._conn.their_state
            if state is h11.IDLE and not self._guard_done:
                self._head += data
            elif self._chunks is not None and state is h11.SEND_BODY:
                self._chunks.feed(data)
        self._conn.receive_data(data)

    def next_event(self) -> Event:
        conn = self._conn
        chunks = self._chunks
        if chunks is not None and chunks.error is not None and chunks.due(len(conn.trailing_data[0])):
            raise chunks.error
        try:
            if conn.their_state is h11.IDLE and not self._guard_done:
                self._guard_done = self._guard.check() is not None
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise PeerError(exc.error_status_hint, str(exc)) from None
        if isinstance(event, h11.Request):
            request = Request(event.method, event.target, event.http_version, list(event.headers))
            refuse_control_characters(request.headers)
            if request.chunked:
                # What followed the head in the same reads is the body's start: the guard reads from there on
                # (and a bound it breaks is reported with the next event, as the engine reports it).
                self._chunks = ChunkGuard()
                self._chunks.feed(conn.trailing_data[0])
            elif not request.body_expected:
                # The engine contract: a bodyless request is complete as returned. h11 has its end ready.
                end = conn.next_event()
                if not isinstance(end, h11.EndOfMessage):
                    raise RuntimeError(f"h11 gave {end!r} after a request without a body")
            return request
        if type(event) is h11.EndOfMessage and event.headers:
            refuse_control_characters(list(event.headers))  # trailer fields follow the same grammar
        if isinstance(event, h11.Data):
            # h11 annotates `data` as bytes but hands over a bytearray, and ASGI's body is bytes. Read untyped:
            # compiled (mypyc) code would check the annotation and refuse the bytearray.
            return bytes(cast("Any", event).data)
        return _SIGNALS[type(event) if isinstance(event, h11.Event) else event]

    def start_next_cycle(self) -> None:
        self._chunks = None
        self._conn.start_next_cycle()
        self._head[:] = self._conn.trailing_data[0]
        self._guard_done = False
        self._guard.reset()

    @property
    def trailing_data(self) -> bytes:
        return self._conn.trailing_data[0]

    @property
    def waiting_for_100_continue(self) -> bool:
        return self._conn.they_are_waiting_for_100_continue

    @property
    def request_complete(self) -> bool:
        return self._conn.their_state is h11.DONE

    @property
    def receiving_body(self) -> bool:
        return self._conn.their_state is h11.SEND_BODY

    @property
    def input_finished(self) -> bool:
        return self._conn.their_state is h11.MUST_CLOSE

    @property
    def must_close(self) -> bool:
        return self._conn.our_state is h11.MUST_CLOSE

    def send_informational(self, status: int, headers: Headers) -> bytes:
        try:
            event = h11.InformationalResponse(status_code=status, headers=headers, reason=REASONS.get(status, b""))
        except h11.LocalProtocolError as exc:
            raise ValueError(str(exc)) from None
        return self._conn.send(event)

    def send_response(self, status: int, headers: Headers) -> bytes:
        try:
            event = h11.Response(status_code=status, headers=headers, reason=REASONS.get(status, b""))
        except h11.LocalProtocolError as exc:
            raise ValueError(str(exc)) from None  # h11 validated the event without touching connection state
        return self._conn.send(event)

    def send_data(self, data: bytes) -> bytes:
        return self._conn.send(h11.Data(data=data))

    def frame_file(self, count: int) -> tuple[bytes, bytes]:
        body = _FileBody(count)
        # h11 frames any object with a length and hands it back in place: split its framing around it.
        pieces: list[Any] = self._conn.send_with_data_passthrough(h11.Data(data=body)) or []  # type: ignore[arg-type]
        at = pieces.index(body)
        return b"".join(pieces[:at]), b"".join(pieces[at + 1 :])

    def send_end(self, trailers: Headers | None) -> bytes:
        return self._conn.send(h11.EndOfMessage(headers=trailers or []))


_CHUNK_SIZE: Final = re.compile(rb"[0-9A-Fa-f]{1,20}")


class _Guard(enum.Enum):
    SIZE = "reading a chunk-size line"
    DATA = "skipping chunk data"
    DATA_END = "skipping the CRLF after chunk data"
    DONE = "past the last chunk, or at something h11 refuses itself"


class ChunkGuard:
    """Follows a chunked body's framing in the raw bytes that h11 reads, to apply the engine's bounds on chunk-size
    lines and extensions (`_chunked.py`), which h11 lacks. Data is skipped by count, never copied; only a chunk-size line is kept while it arrives. It stops at
    the last chunk (h11 bounds the trailer section by its buffer limit) and at any line it cannot read, which h11
    refuses on its own. `error` is set instead of raising, as bytes arrive outside the engine's event loop, and
    is due (`due`) once h11 has read up to the line that broke a bound: the events before it come first, exactly
    as `ChunkedReader` gives them."""

    __slots__ = ("_extensions", "_fed", "_line", "_line_start", "_remaining", "_step", "error", "error_at")

    def __init__(self) -> None:
        self._step = _Guard.SIZE
        self._line = bytearray()
        self._remaining = 0
        self._extensions = 0
        self._fed = 0  # bytes of the body seen so far
        self._line_start = 0  # where the chunk-size line being read starts, counted in those bytes
        self.error: PeerError | None = None
        #: Where the line that broke a bound starts.
        self.error_at = 0

    def due(self, unread: int) -> bool:
        """Whether the error is due, `unread` being how many of the bytes seen h11 has not read yet: h11 has
        delivered everything before the offending line (all but, at most, the CRLF ending the chunk before)."""
        return self._fed - unread >= self.error_at - 2

    def feed(self, data: bytes) -> None:
        base = self._fed
        self._fed += len(data)
        position, size = 0, len(data)
        while position < size and self.error is None:
            step = self._step
            if step is _Guard.DATA or step is _Guard.DATA_END:
                taken = min(self._remaining, size - position)
                position += taken
                self._remaining -= taken
                if not self._remaining:
                    if step is _Guard.DATA:
                        self._step, self._remaining = _Guard.DATA_END, 2
                    else:
                        self._step = _Guard.SIZE
            elif step is _Guard.SIZE:
                if not self._line:
                    self._line_start = base + position
                end = data.find(b"\n", position)
                self._line += data[position : size if end == -1 else end]
                if end == -1:
                    if len(self._line) > MAX_CHUNK_LINE + 1:
                        self._refuse("chunk-size line too long")
                    return
                position = end + 1
                self._read_line()
            else:
                return

    def _read_line(self) -> None:
        line = self._line
        if line[-1:] != b"\r" or (size := _CHUNK_SIZE.match(line)) is None:
            self._step = _Guard.DONE  # not a line h11 accepts: it refuses it itself
            return
        length = len(line) - 1
        if length > MAX_CHUNK_LINE:
            self._refuse("chunk-size line too long")
            return
        extension = line.find(b";", 0, length)
        if extension != -1:
            self._extensions += length - extension
            if self._extensions > MAX_CHUNK_EXTENSIONS:
                self._refuse("too many bytes of chunk extensions")
                return
        self._remaining = int(size[0], 16)  # before the line is cleared: the match reads it in place
        line.clear()
        self._step = _Guard.DATA if self._remaining else _Guard.DONE

    def _refuse(self, reason: str) -> None:
        self.error = PeerError(400, reason)
        self.error_at = self._line_start
