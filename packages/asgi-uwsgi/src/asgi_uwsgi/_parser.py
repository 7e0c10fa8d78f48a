"""A sans-IO parser for uWSGI request packets: bytes in, events out, no sockets and no asyncio.

    parser = UwsgiParser()
    parser.receive_data(chunk)          # b"" means the peer closed its side
    while (event := parser.next_event()) is not NEED_DATA: ...

States: HEADER (waiting for the 4-byte header) -> VARS (waiting for the whole variables block, which is
bounded by `max_vars_size` before a byte of it is buffered) -> BODY (counting down CONTENT_LENGTH) -> back to
HEADER after `EndOfRequest`. Whatever the peer sends, `next_event` returns an event or a signal or raises
`ParseError`; once it raised, it raises the same error again, as the stream cannot be resynchronised.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Collection

from ._packet import HEADER, MAX_VARS_SIZE, Body, EndOfRequest, ModifierRefused, ParseError, Request, Variables

_U16 = 2
_MAX_LENGTH_DIGITS = 18  # below 2**63: a length any file system or socket could deliver


class Signal(enum.Enum):
    """What `next_event` returns when it has no event: feed more bytes, or the stream ended cleanly."""

    NEED_DATA = "need data"
    CLOSED = "closed"


NEED_DATA = Signal.NEED_DATA
CLOSED = Signal.CLOSED

Event = Request | Body | EndOfRequest | Signal


class _State(enum.Enum):
    HEADER = "waiting for a packet header"
    VARS = "reading the variables block"
    BODY = "reading the request body"
    CLOSED = "closed"
    ERROR = "failed"


class UwsgiParser:
    """Turns a byte stream of uWSGI request packets into `Request`, `Body` and `EndOfRequest` events."""

    __slots__ = (
        "_buffer",
        "_eof",
        "_error",
        "_header",
        "_max_vars_size",
        "_modifier1",
        "_ready",
        "_ready_size",
        "_remaining",
        "_state",
    )

    def __init__(self, *, max_vars_size: int = MAX_VARS_SIZE, modifier1: Collection[int] | None = None) -> None:
        """`modifier1`: the values accepted (`ModifierRefused` for another, from the header alone); any when
        None."""
        if not 0 < max_vars_size <= MAX_VARS_SIZE:
            raise ValueError(f"max_vars_size must be 1 to {MAX_VARS_SIZE}, got {max_vars_size}")
        self._max_vars_size = max_vars_size
        self._modifier1 = None if modifier1 is None else tuple(sorted(modifier1))
        self._buffer = bytearray()
        self._eof = False
        self._state = _State.HEADER
        self._header = (0, 0, 0)  # modifier1, datasize, modifier2 of the packet being read
        self._remaining = 0  # body bytes still to come
        # Chunks that are body and nothing else are handed out as they came, without a copy; they precede
        # whatever is in `_buffer`.
        self._ready: collections.deque[bytes] = collections.deque()
        self._ready_size = 0
        self._error: ParseError | None = None

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def in_body(self) -> bool:
        """Whether a request was announced and its body is not complete yet."""
        return self._state is _State.BODY

    @property
    def body_remaining(self) -> int:
        return self._remaining if self._state is _State.BODY else 0

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; `b""` means it closed its side (EOF)."""
        if self._eof and data:
            raise RuntimeError("receive_data called with data after EOF")
        if not data:
            self._eof = True
        elif self._state is _State.BODY and not self._buffer and self._ready_size + len(data) <= self._remaining:
            self._ready.append(data)
            self._ready_size += len(data)
        else:
            self._buffer += data

    def next_event(self) -> Event:
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except ParseError as exc:
            self._state = _State.ERROR
            self._error = exc
            self._buffer.clear()
            self._ready.clear()
            raise

    def _next(self) -> Event:
        state = self._state
        if state is _State.HEADER:
            return self._read_header()
        if state is _State.VARS:
            return self._read_vars()
        if state is _State.BODY:
            return self._read_body()
        return CLOSED

    def _read_header(self) -> Event:
        buffer = self._buffer
        if len(buffer) < HEADER.size:
            if not self._eof:
                return NEED_DATA
            if buffer:
                raise ParseError(f"connection closed after {len(buffer)} of the {HEADER.size} header bytes")
            self._state = _State.CLOSED
            return CLOSED
        modifier1, datasize, modifier2 = HEADER.unpack_from(buffer)
        if self._modifier1 is not None and modifier1 not in self._modifier1:
            served = ", ".join(map(str, self._modifier1))
            raise ModifierRefused(f"modifier1 {modifier1} is not served (this server serves {served})")
        if datasize > self._max_vars_size:
            raise ParseError(
                f"variables block of {datasize} bytes is over the limit of {self._max_vars_size} bytes"
            )
        del buffer[: HEADER.size]
        self._header = (modifier1, datasize, modifier2)
        self._state = _State.VARS
        return self._read_vars()

    def _read_vars(self) -> Event:
        modifier1, datasize, modifier2 = self._header
        buffer = self._buffer
        if len(buffer) < datasize:
            if self._eof:
                raise ParseError(f"connection closed after {len(buffer)} of {datasize} variables bytes")
            return NEED_DATA
        variables = parse_vars(bytes(buffer[:datasize]))
        del buffer[:datasize]
        content_length = _content_length(variables)
        self._remaining = content_length
        self._state = _State.BODY
        return Request(modifier1, modifier2, variables, content_length)

    def _read_body(self) -> Event:
        if self._remaining == 0:
            self._state = _State.HEADER
            return EndOfRequest()
        if self._ready:
            data = self._ready.popleft()
            self._ready_size -= len(data)
            self._remaining -= len(data)
            return Body(data)
        buffer = self._buffer
        if not buffer:
            if self._eof:
                raise ParseError(f"connection closed with {self._remaining} request body bytes still to come")
            return NEED_DATA
        size = min(self._remaining, len(buffer))
        if size == len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:size])
            del buffer[:size]
        self._remaining -= size
        return Body(data)


def parse_vars(block: bytes) -> Variables:
    """A variables block -> its (name, value) pairs in order; `ParseError` if it is not well formed."""
    pairs: list[tuple[bytes, bytes]] = []
    offset, end = 0, len(block)
    while offset < end:
        name, offset = _read_item(block, offset, "name")
        if not name:
            raise ParseError(f"empty variable name at offset {offset - _U16}")
        value, offset = _read_item(block, offset, f"value of {name[:64]!r}")
        pairs.append((name, value))
    return tuple(pairs)


def _read_item(block: bytes, offset: int, what: str) -> tuple[bytes, int]:
    end = len(block)
    if offset + _U16 > end:
        raise ParseError(f"variables block ends inside the length of a {what} (offset {offset})")
    size = block[offset] | block[offset + 1] << 8
    offset += _U16
    if offset + size > end:
        raise ParseError(f"{what} of {size} bytes runs past the end of the variables block (offset {offset})")
    return block[offset : offset + size], offset + size


def _content_length(variables: Variables) -> int:
    found: bytes | None = None
    for name, value in variables:
        if name != b"CONTENT_LENGTH":
            continue
        if found is not None and value != found:
            raise ParseError(f"conflicting CONTENT_LENGTH values {found[:32]!r} and {value[:32]!r}")
        found = value
    if not found:
        return 0
    if len(found) > _MAX_LENGTH_DIGITS or not found.isdigit():  # ASCII digits only, for bytes
        raise ParseError(f"CONTENT_LENGTH {found[:32]!r} is not a byte count")
    return int(found)
