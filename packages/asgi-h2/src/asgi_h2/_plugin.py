"""The registry entry for HTTP/2, and the test a dispatcher uses to recognise a prior-knowledge connection."""

from __future__ import annotations

import asyncio

from asgi_core import ProxyHeader, ServerContext

from ._preface import PREFACE
from ._protocol import H2Protocol


class H2Plugin:
    """Serves HTTP/2 from a connection's first byte: TLS connections whose ALPN chose `h2`, and cleartext ones
    that open with the preface (the server decides which cleartext peers may: `prior_knowledge_allowed`)."""

    name = "h2"
    alpn = ("h2",)

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        return H2Protocol(context, proxy=proxy)

    def recognizes(self, data: bytes) -> bool | None:
        """Whether a cleartext connection opening with `data` is HTTP/2 with prior knowledge: the first line of
        the preface (`PRI * HTTP/2.0`) decides, so that a connection which starts it but then sends something
        else is refused by HTTP/2 itself (GOAWAY PROTOCOL_ERROR), not answered as HTTP/1.1."""
        head = bytes(data[:_PREFACE_LINE])
        if PREFACE[: len(head)] != head:
            return False
        return True if len(head) == _PREFACE_LINE else None


PLUGIN = H2Plugin()
#: `PRI * HTTP/2.0\r\n`: no HTTP/1.x request starts like it.
_PREFACE_LINE = 16


def is_h2_preface(data: bytes) -> bool | None:
    """Whether the first bytes of a connection are the HTTP/2 client preface: True once all 24 bytes match,
    False as soon as one differs (it is some other protocol), None while they are a matching prefix (read
    more). No HTTP/1.1 request starts like it, so the answer is certain after the first few bytes."""
    head = bytes(data[: len(PREFACE)])
    if PREFACE[: len(head)] != head:
        return False
    return True if len(head) == len(PREFACE) else None
