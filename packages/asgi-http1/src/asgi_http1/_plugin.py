"""The registry entry for HTTP/1.1, so a server can find this protocol by name without importing it."""

from __future__ import annotations

import asyncio

from asgi_core import ProxyHeader, ServerContext

from ._protocol import HTTP1Protocol


class HTTP1Plugin:
    name: str = "http"
    alpn: tuple[str, ...] = ("http/1.1",)  # annotated: a bare tuple[str] would not match ProtocolPlugin

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        return HTTP1Protocol(context, proxy=proxy)


PLUGIN = HTTP1Plugin()
