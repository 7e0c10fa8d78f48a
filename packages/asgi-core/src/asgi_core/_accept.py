"""Accepting connections on listening sockets with a real cap, the PROXY header, and the TLS handshake.

The server accepts by itself rather than through `loop.create_server`, so that it can stop: once it holds its
maximum of open connections it stops accepting, and further clients wait in the listening socket's backlog
until a connection closes here or another process sharing the socket (a sibling worker) accepts them. A client
is never accepted only to be turned away. Connections still in their PROXY header or TLS handshake count too.

A PROXY header precedes everything else on a connection, TLS handshake included, so it is read from the
accepted socket before any transport exists: the bytes are peeked, and exactly the header's length is consumed,
which leaves the rest (a ClientHello, a request) to the transport and protocol that follow.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final

from ._connection import peer_in, socket_address
from ._connection_set import ConnectionSet
from ._deadline import Deadline
from ._listener import Listener
from ._proxy import V2_MAX_LENGTH, ProxyHeader, ProxyHeaderError, ProxyPeek, parse_proxy_header

#: Seconds before accepting again once out of file descriptors or memory.
_RETRY_AFTER = 1.0
#: Connections taken per readiness event before giving the loop back to the connections already open.
_ACCEPT_BATCH = 64
#: What `_step` gets from the opening coroutine once it has ended.
_OPENED: Final = object()
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxyPolicy:
    """PROXY protocol: which versions are read, from which peers, and how long a header may take."""

    v1: bool
    v2: bool
    trusted: tuple[Network, ...] | None
    timeout: float


class Acceptor:
    def __init__(
        self,
        sockets: list[socket.socket],
        *,
        factory: Callable[[ProxyHeader | None], asyncio.Protocol],
        connections: ConnectionSet,
        limit: int,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float,
        proxy: ProxyPolicy | None,
        log: logging.Logger,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._sockets = sockets
        self._listeners = [Listener(sock) for sock in sockets]
        self._factory = factory
        self._connections = connections
        self._limit = max(1, limit)
        self._ssl = ssl_context
        self._handshake_timeout = handshake_timeout
        self._proxy = proxy
        self._log = log
        self._pending = 0
        self._paused = True
        self._stopped = True
        self._opening: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._retry = Deadline(self._loop, self._resume)
        connections.on_leave = self._on_leave

    @property
    def open_connections(self) -> int:
        """Connections this worker holds: served ones, and those still in a PROXY header or TLS handshake."""
        return len(self._connections) + self._pending

    def start(self) -> None:
        for sock in self._sockets:
            sock.setblocking(False)
        self._stopped = False
        self._resume()

    def stop(self) -> None:
        """Stop accepting; new clients stay in the backlog for the next worker."""
        self._stopped = True
        self._pause()

    def abort_opening(self) -> None:
        for task in list(self._opening):
            task.cancel()

    async def wait_idle(self) -> None:
        """Return once every connection is gone."""
        while self.open_connections:
            self._idle.clear()
            await self._idle.wait()

    # ---- accepting -----------------------------------------------------------------------------------

    def _resume(self) -> None:
        if self._paused and not self._stopped and self.open_connections < self._limit:
            self._paused = False
            for listener in self._listeners:
                self._loop.add_reader(listener.socket.fileno(), self._accept, listener)

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            for sock in self._sockets:
                self._loop.remove_reader(sock.fileno())

    def _on_leave(self) -> None:
        self._resume()
        if not self.open_connections:
            self._idle.set()

    def _accept(self, listener: Listener) -> None:
        for _ in range(_ACCEPT_BATCH):
            if self._paused:
                return
            if self.open_connections >= self._limit:
                self._pause()
                return
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # a sibling worker took it
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                if exc.errno in _OUT_OF_RESOURCES:
                    # Out of file descriptors or memory: retrying at once would spin; let connections close.
                    self._log.error("cannot accept connections (%s); retrying in 1 s", exc)
                    self._pause()
                    self._retry.arm(_RETRY_AFTER)
                    return
                raise
            self._open(sock, address, listener.local)
            # Taking the waiting ones now rather than one per readiness event matters: a loop turn each (epoll,
            # the loop's own handles) doubled the CPU of a Connection: close request under load (bench/run.py).
            if not listener.has_pending():
                return

    def _open(self, sock: socket.socket, address: object, local: object) -> None:
        # No TCP_NODELAY here: both asyncio's and uvloop's TCP transports set it on the sockets they take over.
        self._pending += 1
        proxy = self._proxy
        try:
            # The addresses travel with the connection, so that its protocol does not ask the socket again.
            plain = self._ssl is None
            server = socket_address(local or sock.getsockname())
            header = ProxyHeader(0, socket_address(address), server, sock if plain else None)
            if plain and (proxy is None or not peer_in(proxy.trusted, header.client)):
                # Nothing to wait for (no PROXY header, no handshake): the event loop's coroutine is run on here
                # rather than by a task, which cost 9k instructions a connection (bench/instructions.py).
                factory = self._factory
                opening = self._loop.connect_accepted_socket(lambda: factory(header), sock)
                self._step(opening.__await__(), sock, address)
                return
        except OSError as failure:
            self._not_opened(sock, address, failure)
            return
        task = self._loop.create_task(self._connect(sock, address, header))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    def _step(self, opening: Generator[Any, None, object], sock: socket.socket, address: object) -> None:
        """Runs `connect_accepted_socket` on as a task would, up to its end: once the transport has called its
        protocol's `connection_made`, the connection is the protocol's, and counted among `connections`."""
        try:
            # `next` with a default takes the coroutine's end (its StopIteration) in C; caught here, in compiled
            # code, it cost a traceback entry and the exception state saved and restored: 2% of the CPU of a
            # worker serving Connection: close clients (perf).
            waiting = next(opening, _OPENED)
        except OSError as failure:
            self._not_opened(sock, address, failure)
            return
        except asyncio.CancelledError as cancelled:  # the loop cancelled what it awaited: no task to tell
            self._not_opened(sock, address, cancelled)
            return
        except BaseException:
            sock.close()
            self._opened()
            raise
        if waiting is _OPENED:
            self._opened()
        elif asyncio.isfuture(waiting):
            waiting.add_done_callback(lambda _: self._step(opening, sock, address))
        else:  # a bare `yield`: on at the loop's next turn
            self._loop.call_soon(self._step, opening, sock, address)

    async def _connect(self, sock: socket.socket, address: object, header: ProxyHeader) -> None:
        """Opens a connection that waits for something first: its PROXY header, its TLS handshake."""
        proxy = self._proxy
        try:
            if proxy is not None and peer_in(proxy.trusted, header.client):
                # Untrusted peers' bytes reach the protocol as they are: a PROXY line from them is a bad request.
                sock.setblocking(False)  # accepted blocking (see `Listener.accept`), and read here first
                announced = await read_proxy_header(sock, v1=proxy.v1, v2=proxy.v2, timeout=proxy.timeout)
                if announced is not None and announced.client is not None:
                    # Else none, or a LOCAL or UNKNOWN header: the proxy's own connection.
                    header = ProxyHeader(announced.length, announced.client, announced.server, header.sock)
            factory = self._factory
            if self._ssl is None:
                await self._loop.connect_accepted_socket(lambda: factory(header), sock)
            else:
                await self._loop.connect_accepted_socket(
                    lambda: factory(header), sock, ssl=self._ssl, ssl_handshake_timeout=self._handshake_timeout
                )
        # One name per handler: compiled by mypyc, a name bound by two `except` clauses takes the first one's
        # type, and binding the second's exception to it raises TypeError.
        except ProxyHeaderError as malformed:
            self._log.warning("closing connection from %s: %s", header.client, malformed)
            sock.close()
            self._opened()
        except (OSError, asyncio.TimeoutError) as failure:
            self._not_opened(sock, address, failure)
        except BaseException:
            sock.close()
            self._opened()
            raise
        else:
            self._opened()

    def _not_opened(self, sock: socket.socket, address: object, failure: BaseException) -> None:
        # TLS handshakes that fail or time out, PROXY headers that never come, peers that vanish: routine on the
        # internet.
        self._log.debug("connection from %s not opened: %s", socket_address(address), failure)
        sock.close()
        self._opened()

    def _opened(self) -> None:
        """A connection is no longer opening: its protocol counts it among `connections` now, or it is gone."""
        self._pending -= 1
        self._on_leave()


async def read_proxy_header(sock: socket.socket, *, v1: bool, v2: bool, timeout: float) -> ProxyHeader | None:
    """Consume a PROXY header from a freshly accepted non-blocking socket, leaving every byte after it.

    Returns `None` when the connection does not start with one. Raises `ProxyHeaderError` for a malformed
    header, `TimeoutError` when none arrives in time and `ConnectionError` when the peer goes away first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = -1
    while True:
        try:
            data = sock.recv(V2_MAX_LENGTH, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            data = None
        if data == b"":
            raise ConnectionResetError("the peer closed before sending a PROXY header")
        if data is not None:
            result = parse_proxy_header(data, v1=v1, v2=v2)
            if result is ProxyPeek.ABSENT:
                return None
            if isinstance(result, ProxyHeader):
                sock.recv(result.length)  # peeked, so all of it is there to take
                return result
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError("no complete PROXY header in time")
        if data is not None and len(data) == seen:
            # Readiness stays set while peeked bytes sit unread; wait for more to arrive instead of spinning.
            await asyncio.sleep(min(0.01, remaining))
            continue
        seen = -1 if data is None else len(data)
        await _readable(loop, sock, remaining)


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(ready, timeout)
    except asyncio.TimeoutError:
        raise TimeoutError("no complete PROXY header in time") from None
    finally:
        loop.remove_reader(fd)
