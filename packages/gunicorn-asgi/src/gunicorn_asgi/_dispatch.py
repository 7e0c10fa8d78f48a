"""Which protocol serves a connection: the `protocol` setting, ALPN over TLS, or the h2c preface.

Protocols come from the asgi-core registry by name ("http", "h2", "uwsgi", or a third party's), so a protocol
package that gets installed is served without a change here. When the choice depends on the connection
(ALPN, a cleartext HTTP/2 preface), a small chooser protocol takes the connection first and then hands the
transport over explicitly: `set_protocol`, `connection_made`, and the bytes it already read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgi_core import ConnectionInfo, ProtocolPlugin, ProxyHeader, Registry, ServerContext, peer_is_trusted

from ._config_map import setting
from ._errors import StartupError

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: `http_protocols` entries (Gunicorn's vocabulary) -> registry protocol names.
_HTTP_PROTOCOLS = {"h1": "http", "h2": "h2"}
_BAD_PREFACE_BODY = b"This port expects HTTP/2 with prior knowledge\n"
_BAD_PREFACE = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_BAD_PREFACE_BODY), _BAD_PREFACE_BODY)
)


@dataclass
class ProtocolPlan:
    """What the worker speaks, decided once at startup from the settings and the installed protocols."""

    default: ProtocolPlugin
    #: ALPN identifiers offered over TLS, most preferred first, and the protocol each one selects.
    alpn: tuple[str, ...] = ()
    by_alpn: dict[str, ProtocolPlugin] = field(default_factory=dict)
    #: The protocol for connections opening with the HTTP/2 preface (h2c prior knowledge), if enabled.
    prior_knowledge: ProtocolPlugin | None = None
    prior_knowledge_only: bool = False
    #: The cleartext HTTP/2 mode that applies, for asgi_core.Config.http2_cleartext.
    h2c: str = "off"

    def describe(self) -> str:
        names = [self.default.name, *(p.name for p in self.by_alpn.values() if p is not self.default)]
        text = ", ".join(dict.fromkeys(names))
        if self.h2c != "off":
            text += f" (h2c: {self.h2c})"
        return text


def plan_protocols(cfg: Any, registry: Registry, *, tls: bool, warn: Callable[[str], None]) -> ProtocolPlan:
    name = setting(cfg, "protocol", "http") or "http"
    default = _require(registry, name, "protocol (--protocol)")
    wanted = list(setting(cfg, "http_protocols", ["h1"]) or ["h1"])
    h2c = setting(cfg, "http2_cleartext", "off") or "off"
    if name != "http":
        if wanted != ["h1"] or h2c != "off":
            warn(f"http_protocols and http2_cleartext do not apply to --protocol {name}: ignored")
        return ProtocolPlan(default=default)
    plugins = [
        default if entry == "h1" else _require(registry, _HTTP_PROTOCOLS.get(entry, entry), "http_protocols")
        for entry in wanted
    ]
    by_alpn: dict[str, ProtocolPlugin] = {}
    for plugin in plugins:
        for alpn_id in plugin.alpn:
            by_alpn.setdefault(alpn_id, plugin)
    plan = ProtocolPlan(default=default, alpn=tuple(by_alpn), by_alpn=by_alpn)
    if h2c == "off":
        return plan
    h2 = next((plugin for plugin in plugins if plugin.name == "h2"), None)
    if tls:
        warn("http2_cleartext does not apply with TLS (HTTP/2 is negotiated by ALPN there): ignored")
    elif h2 is None:
        warn("http2_cleartext is set but http_protocols does not include h2: cleartext HTTP/2 stays off")
    else:
        plan.h2c = h2c
        if h2c in ("prior-knowledge", "both"):
            plan.prior_knowledge = h2
            plan.prior_knowledge_only = h2c == "prior-knowledge"
    return plan


def _require(registry: Registry, name: str, where: str) -> ProtocolPlugin:
    plugin = registry.protocol(name)
    if plugin is not None:
        return plugin
    hint = " (install 'gunicorn-asgi[http2]')" if name == "h2" else ""
    broken = f"; failed to load: {registry.errors[name]}" if name in registry.errors else ""
    installed = ", ".join(registry.protocol_names()) or "none"
    raise StartupError(
        f"{where} asks for protocol {name!r}, which is not installed{hint}{broken}; installed: {installed}"
    )


class Dispatcher:
    def __init__(self, plan: ProtocolPlan, context: ServerContext) -> None:
        self.plan = plan
        self.context = context

    def protocol_factory(self, *, tls: bool) -> Callable[[ProxyHeader | None], asyncio.Protocol]:
        """The factory for a listener's connections: the protocol itself when nothing needs choosing."""
        needs_choice = (
            len(set(map(id, self.plan.by_alpn.values()))) > 1 if tls else bool(self.plan.prior_knowledge)
        )
        if needs_choice:
            return lambda proxy: _Chooser(self, proxy)
        default, context = self.plan.default, self.context
        return lambda proxy: default.create_protocol(context, proxy)


class _Chooser(asyncio.Protocol):
    """Holds a connection until its protocol is known, then hands it over with the bytes it has read."""

    def __init__(self, dispatcher: Dispatcher, proxy: ProxyHeader | None) -> None:
        self._dispatcher = dispatcher
        self._proxy = proxy
        self._context = dispatcher.context
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._sniffing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        plan = self._dispatcher.plan
        tls = transport.get_extra_info("ssl_object")
        if tls is not None:
            self._switch(plan.by_alpn.get(tls.selected_alpn_protocol() or "", plan.default))
            return
        client = ConnectionInfo.from_transport(transport, self._proxy).client  # type: ignore[arg-type]
        if not peer_is_trusted(self._context.config, client):
            self._switch(plan.default)  # h2c only for trusted peers; everyone else gets plain HTTP/1.x
            return
        self._sniffing = True
        self._context.connections.add(self)
        timeout = self._context.config.header_timeout
        if timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(timeout, self.shutdown)

    def data_received(self, data: bytes) -> None:
        plan = self._dispatcher.plan
        self._buffer += data
        seen = min(len(self._buffer), len(H2_PREFACE))
        if self._buffer[:seen] != H2_PREFACE[:seen]:
            if plan.prior_knowledge_only:
                self._refuse()
            else:
                self._switch(plan.default)
        elif seen == len(H2_PREFACE) and plan.prior_knowledge is not None:
            self._switch(plan.prior_knowledge)

    def eof_received(self) -> bool:
        self.shutdown()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_sniffing()

    # ServerConnection: a connection still being sniffed has nothing in flight.
    def shutdown(self) -> None:
        self._stop_sniffing()
        if self._transport is not None:
            self._transport.close()

    def going_away(self) -> None:
        self.shutdown()

    def _refuse(self) -> None:
        if self._transport is not None:
            self._transport.write(_BAD_PREFACE)
        self.shutdown()

    def _stop_sniffing(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sniffing:
            self._sniffing = False
            self._context.connections.discard(self)

    def _switch(self, plugin: ProtocolPlugin) -> None:
        self._stop_sniffing()
        transport = self._transport
        assert transport is not None  # noqa: S101 - only called after connection_made
        protocol = plugin.create_protocol(self._context, self._proxy)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        data, self._buffer = self._buffer, b""
        if data and not transport.is_closing():
            protocol.data_received(data)
