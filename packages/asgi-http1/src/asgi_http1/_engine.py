"""The connection engine: the part of HTTP/1.1 that turns bytes into request events and responses into bytes.

`HTTP1Protocol` drives one engine per connection and never looks inside it. Two engines implement the same
interface, modelled on the few parts of `h11.Connection` the protocol uses:

- `H11Engine` (`_h11_engine.py`) is h11 itself plus our stricter head checks: the reference.
- `FastEngine` (`_fast_engine.py`) parses request heads with httptools (llhttp) and frames everything else
  itself, following h11's rules step for step; any head llhttp refuses is judged by h11, so both give the
  same answer to every input. It is used when httptools is installed (`pip install asgi-http1[fast]`).

`ASGI_HTTP1_PARSER=h11` (or `HTTP1Protocol(context, parser="h11")`) forces the reference.
"""

from __future__ import annotations

import enum
import functools
import importlib.util
import os
import re
from collections.abc import Callable
from typing import Final

from asgi_core import Config, Headers, PeerError

PARSER_ENV: Final = "ASGI_HTTP1_PARSER"
PARSERS: Final = ("auto", "h11", "httptools")
_DIGITS: Final = re.compile(rb"[0-9]+")
_MAX_LENGTH_DIGITS: Final = 20
# The fields a request's framing and handling depend on, by the (lowercased) name they arrive under.
_HOST: Final = "host"
_CONTENT_LENGTH: Final = "content-length"
_TRANSFER_ENCODING: Final = "transfer-encoding"
_CONNECTION: Final = "connection"
_EXPECT: Final = "expect"
_UPGRADE: Final = "upgrade"
_TE: Final = "te"
_FORWARDING: Final = "forwarding"
_CLOSE: Final = frozenset({b"close", b"Close", b"CLOSE"})  # the usual spellings, without splitting the value
_FIELD_KINDS: Final = {
    b"host": _HOST,
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    b"expect": _EXPECT,
    b"upgrade": _UPGRADE,
    b"te": _TE,
    b"forwarded": _FORWARDING,
    b"x-forwarded-for": _FORWARDING,
    b"x-forwarded-proto": _FORWARDING,
}


class Request:
    """A request head as received: lowercased field names, values without surrounding whitespace.

    The fields that frame the request or steer the connection are read here, in the one pass over the head
    that every engine makes, so that neither the engine nor the protocol scans the fields again. That pass also
    makes h11's checks on their values (one Host, a valid Content-Length, only chunked as Transfer-Encoding):
    redundant behind h11, which has made them already, and what the fast engine relies on.
    """

    __slots__ = (
        "body",
        "chunked",
        "close",
        "content_length",
        "expect_continue",
        "forwarded",
        "head_size",
        "headers",
        "host",
        "http_version",
        "method",
        "switch_proposed",
        "target",
        "te_trailers",
        "upgrade",
    )

    def __init__(self, method: bytes, target: bytes, http_version: bytes, headers: Headers) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        content_length: bytes | None = None
        host: bytes | None = None
        hosts = 0
        chunked = close = expect = trailers = forwarded = False
        upgrade: bytes | None = None
        switch = method == b"CONNECT"
        kinds = _FIELD_KINDS
        for index, (name, value) in enumerate(headers):
            kind = kinds.get(name)
            if kind is None:
                continue  # nearly every field: one lookup, not a comparison with each name below
            if kind is _HOST:
                hosts += 1
                host = value
            elif kind is _CONTENT_LENGTH:
                if not _DIGITS.fullmatch(value) or len(value) > _MAX_LENGTH_DIGITS:
                    raise PeerError(400, "bad Content-Length")
                if content_length is not None and content_length != value:
                    raise PeerError(400, "conflicting Content-Length headers")
                content_length = value
            elif kind is _TRANSFER_ENCODING:
                if chunked:
                    raise PeerError(501, "multiple Transfer-Encoding headers")
                if value != b"chunked":
                    if value.lower() != b"chunked":
                        raise PeerError(501, "Only Transfer-Encoding: chunked is supported")
                    headers[index] = (name, b"chunked")
                chunked = True
            elif kind is _CONNECTION:
                close = close or value in _CLOSE or b"close" in tokens(value)
            elif kind is _EXPECT:
                expect = expect or b"100-continue" in tokens(value)
            elif kind is _UPGRADE:
                upgrade = value
                switch = switch or bool(tokens(value))
            elif kind is _TE:
                trailers = b"trailers" in value.lower()
            else:
                forwarded = True
        if hosts == 0 and http_version == b"1.1":
            raise PeerError(400, "Missing mandatory Host: header")
        if hosts > 1:
            raise PeerError(400, "Found multiple Host: headers")
        self.host = host
        self.content_length = None if content_length is None else int(content_length)
        self.chunked = chunked
        #: `Connection: close` was asked for (HTTP/1.0 without it closes too; see `keep_alive`).
        self.close = close
        self.expect_continue = expect
        #: The last `Upgrade` value, as the protocol offers it to upgrade handlers.
        self.upgrade = upgrade
        #: A protocol switch is proposed (h11's rule: a non-empty Upgrade, or CONNECT).
        self.switch_proposed = switch
        self.te_trailers = trailers
        self.forwarded = forwarded
        #: Bytes of the whole head when the engine knows them (0 when it does not): no field is longer.
        self.head_size = 0
        #: The whole body, when the engine had all of it with the head (see `Engine.next_event`); else None.
        self.body: bytes | None = None

    @property
    def body_expected(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def complete(self) -> bool:
        """Nothing more of this request will come as events: it has no body, or carries all of it."""
        return self.body is not None or not (self.chunked or self.content_length)


def tokens(value: bytes) -> list[bytes]:
    """The lowercased, comma-separated tokens of a field value."""
    return [token for part in value.lower().split(b",") if (token := part.strip())]


class Signal(enum.Enum):
    END_OF_MESSAGE = "the request body is complete"
    NEED_DATA = "more bytes are needed for the next event"
    PAUSED = "the request is complete; what follows waits for start_next_cycle"
    CONNECTION_CLOSED = "the client closed its side between requests"


#: What `next_event` returns: a request head, a piece of its body, or a signal.
Event = Request | bytes | Signal


class Engine:
    """One HTTP/1.1 connection, server side, without I/O. Both engines subclass it (rather than match a Protocol)
    so that compiled (mypyc) callers reach their methods through the class's method table, not Python lookups."""

    __slots__ = ()

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; `b""` means it closed its side (EOF)."""
        raise NotImplementedError

    def next_event(self) -> Event:
        """The next event; raises `PeerError` for a request that must be refused. A request without a body is
        complete as returned, and so is one whose whole body an engine had with its head, which it may hand
        over as `request.body`: for a `request.complete`, no body or END_OF_MESSAGE events follow."""
        raise NotImplementedError

    def start_next_cycle(self) -> None:
        """Both request and response are complete and the connection stays open: read the next request."""
        raise NotImplementedError

    @property
    def trailing_data(self) -> bytes:
        """Bytes received and not yet turned into events (what an upgraded protocol reads first)."""
        raise NotImplementedError

    @property
    def waiting_for_100_continue(self) -> bool:
        raise NotImplementedError

    @property
    def request_complete(self) -> bool:
        """The whole request is read and the connection may carry another one."""
        raise NotImplementedError

    @property
    def receiving_body(self) -> bool:
        """The request body is still being received."""
        raise NotImplementedError

    @property
    def input_finished(self) -> bool:
        """The request is complete and was the last one (`Connection: close`, HTTP/1.0): ignore what follows."""
        raise NotImplementedError

    @property
    def must_close(self) -> bool:
        """The response is complete and the connection must close after it."""
        raise NotImplementedError

    def send_informational(self, status: int, headers: Headers) -> bytes:
        """A 1xx response. Raises `ValueError` for one that cannot be sent, changing nothing."""
        raise NotImplementedError

    def send_response(self, status: int, headers: Headers) -> bytes:
        """The response head. Raises `ValueError` for one that cannot be sent, changing nothing."""
        raise NotImplementedError

    def send_data(self, data: bytes) -> bytes:
        raise NotImplementedError

    def frame_file(self, count: int) -> tuple[bytes, bytes]:
        """What goes before and after `count` body bytes that the kernel sends from a file."""
        raise NotImplementedError

    def send_end(self, trailers: Headers | None) -> bytes:
        raise NotImplementedError


EngineFactory = Callable[[Config], Engine]


def select_engine(parser: str | None = None, default: str = "auto") -> EngineFactory:
    """The engine for `parser` ("h11", "httptools" or "auto"); without one, `ASGI_HTTP1_PARSER` decides, else
    `default` (the server's `Config.http1_parser`)."""
    return _engine_for((parser or os.environ.get(PARSER_ENV) or default).strip().lower())


@functools.cache
def _engine_for(choice: str) -> EngineFactory:
    if choice not in PARSERS:
        raise ValueError(f"HTTP/1.1 parser {choice!r} is unknown; choose one of {', '.join(PARSERS)}")
    if choice != "h11":
        if importlib.util.find_spec("httptools") is not None:
            from ._fast_engine import FastEngine  # noqa: PLC0415 - httptools is optional

            return FastEngine
        if choice == "httptools":
            raise ImportError(
                "HTTP/1.1 parser 'httptools' was asked for but httptools is not installed; install asgi-http1[fast]"
            )
    from ._h11_engine import H11Engine  # noqa: PLC0415 - imported where chosen, like the fast one

    return H11Engine
