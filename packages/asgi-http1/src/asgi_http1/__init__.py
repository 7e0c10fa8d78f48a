"""asgi-http1: HTTP/1.1 for ASGI on h11, usable by itself inside any asyncio server.

import asyncio
from asgi_core import serve
from asgi_http1 import HTTP1Protocol

asyncio.run(serve(app, HTTP1Protocol, host="127.0.0.1", port=8000))
"""

from .__about__ import __version__
from ._plugin import PLUGIN, HTTP1Plugin
from ._protocol import HTTP1Protocol

__all__ = ["PLUGIN", "HTTP1Plugin", "HTTP1Protocol", "__version__"]
