"""The connection engine: the part of HTTP/1.1 that turns bytes into request events and responses into bytes.

`HTTP1Protocol` drives one engine per connection and never looks inside it. There is one engine and two head
parsers (`_parsers.py`): what differs by parser is only how the bytes of a request head become a `Request`.
The rest is here once, modelled on h11, the reference: its connection state machine (below: one state per side,
event transitions in tables, and the transitions that follow from the pair of states), its reading of every
message boundary, its response framing (`_framing.py`) and chunked reader (`_chunked.py`). The differential
tests hold the engine, with either parser, to h11's own `Connection`: the same bytes in give the same events,
the same refusals and the same bytes out. What the engine saves is h11's cost per event: validating event
objects, copying state dicts, normalising headers twice.

A request head is cut from the buffer where h11 would cut it (the first empty line), after `HeadGuard` has
checked its raw bytes, and handed to the parser. The body is read here (`Content-Length`, or `_chunked.py`),
never by a parser, and nothing after a complete request is parsed before `start_next_cycle`: pipelined bytes
stay raw, which is what an upgrade's leftover needs.

Hot module: this code runs for every request (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from asgi_core import REASONS, Config, Headers, PeerError

from ._chunked import ChunkedReader
from ._errors import FramingError
from ._framing import (
    BodyWriter,
    body_writer,
    chunk,
    comma_values,
    encode_head,
    plain_head,
    response_fields,
    validate_fields,
)
from ._limits import HeadGuard
from ._parsers import HeadParser, ParserFactory, select_parser
from ._request import Event, Request, Signal
from ._states import (
    CLIENT_TRANSITIONS,
    SERVER_TRANSITIONS,
    UNSETTLED,
    Input,
    State,
)


class Engine:
    """One HTTP/1.1 connection, server side, without I/O, with `heads` reading its request heads."""

    __slots__ = (
        "_body",
        "_buffer",
        "_chunked",
        "_client",
        "_eof",
        "_fresh",
        "_guard",
        "_heads",
        "_incoming",
        "_keep_alive",
        "_max_head",
        "_method",
        "_remaining",
        "_server",
        "_switch_proposed",
        "_version",
        "_waiting_100",
    )

    def __init__(self, config: Config, heads: HeadParser) -> None:
        self._max_head = config.max_head_size
        self._buffer = bytearray()
        self._guard = HeadGuard(config, self._buffer)
        self._heads = heads
        self._eof = False
        self._client = self._server = State.IDLE
        self._keep_alive = True
        self._switch_proposed = False
        self._waiting_100 = False
        self._method = self._version = b""
        self._remaining = 0  # bytes of a Content-Length body still to come
        self._chunked: ChunkedReader | None = None
        self._body: BodyWriter | None = None
        self._fresh = True  # the guard has not looked at the next head (yet): the parser may read it whole first
        # What arrived in one read at an idle connection with nothing buffered (the usual request), kept as it
        # came until `next_event`: a request read whole from it needs no copy into the buffer first.
        self._incoming: bytes | None = None

    # ---- receiving -----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; `b""` means it closed its side (EOF)."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("received close, then received more data?")
        if self._incoming is not None:
            self._buffer += self._incoming
            self._incoming = None
        elif self._fresh and self._client is State.IDLE and not self._buffer:
            self._incoming = data
            return
        self._buffer += data

    def next_event(self) -> Event:
        """The next event; raises `PeerError` for a request that must be refused. A request without a body is
        complete as returned, and so is one whose whole body came with its head, handed over as `request.body`:
        for a `request.complete`, no body or END_OF_MESSAGE events follow."""
        client = self._client
        if client is State.ERROR:
            raise PeerError(400, "Can't receive data when peer state is ERROR")
        try:
            event: Event | None
            incoming = self._incoming
            if incoming is not None:
                self._incoming = None
                event = self._read_whole(incoming)
                if event is not None:
                    return event
            if client is State.IDLE:
                event = self._read_head()
            elif client is State.SEND_BODY:
                event = self._read_body()
            elif client is State.DONE and not self._buffer and not self._eof:
                return Signal.NEED_DATA  # the usual wait while the response is produced (a shortcut of the below)
            elif client is State.MIGHT_SWITCH_PROTOCOL or (client is State.DONE and self._buffer):
                return Signal.PAUSED
            elif self._buffer and client is not State.DONE:
                return self._data_after_close()
            else:
                event = None
            if event is not None:
                return event
            return self._waiting(client)
        except PeerError:
            self._client = State.ERROR
            self._settle()
            raise

    def _data_after_close(self) -> Signal:
        raise PeerError(400, "Got data when expecting EOF")

    def _waiting(self, client: State) -> Signal:
        """Nothing complete yet: h11's checks on what is buffered, in h11's order."""
        buffer = self._buffer
        if not buffer and self._eof:
            if client is State.SEND_BODY:
                raise PeerError(400, "peer closed connection without sending complete message body")
            self._client_event(Input.CLOSED)
            return Signal.CONNECTION_CLOSED
        if len(buffer) > self._max_head:
            raise PeerError(431, "Receive buffer too long")
        if self._eof:
            raise PeerError(400, "peer unexpectedly closed connection")
        return Signal.NEED_DATA

    def _read_whole(self, data: bytes) -> Request | None:
        """The parser's look at a head that came in one read (see `_incoming`); anything it does not take whole
        goes to the buffer for the guard."""
        whole = self._heads.read_whole(data)
        if whole is None:
            self._fresh = False  # the parser had its one look
            self._buffer += data
            return None
        request, size = whole
        self._start_request(request, data, size)
        return request

    def _read_head(self) -> Request | None:
        if not self._buffer:
            return None  # nothing of the next head yet (the guard would find nothing to check)
        if self._fresh:
            # The first look at a head, which is usually all of it: the parser may take it whole, once (once, so
            # that a head trickled in byte by byte is searched by the guard alone, in linear time).
            whole = self._heads.read_whole(self._buffer)
            if whole is not None:
                request, size = whole
                del self._buffer[:size]
                self._start_request(request)
                return request
            self._fresh = False
        head = self._guard.check()
        buffer = self._buffer
        if buffer[:1] == b"\n" or buffer[:2] == b"\r\n":
            raise PeerError(400, "no request line received")
        if head is None:
            if buffer and buffer[0] < 0x21:  # noqa: PLR2004 - not the first byte of any method
                raise PeerError(400, "illegal request line")
            return None
        del buffer[: len(head)]
        request = self._heads.parse(head)
        self._start_request(request)
        return request

    def _start_request(self, request: Request, data: bytes | None = None, offset: int = 0) -> None:
        """`request` was read from the buffer, or from `data` up to `offset` (`_read_whole`), whose remaining
        bytes are not buffered yet."""
        if self._server is not State.IDLE:  # what `_client_event` would find, without its table lookups
            raise RuntimeError(f"a request while the response side is {self._server.value}")
        self._client = State.SEND_BODY
        self._server = State.SEND_RESPONSE
        self._method = request.method
        self._version = version = request.http_version
        self._remaining = request.content_length or 0
        self._chunked = ChunkedReader() if request.chunked else None
        if request.switch_proposed:
            self._switch_proposed = True
        if request.close or version < b"1.1":
            self._keep_alive = False
        if request.expect_continue and version >= b"1.1":
            self._waiting_100 = True
        remaining = self._remaining
        if data is not None:
            end = offset + remaining
            if not request.chunked and end <= len(data):
                # The whole request came in one read: its body is cut from that read, copied once.
                if remaining:
                    request.body = data[offset:end]
                    self._remaining = 0
                if end < len(data):
                    self._buffer += memoryview(data)[end:]  # what follows it (pipelining)
                self._waiting_100 = False
                self._client = State.DONE
                if not self._keep_alive or self._switch_proposed:
                    self._settle()
                return
            self._buffer += memoryview(data)[offset:]
        if not request.chunked and remaining <= len(self._buffer):
            # No body, or all of it is here already: the request is complete as it stands (no body or
            # END_OF_MESSAGE events follow).
            if remaining:
                buffer = self._buffer
                request.body = bytes(buffer[:remaining]) if len(buffer) > remaining else bytes(buffer)
                del buffer[:remaining]
                self._remaining = 0
            self._waiting_100 = False
            self._client = State.DONE
        if not self._keep_alive or self._switch_proposed:
            self._settle()

    def _read_body(self) -> bytes | Signal | None:
        buffer = self._buffer
        event: bytes | Signal | None
        if self._chunked is not None:
            event = self._chunked.read(buffer)
        elif not self._remaining:
            event = Signal.END_OF_MESSAGE
        elif not buffer:
            return None
        elif len(buffer) <= self._remaining:
            data = bytes(buffer)
            buffer.clear()
            self._remaining -= len(data)
            event = data
        else:
            event = bytes(buffer[: self._remaining])
            del buffer[: self._remaining]
            self._remaining = 0
        if event is not None:
            self._waiting_100 = False
            if event is Signal.END_OF_MESSAGE:
                self._chunked = None
                self._client = State.DONE  # h11's SEND_BODY -> DONE on the end of the message
                self._settle()
        return event

    def start_next_cycle(self) -> None:
        """Both request and response are complete and the connection stays open: read the next request."""
        if self._client is not State.DONE or self._server is not State.DONE:
            raise RuntimeError(f"not done with this request: client {self._client}, server {self._server}")
        self._client = self._server = State.IDLE
        self._body = None
        self._method = b""
        if not self._fresh:  # the guard has looked at this head (a head the parser took whole leaves it alone)
            self._guard.reset()
        self._fresh = True

    @property
    def trailing_data(self) -> bytes:
        """Bytes received and not yet turned into events (what an upgraded protocol reads first)."""
        return self._incoming if self._incoming is not None else bytes(self._buffer)

    @property
    def waiting_for_100_continue(self) -> bool:
        return self._waiting_100

    @property
    def request_complete(self) -> bool:
        """The whole request is read and the connection may carry another one."""
        return self._client is State.DONE

    @property
    def receiving_body(self) -> bool:
        """The request body is still being received."""
        return self._client is State.SEND_BODY

    @property
    def input_finished(self) -> bool:
        """The request is complete and was the last one (`Connection: close`, HTTP/1.0): ignore what follows."""
        return self._client is State.MUST_CLOSE

    @property
    def must_close(self) -> bool:
        """The response is complete and the connection must close after it."""
        return self._server is State.MUST_CLOSE

    # ---- sending -------------------------------------------------------------------------------------

    def send_informational(self, status: int, headers: Headers) -> bytes:
        """A 1xx response. Raises `ValueError` for one that cannot be sent, changing nothing."""
        if not 100 <= status < 200:  # noqa: PLR2004 - the 1xx class
            raise ValueError(f"InformationalResponse status_code should be in range [100, 200), not {status}")
        fields = validate_fields(headers)
        self._server_event(Input.INFORMATIONAL)
        self._waiting_100 = False
        return encode_head(status, REASONS.get(status, b""), fields)

    def send_response(self, status: int, headers: Headers) -> bytes:
        """The response head. Raises `ValueError` for one that cannot be sent, changing nothing."""
        if (
            self._server is State.SEND_RESPONSE
            and 200 <= status < 1000  # noqa: PLR2004 - a final status
            and status not in (204, 304)
            and self._method not in (b"HEAD", b"CONNECT")
        ):
            keep_alive = self._keep_alive
            plain = plain_head(status, headers, self._version, closing=not keep_alive)
            if plain is not None:
                head, self._body = plain
                self._server = State.SEND_BODY
                self._waiting_100 = False
                if not keep_alive or self._switch_proposed or self._client in UNSETTLED:
                    self._switch_proposed = False  # a final answer that does not switch protocols declines it
                    self._settle()
                return head
        fields = response_fields(status, headers, self._method, self._version, keep_alive=self._keep_alive)
        self._server_event(Input.RESPONSE)
        self._waiting_100 = False
        self._switch_proposed = False  # a final answer that does not switch protocols declines the switch
        if b"close" in comma_values(fields, b"connection"):
            self._keep_alive = False
        self._body = body_writer(fields, status, self._method)
        self._settle()
        return encode_head(status, REASONS.get(status, b""), fields)

    def send_data(self, data: bytes) -> bytes:
        body = self._body
        if body is None or self._server is not State.SEND_BODY:
            body = self._sending_body(Input.DATA)  # raises
        if body.chunked and data:
            return chunk(data)  # a streamed chunk
        remaining = body.remaining
        if remaining is not None and remaining >= len(data):
            body.remaining = remaining - len(data)  # a declared length, not exceeded
            return data
        before, after = self.frame_file(len(data))  # the rest: an empty piece, a body delimited by the close
        return before + data + after if before else data

    def frame_file(self, count: int) -> tuple[bytes, bytes]:
        """What goes before and after `count` body bytes that the kernel sends from a file."""
        body = self._sending_body(Input.DATA)
        try:
            return body.frame(count)
        except FramingError:
            self._server = State.ERROR
            raise

    def send_end(self, trailers: Headers | None) -> bytes:
        body = self._body
        if body is None or self._server is not State.SEND_BODY:
            body = self._sending_body(Input.END)  # raises
        try:
            data = body.end(trailers)
        except (FramingError, ValueError):
            self._server = State.ERROR
            raise
        self._server = State.DONE
        self._settle()
        return data

    def _sending_body(self, event: Input) -> BodyWriter:
        if self._body is None or (self._server, event) not in SERVER_TRANSITIONS:
            raise FramingError(f"cannot send {event.value} while the response is {self._server.value}")
        return self._body

    # ---- state machine -------------------------------------------------------------------------------

    def _client_event(self, event: Input) -> None:
        self._client = CLIENT_TRANSITIONS[self._client, event]
        if event is Input.REQUEST:
            self._server = SERVER_TRANSITIONS[self._server, event]
        self._settle()

    def _server_event(self, event: Input) -> None:
        state = SERVER_TRANSITIONS.get((self._server, event))
        if state is None:
            self._server = State.ERROR
            raise FramingError(f"cannot send {event.value} while the response is {self._server.value}")
        self._server = state
        self._settle()

    def _settle(self) -> None:
        """The transitions that follow from the pair of states and the connection's flags (h11's rules)."""
        if self._keep_alive and not self._switch_proposed and self._client not in UNSETTLED:
            return  # none of the rules below applies: the case of nearly every keep-alive request
        if self._client is State.DONE and self._switch_proposed:
            self._client = State.MIGHT_SWITCH_PROTOCOL
        if self._client is State.MIGHT_SWITCH_PROTOCOL and not self._switch_proposed:
            self._client = State.DONE
        if not self._keep_alive:
            if self._client is State.DONE:
                self._client = State.MUST_CLOSE
            if self._server is State.DONE:
                self._server = State.MUST_CLOSE
        if self._server in (State.DONE, State.IDLE) and self._client is State.CLOSED:
            self._server = State.MUST_CLOSE
        if self._server is State.DONE and self._client is State.ERROR:
            self._server = State.MUST_CLOSE


EngineFactory = Callable[[Config], Engine]


def select_engine(parser: str | None = None, default: str = "auto") -> EngineFactory:
    """Engines reading heads with `parser` ("h11", "httptools" or "auto"); without one, `ASGI_HTTP1_PARSER`
    decides, else `default` (the server's `Config.http1_parser`). See `select_parser` for its errors."""
    return _engines_with(select_parser(parser, default))


@functools.cache
def _engines_with(heads: ParserFactory) -> EngineFactory:
    def engine(config: Config) -> Engine:
        return Engine(config, heads())

    return engine
