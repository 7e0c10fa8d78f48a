"""asgi-wsproto: WebSocket (RFC 6455, RFC 7692, RFC 8441) for ASGI servers, on wsproto's frame layer.

It plugs into asgi-core's registry as the `websocket` upgrade handler, so an HTTP/1.1 server built on
asgi-http1 (or an HTTP/2 one offering extended CONNECT) serves WebSockets once this package is installed:

    import asyncio
    from asgi_core import serve
    from asgi_http1 import HTTP1Protocol

    asyncio.run(serve(app, HTTP1Protocol, host="127.0.0.1", port=8000))  # finds UPGRADE by entry point
"""

from .__about__ import __version__
from ._protocol import CLOSE_TIMEOUT, WebSocketProtocol
from ._upgrade import UPGRADE, WebSocketUpgrade

__all__ = ["CLOSE_TIMEOUT", "UPGRADE", "WebSocketProtocol", "WebSocketUpgrade", "__version__"]
