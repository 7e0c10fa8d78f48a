"""`ServerContext.connections` for a Server: the set of open connections, which tells the acceptor when one
leaves. Interpreted (a subclass of `set`, which mypyc cannot compile as a native class)."""

from __future__ import annotations

from collections.abc import Callable

from ._context import ServerConnection


class ConnectionSet(set[ServerConnection]):
    """Open connections; calls `on_leave` whenever one leaves (a slot under the connection cap frees up)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_leave: Callable[[], None] | None = None

    def discard(self, element: object, /) -> None:
        if element in self:
            super().discard(element)
            if self.on_leave is not None:
                self.on_leave()

    def remove(self, element: ServerConnection, /) -> None:
        super().remove(element)
        if self.on_leave is not None:
            self.on_leave()
