"""What one server (a worker, or a standalone asyncio server) shares with all of its connections."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ._config import Config
from ._types import Address, ASGIApp, Headers

if TYPE_CHECKING:
    from ._registry import Registry


@dataclass(slots=True)
class AccessRecord:
    """One finished request, handed to the access-log callback; built only when a callback is set."""

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


class ServerConnection(Protocol):
    """What a server needs from each live connection to shut down gracefully."""

    def shutdown(self) -> None:
        """Stop taking new requests: close now if idle, else once in-flight work is done."""


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

    def drain_connections(self) -> None:
        self.draining = True
        for connection in list(self.connections):
            connection.shutdown()
