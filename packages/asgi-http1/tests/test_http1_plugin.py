"""The HTTP/1.1 plugin is found through the `asgi_core.protocols` entry point, without importing it by name."""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points

import asgi_http1
from asgi_core import PROTOCOLS_GROUP, Receive, Registry, Scope, Send, ServerContext


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("never called")


def test_entry_point_is_declared() -> None:
    (entry,) = [ep for ep in entry_points(group=PROTOCOLS_GROUP) if ep.name == "http"]
    assert entry.value == "asgi_http1:PLUGIN"


def test_registry_discovers_the_http_plugin() -> None:
    registry = Registry()
    assert "http" in registry.protocol_names()
    plugin = registry.protocol("http")
    assert plugin is not None
    assert plugin is asgi_http1.PLUGIN
    assert plugin.name == "http"
    assert "http/1.1" in plugin.alpn
    assert "http" not in registry.errors

    async def main() -> None:
        protocol = plugin.create_protocol(ServerContext(app=app))
        assert isinstance(protocol, asgi_http1.HTTP1Protocol)

    asyncio.run(main())
