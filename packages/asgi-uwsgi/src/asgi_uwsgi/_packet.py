"""A uWSGI request packet on the wire, the events the parser makes of it, and the encoder for clients.

A packet is a 4-byte header (`modifier1`: u8, `datasize`: u16 little-endian, `modifier2`: u8), then
`datasize` bytes of variables, each a u16-LE-prefixed name followed by a u16-LE-prefixed value, then the
request body: exactly `CONTENT_LENGTH` bytes. The variables are CGI's (REQUEST_METHOD, HTTP_HOST, ...), in the
order nginx sent them; names may repeat (nginx sends one HTTP_* variable per header line).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

#: The packet header: modifier1, size of the variables block, modifier2.
HEADER = struct.Struct("<BHB")
_LENGTH = struct.Struct("<H")
#: The variables block size is a u16: no packet can carry more.
MAX_VARS_SIZE = 0xFFFF

Variables = tuple[tuple[bytes, bytes], ...]


class ParseError(Exception):
    """The peer sent something that is not a uWSGI request packet. The connection cannot go on: close it."""


class ModifierRefused(ParseError):
    """The packet's `modifier1` is not one the parser was told to accept: a request for another kind of
    application (uWSGI dispatches on it: PSGI, Rack, ...) or not a request at all (ping, signals)."""


@dataclass(frozen=True, slots=True)
class Request:
    """A packet's header and variables; its body follows as `Body` events, then `EndOfRequest`."""

    modifier1: int
    modifier2: int
    variables: Variables
    #: Length of the body that follows, from CONTENT_LENGTH (0 when absent or empty).
    content_length: int

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """The first value of variable `name`."""
        for key, value in self.variables:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class Body:
    """The next piece of the request body."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfRequest:
    """The whole body has arrived."""


def encode_vars(variables: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The variables block for `variables`; `ValueError` if a name, a value or the block is too large."""
    parts: list[bytes] = []
    for name, value in variables:
        for item in (name, value):
            if len(item) > MAX_VARS_SIZE:
                raise ValueError(f"uWSGI variable part of {len(item)} bytes; the limit is {MAX_VARS_SIZE}")
            parts.append(_LENGTH.pack(len(item)))
            parts.append(item)
    block = b"".join(parts)
    if len(block) > MAX_VARS_SIZE:
        raise ValueError(f"uWSGI variables block of {len(block)} bytes; the limit is {MAX_VARS_SIZE}")
    return block


def encode_packet(
    variables: Iterable[tuple[bytes, bytes]], body: bytes = b"", *, modifier1: int = 0, modifier2: int = 0
) -> bytes:
    """A whole request packet, as nginx's `uwsgi_pass` would send it (the caller sets CONTENT_LENGTH)."""
    block = encode_vars(variables)
    return HEADER.pack(modifier1, len(block), modifier2) + block + body
