"""The reference engine: h11's `Connection`, with the head checks h11 leaves to the server (`_limits.py`)."""

from __future__ import annotations

from typing import Any, cast

import h11
from asgi_core import REASONS, Config, Headers, PeerError

from ._chunked import ChunkGuard
from ._engine import Engine, Event, Request, Signal
from ._limits import HeadGuard, refuse_control_characters

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


class H11Engine(Engine):
    __slots__ = ("_chunks", "_conn", "_guard")

    def __init__(self, config: Config) -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_head_size)
        self._guard = HeadGuard(config)
        self._chunks: ChunkGuard | None = None  # while a chunked request body is read

    def receive_data(self, data: bytes) -> None:
        if data:
            state = self._conn.their_state
            if state is h11.IDLE:
                self._guard.feed(data)
            elif self._chunks is not None and state is h11.SEND_BODY:
                self._chunks.feed(data)
        self._conn.receive_data(data)

    def next_event(self) -> Event:
        conn = self._conn
        chunks = self._chunks
        if chunks is not None and chunks.error is not None and chunks.due(len(conn.trailing_data[0])):
            raise chunks.error
        try:
            if conn.their_state is h11.IDLE:
                self._guard.check()
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise PeerError(exc.error_status_hint, str(exc)) from None
        if isinstance(event, h11.Request):
            request = Request(event.method, event.target, event.http_version, list(event.headers))
            refuse_control_characters(request.headers)
            if request.chunked:
                # What followed the head in the same reads is the body's start: the guard reads from there on
                # (and a bound it breaks is reported with the next event, as the fast engine reports it).
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
        self._guard.reset(self._conn.trailing_data[0])

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
