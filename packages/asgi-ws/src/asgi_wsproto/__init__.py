"""WebSocket (RFC 6455) for ASGI servers on wsproto"""

from .__about__ import __version__

__all__ = ["__version__"]
