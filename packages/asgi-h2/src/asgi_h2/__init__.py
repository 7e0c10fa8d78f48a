"""HTTP/2 (RFC 9113) for ASGI servers on h2, over TLS with ALPN and cleartext h2c"""

from .__about__ import __version__

__all__ = ["__version__"]
