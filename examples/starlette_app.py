"""Starlette under gunicorn-asgi: `gunicorn-asgi --chdir examples starlette_app:app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route


async def homepage(request: Request) -> JSONResponse:
    return JSONResponse({"framework": "starlette", "started": request.state.started})


async def upload(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse(f"{len(body)} bytes")


async def stream(request: Request) -> StreamingResponse:
    async def numbers() -> AsyncIterator[bytes]:
        for n in range(5):
            yield f"{n}\n".encode()

    return StreamingResponse(numbers(), media_type="text/plain")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"started": True}


app = Starlette(
    routes=[Route("/", homepage), Route("/upload", upload, methods=["POST"]), Route("/stream", stream)],
    lifespan=lifespan,
)
