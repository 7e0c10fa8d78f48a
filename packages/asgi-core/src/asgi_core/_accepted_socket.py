"""The socket object of an accepted connection, made cheaply. Interpreted (it extends `socket.socket`, which
mypyc cannot compile as a native class); `_listener.py` makes them.

`socket.socket.accept()` and the event loops' `connect_accepted_socket` read the socket's `family` and `type`,
which the standard properties convert to enums on every read: some microseconds per connection on Python 3.11,
where each connection of a `Connection: close` client is a request. An accepted socket has its listener's
family and type, so they are plain integers here, and class attributes: read without a call (a property
reading the raw value through `super()` took 130 ns a read, and uvloop reads three times a connection).
"""

from __future__ import annotations

import functools
import socket


class AcceptedSocket(socket.socket):
    """A socket whose `family` and `type` are the integers of its class (see `accepted_socket_class`)."""

    __slots__ = ()
    family: int  # type: ignore[assignment]  # an int, as the enum it replaces compares equal to
    type: int  # type: ignore[assignment]


@functools.cache
def accepted_socket_class(family: int, kind: int) -> type[AcceptedSocket]:
    """The class of the sockets accepted from a listener of this family and type (one per pair)."""
    return type("AcceptedSocket", (AcceptedSocket,), {"__slots__": (), "family": family, "type": kind})
