"""WebSocket through a real `gunicorn-asgi` master: the Starlette echo from docs/how-to/websocket.md served as
it is, and the close code an open WebSocket gets when the worker stops (1001) or recycles (1012)."""

from __future__ import annotations

import signal

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.worker_fixture import EXAMPLES, ServerFactory, serve_fixture  # noqa: F401


def test_docs_starlette_echo_is_served_as_is(serve: ServerFactory) -> None:
    server = serve(app="starlette_websocket:app", chdir=EXAMPLES, wait=False)
    server.wait_for_output("Booting worker")
    with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10) as websocket:
        for text in ("hello", "héllo wörld", "x" * 70_000):
            websocket.send(text)
            assert websocket.recv(timeout=5) == text


@pytest.mark.parametrize(("how", "code"), [("stop", 1001), ("recycle", 1012)])
def test_open_websockets_get_the_shutdown_close_code(serve: ServerFactory, how: str, code: int) -> None:
    args = ("--max-requests", "1") if how == "recycle" else ()
    server = serve(*args, app="starlette_websocket:app", chdir=EXAMPLES, wait=False)
    server.wait_for_output("Booting worker")
    with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10) as websocket:
        websocket.send("before")
        assert websocket.recv(timeout=5) == "before"
        if how == "stop":
            server.proc.send_signal(signal.SIGTERM)
        else:
            # One HTTP request reaches max_requests=1: the worker drains and a new one replaces it.
            server.get("/")
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
