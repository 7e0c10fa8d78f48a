"""asgi-h3: HTTP/3 (RFC 9114) over QUIC for ASGI, on aioquic, usable inside any asyncio server.

Registered as the `h3` protocol: a server whose `http_protocols` names it opens a UDP endpoint on each TLS port
and advertises it with `Alt-Svc`. aioquic runs its own TLS, so the certificate goes in as files:

import asyncio
from asgi_core import ServerContext
from asgi_h3 import CertificateFiles, create_server

async def main():
    loop = asyncio.get_running_loop()
    context = ServerContext(app=app, loop=loop)
    await loop.create_datagram_endpoint(
        lambda: create_server(context, CertificateFiles("cert.pem", "key.pem")), local_addr=("127.0.0.1", 8443)
    )
    await asyncio.Event().wait()
"""

from .__about__ import __version__
from ._certs import CERTIFICATE_ATTRIBUTE, CertificateFiles, attach_certificate, ssl_context_hook
from ._limits import H3Limits
from ._plugin import PLUGIN, H3Plugin
from ._protocol import H3Protocol
from ._server import H3Server, create_server

__all__ = [
    "CERTIFICATE_ATTRIBUTE",
    "PLUGIN",
    "CertificateFiles",
    "H3Limits",
    "H3Plugin",
    "H3Protocol",
    "H3Server",
    "__version__",
    "attach_certificate",
    "create_server",
    "ssl_context_hook",
]
