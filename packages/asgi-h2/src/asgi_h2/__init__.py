"""asgi-h2: HTTP/2 (RFC 9113) for ASGI on h2, usable by itself inside any asyncio server.

import asyncio, ssl
from asgi_core import serve
from asgi_h2 import H2Protocol

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain("cert.pem", "key.pem")
context.set_alpn_protocols(["h2"])
asyncio.run(serve(app, H2Protocol, host="127.0.0.1", port=8443, ssl_context=context))
"""

from .__about__ import __version__
from ._limits import H2Limits
from ._plugin import PLUGIN, H2Plugin, is_h2_preface
from ._preface import PREFACE
from ._protocol import H2Protocol
from ._upgrade import H2C_UPGRADE, H2CUpgrade, prior_knowledge_allowed

__all__ = [
    "H2C_UPGRADE",
    "PLUGIN",
    "PREFACE",
    "H2CUpgrade",
    "H2Limits",
    "H2Plugin",
    "H2Protocol",
    "__version__",
    "is_h2_preface",
    "prior_knowledge_allowed",
]
