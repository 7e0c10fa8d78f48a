"""The HTTP/1.1 plugin is found through the `asgi_core.protocols` entry point, without importing it by name."""

from __future__ import annotations

import asyncio
import importlib.util
from importlib.metadata import entry_points

import asgi_http1
import pytest
from asgi_core import PROTOCOLS_GROUP, Config, ConfigError, Receive, Registry, Scope, Send, ServerContext
from asgi_http1 import PLUGIN, _parsers


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


def test_the_parser_setting_is_checked_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_parsers.PARSER_ENV, raising=False)
    PLUGIN.check_config(Config(http1_parser="h11"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)  # as if httptools were absent
    _parsers._parser_for.cache_clear()
    try:
        with pytest.raises(ConfigError, match="http1_parser: 'httptools'; accepted: auto or h11"):
            PLUGIN.check_config(Config(http1_parser="httptools"))
    finally:
        _parsers._parser_for.cache_clear()


def test_each_server_reads_the_parser_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The plugin chooses the engine once per server (reading the environment costs a microsecond a
    # connection), and a server started after ASGI_HTTP1_PARSER changed gets the parser it now names.
    from asgi_http1._fast_heads import FastHeads
    from asgi_http1._parsers import H11Heads

    def heads_of(protocol: asyncio.Protocol, context: ServerContext) -> object:
        assert isinstance(protocol, asgi_http1.HTTP1Protocol)
        return protocol._engine_factory(context.config)._heads

    async def main() -> None:
        for parser, kind in (("h11", H11Heads), ("httptools", FastHeads), ("h11", H11Heads)):
            monkeypatch.setenv(_parsers.PARSER_ENV, parser)
            context = ServerContext(app=app)
            first = PLUGIN.create_protocol(context)
            monkeypatch.setenv(_parsers.PARSER_ENV, "httptools" if parser == "h11" else "h11")
            later = PLUGIN.create_protocol(context)  # the same server: its choice stands
            assert isinstance(heads_of(first, context), kind)
            assert isinstance(heads_of(later, context), kind)

    asyncio.run(main())
