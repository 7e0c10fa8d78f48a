"""Per-request work around the app: Gunicorn's `pre_request` hook and the `max_requests` count.

Both must happen when a request starts, before its response: the request that reaches `max_requests` starts
the worker's drain, so that its own response already says `Connection: close`. The wrapper is only put in
place when one of them is configured; otherwise the app is called directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgi_core import ASGIApp, Receive, Scope, Send

from ._access_log import RequestView

_REQUEST_TYPES = frozenset({"http", "websocket"})


def wrap_app(
    app: ASGIApp,
    *,
    worker: Any,
    pre_request: Callable[[Any, Any], None] | None,
    on_request: Callable[[], None] | None,
) -> ASGIApp:
    if pre_request is None and on_request is None:
        return app

    async def app_with_hooks(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in _REQUEST_TYPES:
            # Only HTTP requests count towards max_requests, as with Gunicorn's own workers: a WebSocket
            # reaching the limit would otherwise be closed (1012) as soon as it is accepted.
            if on_request is not None and scope["type"] == "http":
                on_request()
            if pre_request is not None:
                try:
                    pre_request(worker, RequestView.from_scope(scope))
                except Exception:
                    worker.log.exception("Exception in pre_request hook")
        await app(scope, receive, send)

    return app_with_hooks
