"""Response framing, by h11's rules so that the bytes on the wire are what h11 would send: header validation, the
choice between Content-Length, chunked and close-delimited bodies, and the body writers that enforce the
declared length. The engine (`_engine.py`) keeps the connection state around these.

Hot module: this code runs for every response (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from asgi_core import REASONS, Headers, is_token

from ._errors import FramingError

# h11's own field-value rule, looser than `asgi_core.is_field_value` (it lets other controls through): kept so
# that the engine accepts and refuses the response headers h11 does (the differential tests hold it to h11).
_FIELD_VALUE: Final = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_DIGITS: Final = re.compile(rb"[0-9]+")
_MAX_LENGTH_DIGITS: Final = 20
_VALID_CACHE_SIZE: Final = 512

#: One field as h11 keeps it: the name as given, the name lowercased, the value.
Field = tuple[bytes, bytes, bytes]

# Apps send the same few fields over and over; each valid one is checked once (the cache is bounded).
_valid: Final[dict[tuple[bytes, bytes], bytes]] = {}


#: Chunk-size lines by size (`chunk_size_line`), up to a bound.
_chunk_size_lines: Final[dict[int, bytes]] = {}
_CHUNK_SIZES_CACHED: Final = 1024

#: Encoded lines of valid fields that leave framing and the connection alone, for the common response's head.
_plain_lines: Final[dict[tuple[bytes, bytes], bytes]] = {}
_NOT_PLAIN: Final = frozenset({b"content-length", b"transfer-encoding", b"connection", b"host"})
_STATUS_LINES: Final[dict[int, bytes]] = {}


def plain_head(
    status: int, headers: Headers, version: bytes, *, closing: bool = False
) -> tuple[bytes, BodyWriter] | None:
    """The head of the common response and its body writer, in one pass: a final status with a body, to a
    request that is not HEAD or CONNECT; a declared Content-Length (or chunked, to an HTTP/1.1 client), no other
    field that changes framing or the connection; `closing` adds `Connection: close` where h11 puts it, last.
    None for any other: `response_fields`."""
    status_line = _STATUS_LINES.get(status)
    if status_line is None:
        status_line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b""))
    lines = [status_line]
    length: bytes | None = None
    for field in headers:
        line = _plain_lines.get(field)
        if line is None:
            name, value = field
            if (name == b"content-length" or name.lower() == b"content-length") and length is None:
                if not value.isdigit() or len(value) > _MAX_LENGTH_DIGITS:
                    return None
                length = value
                line = b"".join((name, b": ", value, b"\r\n"))
            else:
                line = plain_line(name, value)
                if line is None:
                    return None
        lines.append(line)
    if length is None:
        if version != b"1.1":
            return None  # HTTP/1.0 gets a body delimited by the close
        lines.append(b"Transfer-Encoding: chunked\r\n")  # as h11 adds it: last, title-cased
        body = BodyWriter(None, chunked=True)
    else:
        body = BodyWriter(int(length), chunked=False)
    lines.append(b"Connection: close\r\n\r\n" if closing else b"\r\n")
    return b"".join(lines), body


def response_fields(
    status: int, headers: Headers, method: bytes, version: bytes, *, keep_alive: bool
) -> list[Field]:
    """The fields of any final response head as h11 sends them: validated, with the body's framing chosen and
    `Connection: close` added when the connection ends with it. Raises `ValueError` for one h11 refuses."""
    if not 200 <= status < 1000:  # noqa: PLR2004 - what h11 accepts as a final status
        raise ValueError(f"Response status_code should be in range [200, 1000), not {status}")
    fields = validate_fields(headers)
    names = {lowered for _, lowered, _ in fields}
    need_close = False
    if not bodyless(status, method) and (b"transfer-encoding" in names or b"content-length" not in names):
        # No length known up front: chunked for HTTP/1.1, else the close ends the body (RFC 9112 6.3).
        fields = replace_field(fields, b"content-length", [])
        if version < b"1.1":
            fields = replace_field(fields, b"transfer-encoding", [])
            need_close = method != b"HEAD"
        else:
            fields = replace_field(fields, b"transfer-encoding", [b"chunked"])
    if not keep_alive or need_close:
        options = set(comma_values(fields, b"connection"))
        options.discard(b"keep-alive")
        options.add(b"close")
        fields = replace_field(fields, b"connection", sorted(options))
    return fields


def bodyless(status: int, method: bytes) -> bool:
    """A response that has no body whatever its fields say (RFC 9112 section 6.3)."""
    return status in (204, 304) or (method == b"CONNECT" and 200 <= status < 300)  # noqa: PLR2004


def body_writer(fields: list[Field], status: int, method: bytes) -> BodyWriter:
    """The writer for the body `response_fields` framed."""
    if method == b"HEAD" or bodyless(status, method):
        return BodyWriter(0, chunked=False)
    length: int | None = None
    for _, lowered, value in fields:
        if lowered == b"transfer-encoding":
            return BodyWriter(None, chunked=True)
        if lowered == b"content-length":
            length = int(value)
    return BodyWriter(length, chunked=False)


def plain_line(name: bytes, value: bytes) -> bytes | None:
    """`name: value` and its CRLF, for a valid field that has no say in framing or the connection (and is not
    Host, which h11 writes first); None for any other. Remembered, as the same fields come back and back."""
    if name.lower() in _NOT_PLAIN or not is_token(name) or not _FIELD_VALUE.fullmatch(value):
        return None
    line = b"%s: %s\r\n" % (name, value)
    if len(_plain_lines) >= _VALID_CACHE_SIZE:
        _plain_lines.clear()
    _plain_lines[name, value] = line
    return line


def validate_fields(headers: Iterable[tuple[bytes, bytes]]) -> list[Field]:
    """h11's checks on fields we send: a token name, a value without CR, LF or NUL, one Content-Length and only
    `chunked` as a Transfer-Encoding. Raises `ValueError`."""
    fields: list[Field] = []
    seen_length: bytes | None = None
    seen_coding = False
    for name, value in headers:
        lowered = _valid.get((name, value))
        if lowered is None:
            if not is_token(name):
                raise ValueError(f"Illegal header name {name!r}")
            if not _FIELD_VALUE.fullmatch(value):
                raise ValueError(f"Illegal header value {value!r}")
            lowered = name.lower()
            if len(_valid) >= _VALID_CACHE_SIZE:
                _valid.clear()
            _valid[name, value] = lowered
        if lowered == b"content-length":
            lengths = {length.strip() for length in value.split(b",")}
            if len(lengths) != 1:
                raise ValueError("conflicting Content-Length headers")
            length = lengths.pop()
            if not _DIGITS.fullmatch(length) or len(length) > _MAX_LENGTH_DIGITS:
                raise ValueError("bad Content-Length")
            if seen_length is None:
                seen_length = length
                fields.append((name, lowered, length))
            elif seen_length != length:
                raise ValueError("conflicting Content-Length headers")
        elif lowered == b"transfer-encoding":
            if seen_coding:
                raise ValueError("multiple Transfer-Encoding headers")
            if value.lower() != b"chunked":
                raise ValueError("Only Transfer-Encoding: chunked is supported")
            seen_coding = True
            fields.append((name, lowered, b"chunked"))
        else:
            fields.append((name, lowered, value))
    return fields


def comma_values(fields: Iterable[Field], name: bytes) -> list[bytes]:
    """The lowercased, comma-separated values of every field called `name` (h11's `get_comma_header`)."""
    out: list[bytes] = []
    for _, lowered, value in fields:
        if lowered == name:
            out.extend(part for raw in value.lower().split(b",") if (part := raw.strip()))
    return out


def replace_field(fields: list[Field], name: bytes, values: list[bytes]) -> list[Field]:
    """Drop every `name` field and append one per value, title-cased as h11 does."""
    kept = [field for field in fields if field[1] != name]
    title = name.title()
    kept.extend((title, name, value) for value in values)
    return kept


def encode_head(status: int, reason: bytes, fields: list[Field]) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason) + encode_fields(fields)


def encode_fields(fields: list[Field]) -> bytes:
    """Field lines and the empty line after them; a Host field goes first, as h11 writes it."""
    lines = [b"%s: %s\r\n" % (raw, value) for raw, lowered, value in fields if lowered == b"host"]
    lines.extend(b"%s: %s\r\n" % (raw, value) for raw, lowered, value in fields if lowered != b"host")
    lines.append(b"\r\n")
    return b"".join(lines)


def chunk(data: bytes) -> bytes:
    """`data` (not empty) framed as one chunk of a chunked body."""
    return b"".join((chunk_size_line(len(data)), data, b"\r\n"))


def chunk_size_line(size: int) -> bytes:
    """The line that opens a chunk of `size` bytes. Remembered: a stream's chunks tend to repeat their sizes, and
    formatting the number costs more than the rest of the framing."""
    line = _chunk_size_lines.get(size)
    if line is None:
        if len(_chunk_size_lines) >= _CHUNK_SIZES_CACHED:
            _chunk_size_lines.clear()
        line = _chunk_size_lines[size] = b"%x\r\n" % size
    return line


class BodyWriter:
    """A body of `length` bytes (`None`: chunked when `chunked`, else delimited by the close)."""

    __slots__ = ("chunked", "remaining")

    def __init__(self, length: int | None, *, chunked: bool) -> None:
        self.remaining = length
        self.chunked = chunked

    def frame(self, size: int) -> tuple[bytes, bytes]:
        """What goes before and after `size` body bytes."""
        if self.remaining is not None:
            self.remaining -= size
            if self.remaining < 0:
                raise FramingError("Too much data for declared Content-Length")
            return b"", b""
        if self.chunked and size:
            return chunk_size_line(size), b"\r\n"
        return b"", b""

    def end(self, trailers: Headers | None) -> bytes:
        if self.remaining is not None:
            if self.remaining:
                raise FramingError("Too little data for declared Content-Length")
            if trailers:
                raise FramingError("Content-Length and trailers don't mix")
            return b""
        if self.chunked:
            return b"0\r\n" + encode_fields(validate_fields(trailers or []))
        if trailers:
            raise FramingError("can't send trailers to HTTP/1.0 client")
        return b""
