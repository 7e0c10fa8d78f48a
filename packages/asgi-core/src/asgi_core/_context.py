"""What one server (a worker, or a standalone asyncio server) shares with all of its connections."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, MutableSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ._config import Config
from ._deadline import DeadlineQueue
from ._types import Address, ASGIApp, Headers, Scope

if TYPE_CHECKING:
    from ._registry import Registry


@dataclass(slots=True, init=False)
class AccessRecord:
    """One finished request, handed to the access-log callback; built only when a callback is set. Its
    `__init__` is written out, as the one `dataclass` generates stays interpreted when compiled
    (`ConnectionInfo`)."""

    method: str
    path: str
    query_string: bytes
    http_version: str
    status: int
    response_bytes: int
    duration: float
    client: Address | None
    request_headers: Headers
    response_headers: Headers
    scheme: str
    #: A WebSocket session's close code: its record is made when the session ends, its duration the session's.
    close_code: int | None

    def __init__(
        self,
        method: str,
        path: str,
        query_string: bytes,
        http_version: str,
        status: int,
        response_bytes: int,
        duration: float,
        client: Address | None,
        request_headers: Headers,
        response_headers: Headers,
        scheme: str,
        close_code: int | None = None,
    ) -> None:
        self.method, self.path, self.query_string = method, path, query_string
        self.http_version, self.status, self.response_bytes = http_version, status, response_bytes
        self.duration, self.client, self.scheme = duration, client, scheme
        self.request_headers, self.response_headers = request_headers, response_headers
        self.close_code = close_code

    @staticmethod
    def of(scope: Scope, status: int, sent: int, started_at: float, headers: Headers) -> AccessRecord:
        """The record of a request of `scope` answered with `status` and `sent` body bytes."""
        return AccessRecord(
            method=scope["method"],
            path=scope["path"],
            query_string=scope["query_string"],
            http_version=scope["http_version"],
            status=status,
            response_bytes=sent,
            duration=time.monotonic() - started_at,
            client=scope["client"],
            request_headers=scope["headers"],
            response_headers=headers,
            scheme=scope["scheme"],
        )


class CertificateFiles(NamedTuple):
    """Where the server's certificate chain and key were loaded from: what a protocol with its own TLS stack
    (QUIC: HTTP/3) needs, since an `ssl.SSLContext` cannot be read back."""

    certfile: str
    keyfile: str | None = None
    password: str | bytes | None = None


class ServerConnection(Protocol):
    """What a server needs from each live connection to drain it without losing a request.

    A drain has two steps, and a connection that finishes its work in between closes itself:

    1. `shutdown()`, as soon as the server stops accepting: take no new work the peer cannot retry. Requests in
       flight finish and their responses say the connection ends (`Connection: close`, GOAWAY). An idle
       HTTP/1.1 connection is *not* closed under its client, which may be sending its next request right now:
       it stays open for `Config.drain_idle_grace` seconds, answers one more request with `Connection: close`,
       and closes when the grace passes idle. HTTP/2 sends GOAWAY with the highest stream id, then, after a
       PING round trip, the real last stream id (RFC 9113 section 6.8). WebSocket sessions carry on.
    2. `going_away()`, when the drain's time is nearly up: end what is still open, telling both sides. The
       app's `receive()` returns `http.disconnect` / `websocket.disconnect`, WebSockets are closed with 1001
       (1012 when the server restarts), HTTP/2 streams are reset, and the connection closes soon after,
       whatever the app does.
    """

    def shutdown(self) -> None:
        """Start draining: finish in-flight work, take no new work, close once idle (see the class doc)."""

    def going_away(self) -> None:
        """The drain's time is up: tell the app and the peer, and close."""


@dataclass
class ServerContext:
    """The app, its settings and the shared state that every connection of one server sees."""

    app: ASGIApp
    config: Config = field(default_factory=Config)
    state: dict[str, Any] | None = None
    access_log: Callable[[AccessRecord], None] | None = None
    on_request_done: Callable[[], None] | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("asgi_core.error"))
    registry: Registry | None = None
    #: Typed as any mutable set, not `set`: a server may pass a subclass that watches `discard` (the worker's
    #: connection cap does), and compiled callers dispatch on the declared type.
    connections: MutableSet[ServerConnection] = field(default_factory=set)
    server_name: bytes = b"gunicorn-asgi"
    #: An `Alt-Svc` value added to every response that has none (RFC 7838): how clients find the server's
    #: HTTP/3 endpoint. The Server sets it when it opens datagram endpoints.
    alt_svc: bytes | None = None
    #: The files of the server's TLS certificate, when it has one and knows them (see `CertificateFiles`).
    certificate: CertificateFiles | None = None
    #: Whether the server's connections may be TLS ones; `False` (a server without an SSL context) spares each
    #: connection asking its transport for an `ssl_object` (`ConnectionInfo.from_transport`'s `tls`).
    tls: bool | None = None
    #: Set when the server stops taking requests (graceful shutdown, max_requests): responses then say
    #: `Connection: close` and idle connections are closed.
    draining: bool = False
    #: Set with `draining` when the server will come back (reload, max_requests): WebSockets then close
    #: with 1012 (service restart) instead of 1001 (going away).
    restarting: bool = False
    #: The event loop the connections run on, when the server knows it: protocols take it from here rather
    #: than calling `asyncio.get_running_loop()` per connection, which on Python 3.11 is a getpid() system call
    #: (about 5% of the CPU of a connection that carries one request).
    loop: asyncio.AbstractEventLoop | None = None
    _head_deadlines: DeadlineQueue | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled by mypyc, a field that is not an `__init__` argument gets no default: it is set here.
        self._head_deadlines = None

    def head_deadlines(self, loop: asyncio.AbstractEventLoop) -> DeadlineQueue | None:
        """Where new connections on `loop` wait for their first request head (`Config.header_timeout`, `None`
        for none): one queue, on one loop timer, for the whole server (see `DeadlineQueue`)."""
        timeout = self.config.header_timeout
        queue = self._head_deadlines
        if queue is None or queue.loop is not loop or queue.delay != timeout:
            if timeout is None:
                return None
            queue = self._head_deadlines = DeadlineQueue(loop, timeout)
        return queue

    def drain_connections(self) -> None:
        """Step 1 of the drain (see `ServerConnection`) for every connection; new ones start in it."""
        self.draining = True
        for connection in list(self.connections):
            connection.shutdown()

    def close_connections(self) -> None:
        """Step 2 of the drain: every connection still open is told the server is going away."""
        for connection in list(self.connections):
            connection.going_away()
