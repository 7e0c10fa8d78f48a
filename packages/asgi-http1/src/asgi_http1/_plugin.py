"""The registry entry for HTTP/1.1, so a server can find this protocol by name without importing it."""

from __future__ import annotations

import asyncio

from asgi_core import Config, ConfigError, ProxyHeader, ServerContext

from ._engine import EngineFactory, select_engine
from ._parsers import select_parser
from ._protocol import HTTP1Protocol


class HTTP1Plugin:
    name: str = "http"
    alpn: tuple[str, ...] = ("http/1.1",)  # annotated: a bare tuple[str] would not match ProtocolPlugin

    def __init__(self) -> None:
        # The engine chosen for the last server seen: choosing reads the environment, a microsecond a
        # connection. One tuple, replaced whole, so servers in other threads never see half of it.
        self._chosen: tuple[ServerContext | None, EngineFactory | None] = (None, None)

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        chosen_for, engines = self._chosen
        if chosen_for is not context or engines is None:
            engines = select_engine(None, context.config.http1_parser)
            self._chosen = (context, engines)
        return HTTP1Protocol(context, proxy=proxy, engines=engines)

    def check_config(self, config: Config) -> None:
        """At startup: the parser `config.http1_parser` asks for is there (httptools is optional)."""
        try:
            select_parser(None, config.http1_parser)
        except ImportError:
            raise ConfigError(
                "http1_parser", config.http1_parser, "auto or h11, as httptools is not installed"
            ) from None


PLUGIN = HTTP1Plugin()
