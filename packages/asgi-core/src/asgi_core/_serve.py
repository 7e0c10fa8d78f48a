"""A complete server in one call: lifespan, listening, the `Server`, graceful stop on SIGINT/SIGTERM.

This is what "usable without Gunicorn" means: `asyncio.run(serve(app, config=Config(http_protocols=("h2", "h1"))))`
serves every protocol installed (HTTP/1.1, WebSocket, HTTP/2, ...) with the same serving layer as the worker.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Sequence

from ._app import app_problem
from ._config import Config
from ._context import ServerContext
from ._lifespan import Lifespan
from ._proxy import ProxyHeader
from ._registry import Registry
from ._server import Server, listen
from ._types import ASGIApp

ProtocolFactory = Callable[..., asyncio.Protocol]


async def serve(
    app: ASGIApp,
    protocol_factory: ProtocolFactory | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    sockets: Sequence[socket.socket] | None = None,
    config: Config | None = None,
    ssl_context: ssl.SSLContext | None = None,
    registry: Registry | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[Server], None] | None = None,
    graceful_timeout: float = 30.0,
    logger: logging.Logger | None = None,
) -> None:
    """Serve `app` until `stop` is set (or SIGINT/SIGTERM arrives), then drain and run lifespan shutdown.

    Connections speak `config.protocol` and `config.http_protocols`, found in the registry (every installed
    protocol package). `protocol_factory` instead makes every connection's protocol itself (a protocol class
    such as `HTTP1Protocol`, or a plugin's `create_protocol`): it is served as `config.protocol`. `sockets` are
    listening sockets to serve instead of binding `host:port`; `ready` is called with the running `Server`
    (its `sockets` say where it listens).
    """
    problem = app_problem(app)
    if problem:
        raise TypeError(problem)
    config = config or Config()
    registry = registry if registry is not None else Registry(logger=logger)
    if protocol_factory is not None:
        registry.add_protocol(_FactoryPlugin(config.protocol, protocol_factory))
    # The server checks its settings (and that its protocols are installed) before the app starts up.
    server = Server(app, config, registry=registry, ssl_context=ssl_context, logger=logger)
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    lifespan = Lifespan(app, config)
    await lifespan.startup()
    server.context.state = lifespan.state
    listening = list(sockets) if sockets is not None else [listen(host, port)]
    handled = []
    try:
        await server.start(listening)
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
                handled.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or not Unix
                pass
        if ready is not None:
            ready(server)
        await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await server.shutdown(graceful_timeout)
        if sockets is None:
            for sock in listening:
                sock.close()
        await lifespan.shutdown()


class _FactoryPlugin:
    """A protocol factory given to `serve()`, served under a registry name like any installed plugin."""

    alpn: tuple[str, ...] = ()

    def __init__(self, name: str, factory: ProtocolFactory) -> None:
        self.name = name
        self.factory = factory
        self._takes_proxy = _takes_keyword(factory, "proxy")

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        if proxy is None or not (proxy.length or self._takes_proxy):
            # No PROXY header (`length` 0: the addresses and socket the server accepted the connection with),
            # and a factory written for `factory(context)`: it is called so; the protocol asks its socket.
            return self.factory(context)
        return self.factory(context, proxy=proxy)


def _takes_keyword(factory: ProtocolFactory, name: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): called the plain way
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
