"""Exceptions raised to apps. A module of its own so that it stays interpreted when the hot modules are compiled
(mypyc cannot compile subclasses of OSError as native classes)."""

from __future__ import annotations


class ClientDisconnected(OSError):
    """Raised by `send` once the client is gone, as the ASGI spec asks (a subclass of OSError)."""
