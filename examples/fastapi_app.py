"""FastAPI under gunicorn-asgi: `gunicorn-asgi --chdir examples fastapi_app:app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"items": {"1": "apple"}}  # ASGI lifespan state: every request sees it


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def read_item(item_id: str, request: Request) -> dict[str, Any]:
    return {"id": item_id, "name": request.state.items.get(item_id), "framework": "fastapi"}


@app.post("/items")
async def create_item(item: dict[str, Any]) -> dict[str, Any]:
    return {"created": item}
