"""The event loop a server runs on (auto, asyncio or uvloop), built by a loop factory and run to completion.

asgi_core.run(asgi_core.serve(app), loop_factory("auto")[1])   # on uvloop when it is installed
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._errors import ConfigError

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")
LOOPS = ("auto", "asyncio", "uvloop")


def loop_factory(name: str) -> tuple[str, LoopFactory]:
    """(the loop's name, its factory) for `auto`, `asyncio` or `uvloop`; `auto` is uvloop when it is installed.
    A name that is not one of them, or uvloop when it is not installed, is a `ConfigError` for setting `loop`."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - optional dependency
        except ImportError:
            if name == "uvloop":
                raise ConfigError(
                    "loop", name, "auto or asyncio, as uvloop is not installed (pip install uvloop)"
                ) from None
            return "asyncio", asyncio.new_event_loop
        return "uvloop", uvloop.new_event_loop
    if name == "asyncio":
        return "asyncio", asyncio.new_event_loop
    raise ConfigError("loop", name, ", ".join(LOOPS))


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
