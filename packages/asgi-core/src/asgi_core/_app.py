"""What can be known about an application before its first request."""

from __future__ import annotations

import inspect


def app_problem(app: object) -> str | None:
    """Why `app` cannot be an ASGI 3 application, when that is certain before the first request; else None."""
    if not callable(app):
        return f"the application object {app!r} is not callable"
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(None, None, None)
    except TypeError:
        try:
            signature.bind(None, None)
        except TypeError:
            return None
        return f"{app!r} looks like a WSGI application (it takes environ, start_response); serve it with a WSGI server"
    return None
