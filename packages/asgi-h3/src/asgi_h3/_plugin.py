"""The registry entry for HTTP/3: a datagram plugin, so that a server opens a UDP endpoint for it."""

from __future__ import annotations

import asyncio
import ssl

from asgi_core import ProxyHeader, ServerContext

from ._server import create_server


class H3Plugin:
    """Serves HTTP/3 on a UDP endpoint beside each TLS listener (`http_protocols = h3,h2,h1`)."""

    name = "h3"
    alpn = ("h3",)

    def create_datagram_protocol(
        self, context: ServerContext, ssl_context: ssl.SSLContext
    ) -> asyncio.DatagramProtocol:
        return create_server(context, ssl_context)

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        """HTTP/3 has no stream (TCP) form: this plugin is served only on datagram endpoints."""
        raise NotImplementedError("HTTP/3 runs over QUIC: serve it with create_datagram_protocol")


PLUGIN = H3Plugin()
