"""The registry entry for HTTP/1.1, so a server can find this protocol by name without importing it."""

from __future__ import annotations

import asyncio

from asgi_core import ServerContext

from ._protocol import HTTP1Protocol


class HTTP1Plugin:
    name = "http"
    alpn = ("http/1.1",)

    def create_protocol(self, context: ServerContext) -> asyncio.Protocol:
        return HTTP1Protocol(context)


PLUGIN = HTTP1Plugin()
