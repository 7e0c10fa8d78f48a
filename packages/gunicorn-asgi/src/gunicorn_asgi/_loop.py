"""The event loop a worker runs on (`asgi_loop`: auto, asyncio or uvloop), built by a loop factory."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._errors import StartupError

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def loop_factory(name: str) -> tuple[str, LoopFactory]:
    """(the loop's name, its factory) for an `asgi_loop` value. `auto` is uvloop when it is installed."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop  # noqa: PLC0415 - optional dependency
        except ImportError:
            if name == "uvloop":
                raise StartupError(
                    "asgi_loop (--asgi-loop) is 'uvloop' but uvloop is not installed; install "
                    "'gunicorn-asgi[uvloop]', or use --asgi-loop auto or asyncio"
                ) from None
            return "asyncio", asyncio.new_event_loop
        return "uvloop", uvloop.new_event_loop
    if name == "asyncio":
        return "asyncio", asyncio.new_event_loop
    raise StartupError(f"invalid value for asgi_loop (--asgi-loop): {name!r}; accepted: auto, asyncio, uvloop")


def run(main: Coroutine[Any, Any, T], factory: LoopFactory) -> T:
    """Run `main` to completion on a new loop from `factory`, then close the loop cleanly."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)
    return _run_without_runner(main, factory)  # pragma: no cover - Python 3.10


def _run_without_runner(main: Coroutine[Any, Any, T], factory: LoopFactory) -> T:  # pragma: no cover
    # Python 3.10 has no asyncio.Runner: the same steps by hand, in the same order.
    loop = factory()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
