"""Real frameworks served by `gunicorn-asgi`: FastAPI, Starlette, Django and Quart (the apps in examples/)."""

from __future__ import annotations

import httpx

from tests.worker_fixture import EXAMPLES, ServerFactory, serve_fixture  # noqa: F401


def test_fastapi_starlette_django_and_quart_serve_requests(serve: ServerFactory) -> None:
    apps = {
        "fastapi": "fastapi_app:app",
        "starlette": "starlette_app:app",
        "django": "django_app:application",
        "quart": "quart_app:app",
    }
    # Started side by side: most of their start-up time is importing the framework.
    servers = {name: serve(app=app, chdir=EXAMPLES, wait=False) for name, app in apps.items()}
    for server in servers.values():
        server.wait_ready()

    fastapi = servers["fastapi"]
    assert httpx.get(fastapi.url("/items/1")).json() == {"id": "1", "name": "apple", "framework": "fastapi"}
    created = httpx.post(fastapi.url("/items"), json={"name": "pear"})
    assert created.status_code == 200
    assert created.json() == {"created": {"name": "pear"}}
    assert httpx.get(fastapi.url("/items/1?x=1"), headers={"x": "y"}).status_code == 200
    assert httpx.get(fastapi.url("/nowhere")).status_code == 404

    starlette = servers["starlette"]
    assert httpx.get(starlette.url("/")).json() == {"framework": "starlette", "started": True}
    assert httpx.post(starlette.url("/upload"), content=b"z" * 300_000).text == "300000 bytes"
    streamed = httpx.get(starlette.url("/stream"))
    assert streamed.text == "0\n1\n2\n3\n4\n"
    assert streamed.headers["transfer-encoding"] == "chunked"

    django = servers["django"]
    assert httpx.get(django.url("/hello/?q=%C3%A9t%C3%A9")).json() == {
        "framework": "django",
        "path": "/hello/",
        "query": "été",
    }
    assert httpx.post(django.url("/echo/"), content=b"django body").content == b"django body"
    assert httpx.get(django.url("/missing/")).status_code == 404
    # Django does not speak ASGI lifespan: auto mode notices and serves anyway.
    assert "ASGI 'lifespan' protocol appears unsupported" in django.output()

    quart = servers["quart"]
    assert httpx.get(quart.url("/")).json() == {"framework": "quart", "started": True}
    assert httpx.post(quart.url("/echo"), content=b"quart body").content == b"quart body"
