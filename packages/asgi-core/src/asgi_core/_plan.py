"""What a server speaks: the protocol plugins it serves, decided once at startup.

A connection is served by the configured protocol (`protocol`: "http", "uwsgi", a third party's), or, for
HTTP, by the one its TLS handshake chose by ALPN among `http_protocols`, or by the HTTP/2 plugin when a
trusted cleartext peer opens with its preface (`Config.http2_cleartext`). Plugins come from the registry by
name, so a protocol package that gets installed is served without a change here or in any server.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._config import Config
from ._errors import ConfigError
from ._registry import ProtocolPlugin, Registry

if TYPE_CHECKING:
    from ._context import ServerContext

#: `http_protocols` entries (Gunicorn's vocabulary) -> registry protocol names.
_HTTP_PROTOCOLS = {"h1": "http", "h2": "h2"}
_INSTALL_HINTS = {"h2": " (pip install asgi-h2; gunicorn-asgi installs it)"}


@runtime_checkable
class Recognizing(Protocol):
    """A plugin that can tell its own connections by their first bytes (HTTP/2's client preface)."""

    def recognizes(self, data: bytes) -> bool | None:
        """True: these first bytes are mine; False: they are not; None: too few bytes to tell."""


@runtime_checkable
class DatagramPlugin(Protocol):
    """A protocol served on datagram (UDP) endpoints beside a server's stream sockets, such as HTTP/3 on QUIC.

    Named in `http_protocols` like any HTTP version (`h3`); the server then opens a datagram socket on the address
    of each of its TLS stream sockets (same port, `SO_REUSEPORT`, so every worker has its own) and serves it with
    the protocol made here. The protocol registers each of its connections in `context.connections`, so the
    server counts and drains them like the others.
    """

    name: str
    alpn: tuple[str, ...]

    def create_datagram_protocol(
        self, context: ServerContext, ssl_context: ssl.SSLContext
    ) -> asyncio.DatagramProtocol: ...


@dataclass
class ProtocolPlan:
    """The protocols of one server, and how a connection's is picked."""

    default: ProtocolPlugin
    #: ALPN identifiers offered over TLS, most preferred first, and the protocol each one selects.
    alpn: tuple[str, ...] = ()
    by_alpn: dict[str, ProtocolPlugin] = field(default_factory=dict)
    #: The plugin for trusted cleartext connections that open with its preface (h2c prior knowledge), if enabled.
    prior_knowledge: ProtocolPlugin | None = None
    #: Only prior-knowledge connections are served: every other connection goes to that plugin too, which
    #: refuses it in its own protocol.
    prior_knowledge_only: bool = False
    #: Protocols served on datagram endpoints beside the stream sockets (HTTP/3), TLS only.
    datagram: tuple[DatagramPlugin, ...] = ()
    #: The cleartext HTTP/2 mode that applies (it needs h2 enabled and no TLS), for `Config.http2_cleartext`.
    h2c: str = "off"

    def needs_choice(self, *, tls: bool) -> bool:
        """Whether a connection's protocol depends on the connection (else the default serves it directly)."""
        if tls:
            return len({id(plugin) for plugin in self.by_alpn.values()}) > 1
        return self.prior_knowledge is not None

    def describe(self) -> str:
        names = [self.default.name, *(p.name for p in self.by_alpn.values() if p is not self.default)]
        names += [plugin.name for plugin in self.datagram]
        text = ", ".join(dict.fromkeys(names))
        if self.h2c != "off":
            text += f" (h2c: {self.h2c})"
        return text


def plan_protocols(
    registry: Registry, config: Config, *, tls: bool, logger: logging.Logger | None = None
) -> ProtocolPlan:
    """The plan for `config.protocol`, `http_protocols` and `http2_cleartext`; a protocol that is not installed
    is a `ConfigError` naming the setting that asked for it."""
    log = logger or logging.getLogger("asgi_core.error")
    protocol, http_protocols, http2_cleartext = config.protocol, config.http_protocols, config.http2_cleartext
    default = _require(registry, protocol, "protocol", config)
    if isinstance(default, DatagramPlugin):
        raise ConfigError("protocol", protocol, f"a stream protocol; serve {protocol} with http_protocols instead")
    wanted = list(http_protocols) or ["h1"]
    if protocol != "http":
        if wanted != ["h1"] or http2_cleartext != "off":
            log.warning("http_protocols and http2_cleartext do not apply to protocol %s: ignored", protocol)
        return ProtocolPlan(default=default)
    found = [
        default
        if entry == "h1"
        else _require(registry, _HTTP_PROTOCOLS.get(entry, entry), "http_protocols", config)
        for entry in wanted
    ]
    datagram = tuple(plugin for plugin in found if isinstance(plugin, DatagramPlugin))
    if datagram and not tls:
        raise ConfigError("http_protocols", ",".join(wanted), f"{datagram[0].name} only with TLS (a certificate)")
    plugins = [plugin for plugin in found if not isinstance(plugin, DatagramPlugin)]
    by_alpn: dict[str, ProtocolPlugin] = {}
    for plugin in plugins:
        for alpn_id in plugin.alpn:
            by_alpn.setdefault(alpn_id, plugin)
    plan = ProtocolPlan(default=default, alpn=tuple(by_alpn), by_alpn=by_alpn, datagram=datagram)
    if http2_cleartext == "off":
        return plan
    h2 = next((plugin for plugin in plugins if plugin.name == "h2"), None)
    if tls:
        log.warning("http2_cleartext does not apply with TLS (HTTP/2 is negotiated by ALPN there): ignored")
    elif h2 is None:
        log.warning("http2_cleartext is set but http_protocols does not include h2: cleartext HTTP/2 stays off")
    else:
        plan.h2c = http2_cleartext
        if http2_cleartext in ("prior-knowledge", "both"):
            if not isinstance(h2, Recognizing):
                raise ConfigError("http2_cleartext", http2_cleartext, "'upgrade' or 'off' with this h2 plugin")
            plan.prior_knowledge = h2
            plan.prior_knowledge_only = http2_cleartext == "prior-knowledge"
    return plan


def _require(registry: Registry, name: str, setting: str, config: Config) -> ProtocolPlugin:
    plugin = registry.protocol(name)
    if plugin is not None:
        check = getattr(plugin, "check_config", None)
        if check is not None:
            check(config)  # a plugin's own settings, checked at startup rather than at the first connection
        return plugin
    broken = f"; {name!r} failed to load: {registry.errors[name]}" if name in registry.errors else ""
    installed = ", ".join(registry.protocol_names()) or "none"
    raise ConfigError(
        setting,
        name,
        f"an installed protocol ({installed}); {name!r} is not installed{_INSTALL_HINTS.get(name, '')}{broken}",
    )
