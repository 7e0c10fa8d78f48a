"""The fast head parser, on httptools: a strictly formed head by two regular expressions, any other by llhttp
(its request line by h11's grammar), and a head llhttp refuses by h11 itself, so that the answer is always h11's.

Hot module: this code runs for every request (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import re
from typing import Final

import httptools
from asgi_core import FIELD_VCHAR, TCHAR, Headers, HeadRejected, PeerError

from ._limits import refuse_control_characters
from ._parsers import H11Heads, HeadParser
from ._request import Request

_TOKEN: Final = TCHAR
_REQUEST_LINE: Final = re.compile(rb"(" + _TOKEN + rb"+) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])")
# RFC 9112's field line, strictly: visible characters and obs-text only, so no CR, LF, NUL or other control
# byte, which is also everything `HeadGuard` looks for. Possessive, so a long bad line costs linear time.
_VALUE: Final = rb"(?:" + FIELD_VCHAR + rb"++(?:[ \t]++" + FIELD_VCHAR + rb"++)*+)?"
_FIELD_LINE: Final = _TOKEN + rb"++:[ \t]*+" + _VALUE + rb"[ \t]*+\r\n"
# The whole head, its blank line included: matched from the buffer's start, it also finds where the head ends (a
# field line cannot be empty, so the first blank line is the one matched), in one pass rather than a search first.
_STRICT_HEAD: Final = re.compile(_REQUEST_LINE.pattern + rb"\r\n(?:" + _FIELD_LINE + rb")*+\r\n")
_STRICT_FIELD: Final = re.compile(rb"(" + _TOKEN + rb"++):[ \t]*+(" + _VALUE + rb")[ \t]*+\r\n")
# llhttp gets a fixed request line: the real one is checked against h11's grammar instead, and llhttp's list of
# known methods (h11 takes any token) and its URL rules do not come into it.
_FIELDS_ONLY: Final = b"GET / HTTP/1.1\r\n"


class _FieldLines:
    """llhttp's callback target: collects the field lines of one head (kept apart from the engine so that the
    parser and the engine do not refer to each other)."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: Headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.lower(), value.rstrip(b" \t")))  # llhttp drops leading whitespace only


#: The judge of a head llhttp refuses (stateless: one for every connection).
_REFERENCE: Final = H11Heads()


def strict_head(buffer: bytes | bytearray) -> tuple[Request, int] | None:
    """The request head at the start of `buffer` and its length, when the head is complete and every line of
    it follows RFC 9112's grammar strictly: the common case, read with two regular expressions instead of the
    guard, llhttp and a callback per field. None for anything else, which takes the full path."""
    match = _STRICT_HEAD.match(buffer)
    if match is None:
        return None  # not complete, or not strictly formed
    size = match.end()
    fields = [(name.lower(), value) for name, value in _STRICT_FIELD.findall(buffer, match.end(3) + 2, size - 2)]
    # The guard's one check that a strictly formed head can fail, made first as the guard would make it.
    lengths = [value for name, value in fields if name == b"content-length"]
    if lengths and (len(lengths) > 1 or lengths[0].find(b",") >= 0):
        raise HeadRejected(400, "more than one Content-Length")
    method, target, version = match.groups()
    request = Request(method, target, version, fields)
    request.head_size = size
    return request, size


class FastHeads(HeadParser):
    """Keeps its llhttp parser between heads while llhttp is ready for one."""

    __slots__ = ("_lines", "_parser")

    def __init__(self) -> None:
        self._lines = _FieldLines()
        self._parser: httptools.HttpRequestParser | None = None

    def read_whole(self, data: bytes | bytearray) -> tuple[Request, int] | None:
        return strict_head(data)

    def parse(self, head: bytes) -> Request:
        line_end = head.find(b"\r\n")
        line = _REQUEST_LINE.fullmatch(head, 0, line_end)
        if line is None:
            raise PeerError(400, f"illegal request line: {head[:line_end]!r}")
        lines = self._lines
        lines.fields = []
        parser = self._parser or httptools.HttpRequestParser(lines)
        self._parser = None
        reusable = True
        try:
            parser.feed_data(_FIELDS_ONLY + head[line_end + 2 :])
        except httptools.HttpParserUpgrade:
            reusable = False  # llhttp stops at an upgrade; the head is complete all the same
        except httptools.HttpParserError:
            return _REFERENCE.parse(head)  # h11 may accept it (it is the reference), or say which 4xx
        refuse_control_characters(lines.fields)  # llhttp lets some through (BEL, DEL...)
        method, target, version = line.groups()
        request = Request(method, target, version, lines.fields)
        # A parser that finished a message without a body is ready for the next head; any other is not.
        if reusable and request.content_length is None and not request.chunked and parser.should_keep_alive():
            self._parser = parser
        return request
