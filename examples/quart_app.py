"""Quart under gunicorn-asgi: `gunicorn-asgi --chdir examples quart_app:app`."""

from typing import Any

from quart import Quart, request

app = Quart(__name__)
started: dict[str, bool] = {}


@app.before_serving
async def startup() -> None:
    started["yes"] = True


@app.get("/")
async def index() -> dict[str, Any]:
    return {"framework": "quart", "started": started.get("yes", False)}


@app.post("/echo")
async def echo() -> bytes:
    return await request.get_data()
