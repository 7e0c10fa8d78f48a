"""Reading a chunked request body (RFC 9112 section 7.1) the way h11 does, with bounds on its framing.

h11 is the reference, so `ChunkedReader` follows its reader step for step rather than llhttp's: a chunk size of
1 to 20 hex digits, anything after a `;` ignored as extensions, optional spaces or tabs before the CRLF, exactly
CRLF after the chunk data, and trailer fields read like header fields and then dropped (ASGI cannot deliver
them).

h11 bounds a chunk-size line only by its whole receive buffer and reads extensions without limit, so a client
could send millions of tiny chunks each carrying a kilobyte of extensions that nobody reads. The reader refuses
(400) a chunk-size line longer than `MAX_CHUNK_LINE` and more than `MAX_CHUNK_EXTENSIONS` bytes of extensions in
one request.

Hot module: this code runs for every chunk (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import enum
import re
from typing import Final

import h11
from asgi_core import PeerError, has_control_character

from ._request import Signal

#: Longest chunk-size line (size, extensions and whitespace, without its CRLF) a request may send.
MAX_CHUNK_LINE: Final = 4096
#: Most bytes of chunk extensions (from each `;` to the line end) in one request; Node.js allows the same.
MAX_CHUNK_EXTENSIONS: Final = 16384
_CHUNK_HEADER: Final = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*\r\n")
_BLANK_LINE: Final = re.compile(rb"\n\r?\n")
_FIELD: Final = re.compile(rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*")
_FOLD: Final = re.compile(rb"[ \t]+")


class _Step(enum.Enum):
    SIZE = "reading a chunk-size line"
    DATA = "reading chunk data"
    DATA_END = "reading the CRLF after chunk data"
    TRAILER = "reading the trailer section"


class ChunkedReader:
    """Takes what it can from the front of `buffer` on each call: body bytes, the end of the body, or None."""

    __slots__ = ("_extensions", "_line_search", "_remaining", "_step")

    def __init__(self) -> None:
        self._step = _Step.SIZE
        self._remaining = 0  # bytes left in this chunk (DATA) or of the CRLF after it (DATA_END)
        self._line_search = 0
        self._extensions = 0  # bytes of chunk extensions so far in this request

    def read(self, buffer: bytearray) -> bytes | Signal | None:
        while True:
            step = self._step
            if step is _Step.DATA:
                if not buffer:
                    return None
                data = bytes(buffer[: self._remaining])
                del buffer[: len(data)]
                self._remaining -= len(data)
                if not self._remaining:
                    self._step, self._remaining = _Step.DATA_END, 2
                return data
            if step is _Step.DATA_END:
                taken = bytes(buffer[: self._remaining])
                if not taken:
                    return None
                if taken != b"\r\n"[2 - self._remaining :][: len(taken)]:
                    raise PeerError(400, f"malformed chunk footer: {taken!r}")
                del buffer[: len(taken)]
                self._remaining -= len(taken)
                if self._remaining:
                    return None
                self._step = _Step.SIZE
            elif step is _Step.SIZE:
                end = buffer.find(b"\r\n", max(0, self._line_search - 1))
                if end == -1:
                    if len(buffer) > MAX_CHUNK_LINE + 1:  # room for the CR of a CRLF still on its way
                        raise PeerError(400, "chunk-size line too long")
                    self._line_search = len(buffer)
                    return None
                if end > MAX_CHUNK_LINE:
                    raise PeerError(400, "chunk-size line too long")
                extension = buffer.find(b";", 0, end)
                if extension != -1:
                    self._extensions += end - extension
                    if self._extensions > MAX_CHUNK_EXTENSIONS:
                        raise PeerError(400, "too many bytes of chunk extensions")
                line = bytes(buffer[: end + 2])
                del buffer[: end + 2]
                self._line_search = 0
                match = _CHUNK_HEADER.fullmatch(line)
                if match is None:
                    raise PeerError(400, f"illegal chunk header: {line!r}")
                self._remaining = int(match[1], 16)
                self._step = _Step.DATA if self._remaining else _Step.TRAILER
            else:
                return self._read_trailer(buffer)

    def _read_trailer(self, buffer: bytearray) -> Signal | None:
        if buffer[:1] == b"\n":
            del buffer[:1]
            return Signal.END_OF_MESSAGE
        if buffer[:2] == b"\r\n":
            del buffer[:2]
            return Signal.END_OF_MESSAGE
        match = _BLANK_LINE.search(buffer, self._line_search)
        if match is None:
            self._line_search = max(0, len(buffer) - 2)
            return None
        block = bytes(buffer[: match.end()])
        del buffer[: match.end()]
        lines = [line.removesuffix(b"\r") for line in block.split(b"\n")[:-2]]
        fields = []
        for line in _unfold(lines):
            field = _FIELD.fullmatch(line)
            if field is None:
                raise PeerError(400, f"illegal trailer line: {line!r}")
            fields.append((field[1], field[2]))
            if has_control_character(field[2]):
                raise PeerError(400, "control character in a trailer field value")
        try:
            h11.EndOfMessage(headers=fields)  # the same checks on trailer fields as h11's (Content-Length...)
        except h11.LocalProtocolError as exc:
            raise PeerError(exc.error_status_hint, str(exc)) from None
        return Signal.END_OF_MESSAGE


def _unfold(lines: list[bytes]) -> list[bytes]:
    """obs-fold (RFC 9112 section 5.2): a line starting with whitespace continues the previous one."""
    out: list[bytes] = []
    for line in lines:
        fold = _FOLD.match(line)
        if fold is None:
            out.append(line)
        elif not out:
            raise PeerError(400, "continuation line at start of trailers")
        else:
            out[-1] += b" " + line[fold.end() :]
    return out
