"""asgi-core: the ASGI engine shared by the gunicorn-asgi protocol packages.

Protocols know bytes; this package knows ASGI. A protocol package turns its wire events into calls on the
pieces exported here: `ConnectionInfo` and the scope builders, a `RequestCycle` per HTTP request against its
own `ResponseWriter`, `FlowControl` over a `Transport`, and the `Registry` to find sibling protocols.
"""

from .__about__ import __version__
from ._app import app_problem
from ._config import Config, describe_settings, parse_networks, parse_setting
from ._connection import ConnectionInfo, apply_forwarded, peer_in, peer_is_trusted
from ._context import AccessRecord, CertificateFiles, ServerConnection, ServerContext
from ._cycle import RequestCycle, ResponseState
from ._dates import http_date
from ._deadline import Deadline, DeadlineQueue
from ._errors import ClientDisconnected, ConfigError, HeadRejected, InvalidMessage, PeerError
from ._fields import FIELD_VCHAR, TCHAR, content_length, has_control_character, is_field_value, is_token
from ._lifespan import Lifespan, LifespanFailure
from ._loop import LOOPS, LoopFactory, loop_factory, run
from ._messages import validate_headers
from ._multiplex import (
    Admission,
    WindowCounter,
    check_limits,
    cut_streams,
    require_tunnel_answer,
    stream_cycle,
    tunnel_takes,
    tunnel_upgrade,
)
from ._plan import DatagramPlugin, ProtocolPlan, plan_protocols
from ._proxy import ProxyHeader, ProxyHeaderError, ProxyPeek, parse_proxy_header
from ._registry import (
    PROTOCOLS_GROUP,
    UPGRADES_GROUP,
    ProtocolPlugin,
    Registry,
    UpgradeHandler,
    UpgradeRequest,
)
from ._request_state import RequestState
from ._response_writer import ResponseWriter
from ._responses import REASONS, error_response, reason_phrase
from ._scope import ASGI_VERSION, build_http_scope, build_websocket_scope, decode_path, split_target
from ._serve import serve
from ._server import Server, listen
from ._stream_fields import (
    CONNECTION_SPECIFIC,
    RequestHead,
    StreamResponse,
    informational_head,
    is_head_request,
    request_head,
    response_fields,
    response_head,
)
from ._tls import tls_extension
from ._transport import FlowControl, StreamTransport, Transport, close_now
from ._tunnel_inbox import TunnelInbox
from ._types import Address, ASGIApp, Headers, Message, Receive, Scope, Send
from ._wakeup import Wakeup

__all__ = [
    "ASGI_VERSION",
    "CONNECTION_SPECIFIC",
    "FIELD_VCHAR",
    "LOOPS",
    "PROTOCOLS_GROUP",
    "REASONS",
    "TCHAR",
    "UPGRADES_GROUP",
    "ASGIApp",
    "AccessRecord",
    "Address",
    "Admission",
    "CertificateFiles",
    "ClientDisconnected",
    "Config",
    "ConfigError",
    "ConnectionInfo",
    "DatagramPlugin",
    "Deadline",
    "DeadlineQueue",
    "FlowControl",
    "HeadRejected",
    "Headers",
    "InvalidMessage",
    "Lifespan",
    "LifespanFailure",
    "LoopFactory",
    "Message",
    "PeerError",
    "ProtocolPlan",
    "ProtocolPlugin",
    "ProxyHeader",
    "ProxyHeaderError",
    "ProxyPeek",
    "Receive",
    "Registry",
    "RequestCycle",
    "RequestHead",
    "RequestState",
    "ResponseState",
    "ResponseWriter",
    "Scope",
    "Send",
    "Server",
    "ServerConnection",
    "ServerContext",
    "StreamResponse",
    "StreamTransport",
    "Transport",
    "TunnelInbox",
    "UpgradeHandler",
    "UpgradeRequest",
    "Wakeup",
    "WindowCounter",
    "__version__",
    "app_problem",
    "apply_forwarded",
    "build_http_scope",
    "build_websocket_scope",
    "check_limits",
    "close_now",
    "content_length",
    "cut_streams",
    "decode_path",
    "describe_settings",
    "error_response",
    "has_control_character",
    "http_date",
    "informational_head",
    "is_field_value",
    "is_head_request",
    "is_token",
    "listen",
    "loop_factory",
    "parse_networks",
    "parse_proxy_header",
    "parse_setting",
    "peer_in",
    "peer_is_trusted",
    "plan_protocols",
    "reason_phrase",
    "request_head",
    "require_tunnel_answer",
    "response_fields",
    "response_head",
    "run",
    "serve",
    "split_target",
    "stream_cycle",
    "tls_extension",
    "tunnel_takes",
    "tunnel_upgrade",
    "validate_headers",
]
