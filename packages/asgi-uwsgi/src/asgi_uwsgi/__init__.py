"""asgi-uwsgi: the uWSGI binary protocol for ASGI servers behind nginx `uwsgi_pass`.

import asyncio
from asgi_core import serve
from asgi_uwsgi import PLUGIN

asyncio.run(serve(app, PLUGIN.create_protocol, host="127.0.0.1", port=8000))

The packet parser is sans-IO and usable alone: `UwsgiParser`, its events `Request`, `Body`, `EndOfRequest`,
the signals `NEED_DATA` and `CLOSED`, and `ParseError` (`ModifierRefused` for a `modifier1` it was not told
to accept); `encode_packet` builds packets for clients and tests.
"""

from .__about__ import __version__
from ._packet import (
    MAX_VARS_SIZE,
    Body,
    EndOfRequest,
    ModifierRefused,
    ParseError,
    Request,
    encode_packet,
    encode_vars,
)
from ._parser import CLOSED, NEED_DATA, Signal, UwsgiParser, parse_vars
from ._plugin import PLUGIN, UwsgiPlugin
from ._protocol import UwsgiProtocol

__all__ = [
    "CLOSED",
    "MAX_VARS_SIZE",
    "NEED_DATA",
    "PLUGIN",
    "Body",
    "EndOfRequest",
    "ModifierRefused",
    "ParseError",
    "Request",
    "Signal",
    "UwsgiParser",
    "UwsgiPlugin",
    "UwsgiProtocol",
    "__version__",
    "encode_packet",
    "encode_vars",
    "parse_vars",
]
