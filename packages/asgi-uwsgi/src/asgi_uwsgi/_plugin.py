"""The registry entry for uWSGI, so a server finds this protocol by name (`--protocol uwsgi`) without importing
it first."""

from __future__ import annotations

import asyncio

from asgi_core import ProxyHeader, ServerContext

from ._protocol import UwsgiProtocol


class UwsgiPlugin:
    name = "uwsgi"
    alpn: tuple[str, ...] = ()  # uWSGI is never negotiated over TLS: the front end is chosen by configuration

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        return UwsgiProtocol(context, proxy=proxy)


PLUGIN = UwsgiPlugin()
