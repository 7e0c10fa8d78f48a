"""Lifespan: auto/on/off, state, failures reported so the server stops instead of boot-looping, timeouts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from asgi_core import Config, Lifespan, LifespanFailure, Receive, Scope, Send


class LifespanApp:
    """A configurable app: answers lifespan events as told and records what it saw."""

    def __init__(
        self,
        *,
        startup: str = "complete",
        shutdown: str = "complete",
        state: dict[str, Any] | None = None,
        message: str = "",
    ) -> None:
        self.startup, self.shutdown, self.state, self.message = startup, shutdown, state or {}, message
        self.seen: list[str] = []
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        if scope["type"] != "lifespan":
            raise RuntimeError("only lifespan here")
        while True:
            event = await receive()
            kind = event["type"].split(".")[1]
            self.seen.append(event["type"])
            behaviour = getattr(self, kind)
            if kind == "startup":
                scope["state"].update(self.state)
            if behaviour == "raise":
                raise RuntimeError(f"{kind} exploded")
            if behaviour == "hang":
                await asyncio.sleep(30)
            if behaviour == "return":
                return
            suffix = "failed" if behaviour == "failed" else "complete"
            reply: dict[str, Any] = {"type": f"{event['type']}.{suffix}"}
            if self.message:
                reply["message"] = self.message
            await send(reply)
            if kind == "shutdown":
                return


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http", "this app knows nothing of lifespan"


def run(lifespan: Lifespan, *steps: str) -> None:
    async def main() -> None:
        for step in steps:
            await asyncio.wait_for(getattr(lifespan, step)(), 5)

    asyncio.run(main())


def test_startup_and_shutdown_with_state() -> None:
    app = LifespanApp(state={"pool": "ready"})
    lifespan = Lifespan(app, Config())
    run(lifespan, "startup", "shutdown")
    assert app.seen == ["lifespan.startup", "lifespan.shutdown"]
    assert lifespan.state == {"pool": "ready"}
    assert app.scopes[0]["asgi"]["version"] == "3.0"
    assert app.scopes[0]["state"] is lifespan.state  # the app fills the dict the server hands to requests


def test_off_never_calls_the_app() -> None:
    app = LifespanApp()
    lifespan = Lifespan(app, Config(lifespan="off"))
    run(lifespan, "startup", "shutdown")
    assert app.scopes == []
    assert lifespan.state is None


def test_auto_tolerates_an_app_without_lifespan(caplog: pytest.LogCaptureFixture) -> None:
    lifespan = Lifespan(no_lifespan, Config(lifespan="auto"))
    with caplog.at_level(logging.INFO, "asgi_core.error"):
        run(lifespan, "startup", "shutdown")
    assert lifespan.state is None
    assert "unsupported" in caplog.text
    assert "Traceback" not in caplog.text  # not supporting lifespan is not an error


def test_auto_treats_a_startup_exception_as_unsupported() -> None:
    lifespan = Lifespan(LifespanApp(startup="raise"), Config(lifespan="auto"))
    run(lifespan, "startup", "shutdown")
    assert lifespan.state is None


def test_on_requires_lifespan_support() -> None:
    lifespan = Lifespan(no_lifespan, Config(lifespan="on"))
    with pytest.raises(LifespanFailure, match="lifespan is 'on'") as info:
        run(lifespan, "startup")
    assert "AssertionError" in str(info.value)
    with pytest.raises(LifespanFailure, match="startup exploded"):
        run(Lifespan(LifespanApp(startup="raise"), Config(lifespan="on")), "startup")


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failed_message_is_reported(mode: str) -> None:
    app = LifespanApp(startup="failed", message="database unreachable")
    with pytest.raises(LifespanFailure, match="startup failed: database unreachable"):
        run(Lifespan(app, Config(lifespan=mode)), "startup")
    with pytest.raises(LifespanFailure, match="no reason given"):
        run(Lifespan(LifespanApp(startup="failed"), Config(lifespan=mode)), "startup")


def test_startup_timeout_names_the_setting() -> None:
    lifespan = Lifespan(LifespanApp(startup="hang"), Config(lifespan_startup_timeout=0.05))
    with pytest.raises(LifespanFailure, match="lifespan_startup_timeout"):
        run(lifespan, "startup")


def test_shutdown_timeout_names_the_setting() -> None:
    lifespan = Lifespan(LifespanApp(shutdown="hang"), Config(lifespan_shutdown_timeout=0.05))
    with pytest.raises(LifespanFailure, match="lifespan_shutdown_timeout"):
        run(lifespan, "startup", "shutdown")


def test_shutdown_failures(caplog: pytest.LogCaptureFixture) -> None:
    failed = Lifespan(LifespanApp(shutdown="failed", message="flush failed"), Config())
    with pytest.raises(LifespanFailure, match="shutdown failed: flush failed"):
        run(failed, "startup", "shutdown")
    raising = Lifespan(LifespanApp(shutdown="raise"), Config())
    with caplog.at_level(logging.ERROR, "asgi_core.error"), pytest.raises(LifespanFailure, match="exploded"):
        run(raising, "startup", "shutdown")
    assert "Exception in ASGI lifespan" in caplog.text  # after a good startup an exception is a real error
    returned = Lifespan(LifespanApp(shutdown="return"), Config())
    with pytest.raises(LifespanFailure, match="returned without answering"):
        run(returned, "startup", "shutdown")


def test_out_of_order_messages_are_errors() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.startup.complete"})

    lifespan = Lifespan(app, Config(lifespan="on"))
    with pytest.raises(LifespanFailure, match="out of order"):
        run(lifespan, "startup", "shutdown")

    async def unknown(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.bogus"})

    with pytest.raises(LifespanFailure, match=r"lifespan\.bogus"):
        run(Lifespan(unknown, Config(lifespan="on")), "startup")
