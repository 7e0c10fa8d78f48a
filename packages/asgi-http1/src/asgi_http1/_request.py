"""What the engine reads: a request head (`Request`), and the events and signals that follow it.

The engine (`_engine.py`) turns bytes into these, whichever parser read the head; the protocol (`_protocol.py`)
turns them into request cycles.
"""

from __future__ import annotations

import enum
import re
from typing import Final

from asgi_core import Headers, PeerError

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
