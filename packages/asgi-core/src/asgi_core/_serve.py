"""A complete asyncio server around any protocol factory: lifespan, listening, graceful stop.

This is what "usable without Gunicorn" means: `asyncio.run(serve(app, HTTP1Protocol, port=8000))`.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Callable

from ._config import Config
from ._context import ServerContext
from ._lifespan import Lifespan
from ._registry import Registry
from ._types import ASGIApp


async def serve(
    app: ASGIApp,
    protocol_factory: Callable[[ServerContext], asyncio.Protocol],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: Config | None = None,
    ssl_context: ssl.SSLContext | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[asyncio.Server], None] | None = None,
    graceful_timeout: float = 30.0,
) -> None:
    """Serve `app` until `stop` is set (or SIGINT/SIGTERM arrives), then drain and run lifespan shutdown."""
    config = config or Config()
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    lifespan = Lifespan(app, config)
    await lifespan.startup()
    context = ServerContext(app=app, config=config, state=lifespan.state, registry=Registry(), loop=loop)
    server = await loop.create_server(lambda: protocol_factory(context), host, port, ssl=ssl_context)
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or not Unix
            pass
    try:
        if ready is not None:
            ready(server)
        await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        server.close()
        context.drain_connections()
        deadline = loop.time() + graceful_timeout
        # Connections leave the set from protocol callbacks; a short poll is the simplest way to wait.
        while context.connections and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await lifespan.shutdown()
