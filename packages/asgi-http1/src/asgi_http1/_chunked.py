"""Reading a chunked request body (RFC 9112 section 7.1) the way h11 does, for the fast engine, and the bounds on
its framing that both engines apply.

h11 is the reference, so `ChunkedReader` follows its reader step for step rather than llhttp's: a chunk size of
1 to 20 hex digits, anything after a `;` ignored as extensions, optional spaces or tabs before the CRLF, exactly
CRLF after the chunk data, and trailer fields read like header fields and then dropped (ASGI cannot deliver
them).

h11 bounds a chunk-size line only by its whole receive buffer and reads extensions without limit, so a client
could send millions of tiny chunks each carrying a kilobyte of extensions that nobody reads. Both engines refuse
(400) a chunk-size line longer than `MAX_CHUNK_LINE` and more than `MAX_CHUNK_EXTENSIONS` bytes of extensions in
one request: `ChunkedReader` as it reads, `ChunkGuard` alongside h11, as `HeadGuard` does for heads.

Hot module: this code runs for every chunk (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import enum
import re
from typing import Final

import h11
from asgi_core import PeerError, has_control_character

from ._engine import Signal

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


_CHUNK_SIZE: Final = re.compile(rb"[0-9A-Fa-f]{1,20}")


class _Guard(enum.Enum):
    SIZE = "reading a chunk-size line"
    DATA = "skipping chunk data"
    DATA_END = "skipping the CRLF after chunk data"
    DONE = "past the last chunk, or at something h11 refuses itself"


class ChunkGuard:
    """Follows a chunked body's framing in the raw bytes that h11 reads, to apply the bounds above, which h11
    lacks. Data is skipped by count, never copied; only a chunk-size line is kept while it arrives. It stops at
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
