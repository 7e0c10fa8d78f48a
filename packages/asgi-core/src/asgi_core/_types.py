"""ASGI type aliases shared by every package."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Header list as ASGI carries it: lower-cased names, raw bytes, order and duplicates kept.
Headers = list[tuple[bytes, bytes]]
#: A (host, port) pair; for Unix sockets the port is None and host is the path.
Address = tuple[str, "int | None"]
