"""The socket object of an accepted connection, made cheaply. Interpreted (it extends `socket.socket`, which
mypyc cannot compile as a native class); `_listener.py` makes them.

`socket.socket.accept()` and the event loops' `connect_accepted_socket` read the socket's `family` and `type`,
which the standard properties convert to enums on every read: some microseconds per connection on Python 3.11,
where each connection of a `Connection: close` client is a request. An accepted socket has its listener's
family and type, so they are plain integers here, read from the listener once.
"""

from __future__ import annotations

import socket


class AcceptedSocket(socket.socket):
    __slots__ = ()

    @property
    def family(self) -> int:  # type: ignore[override]  # an int, as the enum it replaces compares equal to
        return super(socket.socket, self).family  # _socket.socket's own property: the raw int

    @property
    def type(self) -> int:  # type: ignore[override]
        return super(socket.socket, self).type
