"""Cleartext HTTP/2: `Upgrade: h2c` from HTTP/1.1 (RFC 7540 section 3.2) and the prior-knowledge policy.

Both are off by default and only ever for trusted peers (`Config.http2_cleartext`, `forwarded_allow_ips`):
cleartext HTTP/2 is meant for a proxy in front of the server, not for the open internet. RFC 9113 deprecates
the upgrade; it is kept for the clients and proxies that still use it. A request that does not qualify is not
an error: HTTP/1.1 simply serves it as it is, as the upgrade is optional for a server.
"""

from __future__ import annotations

import asyncio

from asgi_core import Address, Config, ServerContext, UpgradeRequest, peer_is_trusted

from ._protocol import H2Protocol
from ._settings import decode_settings_header

_UPGRADE_MODES = ("upgrade", "both")
_PRIOR_KNOWLEDGE_MODES = ("prior-knowledge", "both")


def prior_knowledge_allowed(config: Config, client: Address | None) -> bool:
    """Whether a cleartext connection from `client` that opens with the HTTP/2 preface may be served as h2c."""
    return config.http2_cleartext in _PRIOR_KNOWLEDGE_MODES and peer_is_trusted(config, client)


class H2CUpgrade:
    """The `asgi_core.upgrades` handler for `Upgrade: h2c`: answers 101 and serves the request on stream 1."""

    token = "h2c"  # noqa: S105 - an HTTP Upgrade token, not a secret

    def accepts(self, request: UpgradeRequest) -> bool:
        config = request.config
        if config is None or config.http2_cleartext not in _UPGRADE_MODES:
            return False
        if request.conn.tls is not None or request.http_version != "1.1":
            return False  # over TLS, HTTP/2 is chosen by ALPN; h2c must not be offered there (RFC 7540 3.2)
        if not peer_is_trusted(config, request.conn.client):
            return False
        settings: list[bytes] = []
        options: set[bytes] = set()
        for name, value in request.headers:
            if name == b"http2-settings":
                settings.append(value)
            elif name == b"connection":
                options.update(option.strip().lower() for option in value.split(b","))
            elif name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
                return False  # a request body would sit between the 101 and the preface: serve it as HTTP/1.1
        return (
            len(settings) == 1
            and decode_settings_header(settings[0]) is not None
            and {b"upgrade", b"http2-settings"} <= options
        )

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        return H2Protocol(context, upgrade=request, proxy=request.proxy)


H2C_UPGRADE = H2CUpgrade()
