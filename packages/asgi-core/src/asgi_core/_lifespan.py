"""The ASGI lifespan protocol: startup before serving, shutdown on every exit path, shared `state`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ._config import Config
from ._scope import ASGI_VERSION
from ._types import ASGIApp, Message


class LifespanFailure(Exception):
    """Startup or shutdown failed. The server must stop, not retry: a restart would fail the same way."""


class Lifespan:
    """Runs the app's lifespan task. `await startup()` before accepting connections, `await shutdown()` after.

    `state` is the dict the app fills during startup; give it to `ServerContext.state` so each request's scope
    gets a shallow copy. It is `None` when lifespan is off or the app does not support it.
    """

    def __init__(self, app: ASGIApp, config: Config, logger: logging.Logger | None = None) -> None:
        self._app = app
        self._config = config
        self._logger = logger or logging.getLogger("asgi_core.error")
        self._state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._startup_done: asyncio.Future[Message] | None = None
        self._shutdown_done: asyncio.Future[Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self._supported = False

    @property
    def state(self) -> dict[str, Any] | None:
        return self._state if self._supported else None

    async def startup(self) -> None:
        if self._config.lifespan == "off":
            return
        loop = asyncio.get_running_loop()
        self._startup_done = loop.create_future()
        self._shutdown_done = loop.create_future()
        self._task = loop.create_task(self._main())
        await self._to_app.put({"type": "lifespan.startup"})
        timeout = self._config.lifespan_startup_timeout
        try:
            message = await asyncio.wait_for(asyncio.shield(self._startup_done), timeout)
        except asyncio.TimeoutError:
            self._task.cancel()
            raise LifespanFailure(
                f"ASGI lifespan startup did not complete within {timeout} s (setting lifespan_startup_timeout)"
            ) from None
        except _Unsupported as exc:
            if self._config.lifespan == "on":
                raise LifespanFailure(
                    f"the application does not support the ASGI lifespan protocol ({exc}), and lifespan is "
                    "'on'; use 'auto' or 'off' to serve it anyway"
                ) from None
            self._logger.info("ASGI 'lifespan' protocol appears unsupported; continuing without it")
            return
        if message["type"] == "lifespan.startup.failed":
            reason = message.get("message") or "no reason given"
            raise LifespanFailure(f"ASGI lifespan startup failed: {reason}")
        self._supported = True

    async def shutdown(self) -> None:
        if not self._supported or self._task is None or self._shutdown_done is None:
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        timeout = self._config.lifespan_shutdown_timeout
        try:
            message = await asyncio.wait_for(asyncio.shield(self._shutdown_done), timeout)
        except asyncio.TimeoutError:
            self._task.cancel()
            raise LifespanFailure(
                f"ASGI lifespan shutdown did not complete within {timeout} s (setting lifespan_shutdown_timeout)"
            ) from None
        except _Unsupported as exc:
            raise LifespanFailure(f"ASGI lifespan shutdown failed: {exc}") from None
        if message["type"] == "lifespan.shutdown.failed":
            raise LifespanFailure(f"ASGI lifespan shutdown failed: {message.get('message') or 'no reason'}")

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self._state}
        try:
            await self._app(scope, self._receive, self._send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            if self._supported or (self._startup_done is not None and self._startup_done.done()):
                self._logger.exception("Exception in ASGI lifespan", exc_info=exc)
            self._fail(_Unsupported(f"{type(exc).__name__}: {exc}"))
        else:
            self._fail(_Unsupported("the lifespan task returned without answering"))

    def _fail(self, exc: Exception) -> None:
        for waiter in (self._startup_done, self._shutdown_done):
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
                exc = _Unsupported(str(exc))  # one exception object per future
        # Nobody may await the shutdown future if the server stops early; mark it retrieved.
        if self._shutdown_done is not None and self._shutdown_done.done():
            self._shutdown_done.exception()

    async def _receive(self) -> Message:
        return await self._to_app.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            waiter = self._startup_done
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            waiter = self._shutdown_done
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")
        if waiter is None or waiter.done():
            raise RuntimeError(f"ASGI lifespan message {kind!r} sent out of order")
        waiter.set_result(message)


class _Unsupported(Exception):
    pass
