"""Protocol plugins and upgrade handlers, discovered by entry point and loaded lazily.

A package that speaks a protocol declares an entry point; the server asks for it by name (`--protocol`, an
ALPN id, an `Upgrade:` token) and only then imports it. One broken plugin is reported and skipped, never
breaking the others. Programmatic registration serves embedders and tests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Protocol

from ._config import Config
from ._connection import ConnectionInfo
from ._proxy import ProxyHeader
from ._types import Headers

if TYPE_CHECKING:
    from ._context import ServerContext

PROTOCOLS_GROUP = "asgi_core.protocols"
UPGRADES_GROUP = "asgi_core.upgrades"


class ProtocolPlugin(Protocol):
    """A wire protocol a server can speak on a connection from its first byte."""

    name: str
    #: ALPN identifiers this protocol answers to over TLS (`h2`, `http/1.1`); empty for none.
    alpn: tuple[str, ...]

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        """A protocol for one new connection; `proxy` carries its addresses (a PROXY header's, or those its
        server accepted it with, see `ProxyHeader`), which the protocol's `ConnectionInfo` takes
        (`ConnectionInfo.from_transport(t, proxy)`).

        A plugin may also define `check_config(config)`, which the server calls at startup and which raises
        `ConfigError` for settings the plugin cannot honour (a parser that is not installed)."""


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """An HTTP/1.1 request asking to switch protocols, with everything the new protocol needs to go on."""

    method: str
    target: bytes
    http_version: str
    headers: Headers
    conn: ConnectionInfo
    #: Bytes the client sent after the request head, which now belong to the new protocol.
    leftover: bytes
    #: The server's settings, for handlers whose answer depends on them (h2c is off unless configured).
    config: Config | None = None
    #: What the connection's addresses came from (its PROXY header, or the acceptor's `accept()` result): a
    #: protocol that takes over the whole connection, as h2c does, builds its own `ConnectionInfo` from it, as
    #: `conn` has the request's `X-Forwarded-*` applied.
    proxy: ProxyHeader | None = None


class UpgradeHandler(Protocol):
    """Takes over a connection from HTTP/1.1 when a request carries `Upgrade: <token>`.

    The same handler serves a protocol tunnelled in one HTTP/2 stream (extended CONNECT, RFC 8441): then the
    request's `http_version` is "2", the method is CONNECT, and the transport handed to `connection_made` is
    a `StreamTransport`, on which the handshake is answered with `send_head` rather than raw bytes.
    """

    token: str

    def accepts(self, request: UpgradeRequest) -> bool:
        """Whether this request is one the handler can serve (else HTTP/1.1 answers it as plain HTTP)."""

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        """The protocol that continues the connection; `connection_made` is called on it next."""


class Registry:
    def __init__(self, *, discover: bool = True, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("asgi_core.error")
        self._protocol_eps: dict[str, EntryPoint] = {}
        self._upgrade_eps: dict[str, EntryPoint] = {}
        self._protocols: dict[str, ProtocolPlugin] = {}
        self._upgrades: dict[str, UpgradeHandler] = {}
        self.errors: dict[str, str] = {}
        if discover:
            self._protocol_eps = {ep.name: ep for ep in entry_points(group=PROTOCOLS_GROUP)}
            self._upgrade_eps = {ep.name.lower(): ep for ep in entry_points(group=UPGRADES_GROUP)}

    def add_protocol(self, plugin: ProtocolPlugin) -> None:
        self._protocols[plugin.name] = plugin

    def add_upgrade(self, handler: UpgradeHandler) -> None:
        self._upgrades[handler.token.lower()] = handler

    def protocol_names(self) -> list[str]:
        return sorted(set(self._protocols) | set(self._protocol_eps))

    def protocol(self, name: str) -> ProtocolPlugin | None:
        if name not in self._protocols and name in self._protocol_eps:
            plugin = self._load(self._protocol_eps.pop(name))
            if plugin is not None:
                self._protocols[name] = plugin  # type: ignore[assignment]
        return self._protocols.get(name)

    def upgrade(self, token: str) -> UpgradeHandler | None:
        token = token.lower()
        if token not in self._upgrades and token in self._upgrade_eps:
            handler = self._load(self._upgrade_eps.pop(token))
            if handler is not None:
                self._upgrades[token] = handler  # type: ignore[assignment]
        return self._upgrades.get(token)

    def upgrade_tokens(self) -> list[str]:
        return sorted(set(self._upgrades) | set(self._upgrade_eps))

    def _load(self, entry_point: EntryPoint) -> object | None:
        try:
            loaded: object = entry_point.load()
            return loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break discovery of the others
            message = f"{type(exc).__name__}: {exc}"
            self.errors[entry_point.name] = message
            self._logger.warning("could not load plugin %r (%s): %s", entry_point.name, entry_point.value, message)
            return None
