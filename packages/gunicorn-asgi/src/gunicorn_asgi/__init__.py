"""A Gunicorn worker serving ASGI apps over HTTP/1.1, WebSocket, HTTP/2 and uWSGI"""

from .__about__ import __version__

__all__ = ["__version__"]
