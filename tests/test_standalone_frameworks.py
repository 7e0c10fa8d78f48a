"""FastAPI and Starlette apps end to end through the standalone server: `asgi_core.serve` + HTTP1Protocol.

The server runs in a background thread on 127.0.0.1 port 0 and is stopped (lifespan shutdown included) before
each test returns; the client is httpx.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asgi_core
import httpx
import pytest
from asgi_core import ASGIApp, Config, LifespanFailure, serve
from asgi_http1 import HTTP1Protocol
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

TIMEOUT = 5.0


@contextmanager
def serving(app: ASGIApp, config: Config) -> Iterator[str]:
    """Serve `app` from a thread; yield its base URL; stop it (and wait for lifespan shutdown) afterwards."""
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop

        def ready(server: asgi_core.Server) -> None:
            box["url"] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            started.set()

        await serve(app, HTTP1Protocol, port=0, config=config, stop=stop, ready=ready, graceful_timeout=2)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="standalone-server", daemon=True)
    thread.start()
    assert started.wait(TIMEOUT)
    if "error" in box:
        raise box["error"]
    try:
        yield box["url"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "server did not stop"
    if "error" in box:
        raise box["error"]


# ---- FastAPI ------------------------------------------------------------------------------------------------


class Item(BaseModel):
    name: str
    price: float


def fastapi_app(events: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"greeting": "hello from lifespan"}
        events.append("shutdown")

    api = FastAPI(lifespan=lifespan)

    @api.get("/items/{item_id}")
    async def read_item(item_id: int, request: Request, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q, "greeting": request.state.greeting, "root": request.scope["root_path"]}

    @api.post("/items")
    async def create_item(item: Item) -> dict[str, Any]:
        return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2)}

    @api.get("/caf\u00e9")
    async def non_ascii() -> dict[str, str]:
        return {"ok": "caf\u00e9"}

    @api.get("/missing")
    async def missing() -> None:
        raise HTTPException(status_code=404, detail="nothing here")

    @api.get("/crash")
    async def crash() -> None:
        raise RuntimeError("handler failure")

    return api


def test_fastapi_end_to_end() -> None:
    events: list[str] = []
    with serving(fastapi_app(events), Config(lifespan="on")) as url:
        assert events == ["startup"]
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            response = client.get("/items/42", params={"q": "caf\u00e9 & more"})
            assert response.status_code == 200
            assert response.json() == {
                "item_id": 42,
                "q": "caf\u00e9 & more",
                "greeting": "hello from lifespan",
                "root": "",
            }
            created = client.post("/items", json={"name": "widget", "price": 10})
            assert created.json() == {"name": "widget", "price_with_tax": 12.0}
            invalid = client.post("/items", json={"name": "widget"})
            assert invalid.status_code == 422
            assert client.get("/caf%C3%A9").json() == {"ok": "caf\u00e9"}
            missing = client.get("/missing")
            assert (missing.status_code, missing.json()) == (404, {"detail": "nothing here"})
            assert client.get("/crash").status_code == 500
            assert client.get("/items/1").status_code == 200  # the connection survived the failure
    assert events == ["startup", "shutdown"]


@pytest.mark.parametrize("prefix", ["/api", ""], ids=["proxy-kept-prefix", "proxy-stripped-prefix"])
def test_fastapi_behind_a_root_path(prefix: str) -> None:
    with (
        serving(fastapi_app([]), Config(lifespan="on", root_path="/api")) as url,
        httpx.Client(base_url=url, timeout=TIMEOUT) as client,
    ):
        response = client.get(f"{prefix}/items/7")
        assert response.status_code == 200
        assert response.json()["item_id"] == 7
        assert response.json()["root"] == "/api"


# ---- Starlette ----------------------------------------------------------------------------------------------


def starlette_app(events: list[str]) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"hits": [0], "name": "starlette"}
        events.append("shutdown")

    async def count(request: StarletteRequest) -> JSONResponse:
        request.state.hits[0] += 1  # the state dict is copied per request, its values are shared
        return JSONResponse({"hits": request.state.hits[0], "name": request.state.name})

    async def stream(request: StarletteRequest) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for index in range(3):
                yield f"part {index}\n".encode()
                await asyncio.sleep(0.3)

        return StreamingResponse(parts(), media_type="text/plain")

    async def upload(request: StarletteRequest) -> PlainTextResponse:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return PlainTextResponse(f"{size} bytes")

    async def mounted(request: StarletteRequest) -> Response:
        return PlainTextResponse(f"{request.scope['root_path']} {request.url.path}")

    return Starlette(
        routes=[
            Route("/count", count),
            Route("/stream", stream),
            Route("/upload", upload, methods=["POST"]),
            Mount("/sub", routes=[Route("/page", mounted)]),
        ],
        lifespan=lifespan,
    )


def test_starlette_lifespan_state_and_routing() -> None:
    events: list[str] = []
    with serving(starlette_app(events), Config(lifespan="on")) as url:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            assert [client.get("/count").json()["hits"] for _ in range(3)] == [1, 2, 3]
            assert client.get("/count").json()["name"] == "starlette"
            assert client.get("/sub/page").text == "/sub /sub/page"

            def body() -> Iterator[bytes]:
                for _ in range(16):
                    yield b"x" * 65536

            assert client.post("/upload", content=body()).text == f"{16 * 65536} bytes"
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_starlette_streaming_response_arrives_as_it_is_produced() -> None:
    with (
        serving(starlette_app([]), Config(lifespan="on")) as url,
        httpx.Client(base_url=url, timeout=TIMEOUT) as client,
    ):
        started = time.monotonic()
        with client.stream("GET", "/stream") as response:
            assert response.headers["transfer-encoding"] == "chunked"
            arrivals = [(line, time.monotonic() - started) for line in response.iter_lines()]
        assert [line for line, _ in arrivals] == ["part 0", "part 1", "part 2"]
        assert arrivals[0][1] < 0.25, "the first part waited for the rest: the response was buffered"
        assert arrivals[-1][1] >= 0.55


def test_starlette_startup_failure_stops_the_server_before_it_listens() -> None:
    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("database unreachable")
        yield  # pragma: no cover - makes this an async generator

    app = Starlette(lifespan=broken)
    listened: list[bool] = []

    async def main() -> None:
        await serve(
            app, HTTP1Protocol, port=0, config=Config(lifespan="auto"), ready=lambda _s: listened.append(True)
        )

    with pytest.raises(LifespanFailure, match="database unreachable"):
        asyncio.run(main())
    assert listened == []
