"""A listening socket, and how to take connections from it without detours (see `_accepted_socket.py`).
Compiled: with `Connection: close` clients every request is a new connection."""

from __future__ import annotations

import ipaddress
import select
import socket

from ._accepted_socket import AcceptedSocket, accepted_socket_class


class Listener:
    """A listening socket, and how to take one connection from it."""

    __slots__ = ("_accepted", "_family", "_proto", "_readable", "_type", "local", "socket")

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self._family = int(sock.family)
        self._type = int(sock.type)
        self._proto = sock.proto
        self._accepted = accepted_socket_class(self._family, self._type)
        local = sock.getsockname()
        #: The local address of every connection accepted here (as `getsockname()` gives it), or `None` when
        #: each has its own: a listener on a wildcard address (0.0.0.0, ::) takes them on every interface.
        self.local: object = None if _is_wildcard(local) else local
        self._readable = select.poll()
        self._readable.register(sock.fileno(), select.POLLIN)

    def has_pending(self) -> bool:
        """Whether a connection waits to be accepted. Asked after taking one, rather than calling `accept()` until
        it fails: for the same system call, its `BlockingIOError` cost 8.7k instructions more than this poll, a
        twentieth of a Connection: close request (bench/instructions.py)."""
        return bool(self._readable.poll(0))

    def accept(self) -> tuple[AcceptedSocket, object]:
        """One pending connection and its peer's address; `BlockingIOError` when none waits.

        The socket is left in blocking mode: both event loops' `connect_accepted_socket` make it non-blocking
        themselves (a second `ioctl` a connection otherwise), and whoever reads it before (a PROXY header) must
        call `setblocking(False)` first."""
        fd, address = self.socket._accept()  # type: ignore[attr-defined]  # noqa: SLF001 - accept() minus the enums
        return self._accepted(self._family, self._type, self._proto, fileno=fd), address


def _is_wildcard(address: object) -> bool:
    if not isinstance(address, tuple):
        return False  # a Unix socket's path: where all of its connections arrive
    try:
        return ipaddress.ip_address(address[0]).is_unspecified
    except ValueError:
        return True  # not an address we know how to read: ask each connection
