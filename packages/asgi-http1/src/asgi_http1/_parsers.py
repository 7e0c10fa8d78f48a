"""Request-head parsers: the one part of HTTP/1.1 that differs between the engine's two parsers.

The engine (`_engine.py`) keeps the connection's state, reads bodies and frames responses the same way whichever
parser it has; a parser only turns the bytes of one request head into a `Request`:

- `H11Heads`, on h11: the reference. Every head goes through h11's own reader, so its answer (a request, or which
  4xx) is h11's by construction. Used when httptools is not installed, or when asked for.
- `FastHeads` (`_fast_heads.py`), on httptools: a strictly formed head is read with two regular expressions,
  anything else by llhttp, and a head llhttp refuses by h11 (`H11Heads`), so that its answer is h11's too.

`ASGI_HTTP1_PARSER=h11` (or `HTTP1Protocol(context, parser="h11")`) forces the reference.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import Final

import h11
from asgi_core import PeerError

from ._limits import refuse_control_characters
from ._request import Request

PARSER_ENV: Final = "ASGI_HTTP1_PARSER"
PARSERS: Final = ("auto", "h11", "httptools")


class HeadParser:
    """Reads request heads for one connection. Subclassed (rather than matched as a Protocol) so that the
    compiled (mypyc) engine reaches its methods through the class's method table."""

    __slots__ = ()

    def read_whole(self, data: bytes | bytearray) -> tuple[Request, int] | None:
        """The head at the start of `data` and its length, when the parser can take it whole without `HeadGuard`
        (a complete, strictly formed head: the common case). None leaves it to the guard and `parse`."""
        return None

    def parse(self, head: bytes) -> Request:
        """`head` is complete and has passed `HeadGuard`: its lines end in CRLF, with no obs-fold and no NUL.
        Raises `PeerError` for a head to refuse."""
        raise NotImplementedError


class H11Heads(HeadParser):
    """Every head read by h11, the reference."""

    __slots__ = ()

    def parse(self, head: bytes) -> Request:
        # A fresh h11 connection per head: h11 has no way to read a head alone, and one connection would expect
        # a response before it reads another request.
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(head)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise PeerError(exc.error_status_hint, str(exc)) from None
        if not isinstance(event, h11.Request):  # a complete head always gives a Request or an error
            raise PeerError(400, "unreadable request head")
        headers = list(event.headers)
        refuse_control_characters(headers)  # h11 refuses only NUL, CR and LF among the control characters
        return Request(event.method, event.target, event.http_version, headers)


ParserFactory = Callable[[], HeadParser]


def select_parser(parser: str | None = None, default: str = "auto") -> ParserFactory:
    """The head parser for `parser` ("h11", "httptools" or "auto"); without one, `ASGI_HTTP1_PARSER` decides,
    else `default` (the server's `Config.http1_parser`). Raises `ValueError` for an unknown name, `ImportError`
    for httptools when it is not installed."""
    return _parser_for((parser or os.environ.get(PARSER_ENV) or default).strip().lower())


@functools.cache
def _parser_for(choice: str) -> ParserFactory:
    if choice not in PARSERS:
        raise ValueError(f"HTTP/1.1 parser {choice!r} is unknown; choose one of {', '.join(PARSERS)}")
    if choice != "h11":
        if importlib.util.find_spec("httptools") is not None:
            from ._fast_heads import FastHeads  # noqa: PLC0415 - httptools is optional

            return FastHeads
        if choice == "httptools":
            raise ImportError(
                "HTTP/1.1 parser 'httptools' was asked for but httptools is not installed; install asgi-http1[fast]"
            )
    return H11Heads
