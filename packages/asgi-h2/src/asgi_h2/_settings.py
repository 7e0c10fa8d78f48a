"""An h2 server connection set up from asgi-core's Config: our SETTINGS, and the limits h2 enforces for us."""

from __future__ import annotations

import base64
import binascii
from typing import Final

from asgi_core import Config, Headers
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes, Settings

from ._closed_streams import ClosedStreams
from ._hpack import RepeatAwareDecoder, ResponseEncoder

#: RFC 9113 section 6.9.2: the window every stream and the connection start with.
DEFAULT_WINDOW = 65535
#: The connection's receive window is this many stream windows, so that one stream whose app reads slowly
#: cannot stall the uploads of the others, while a connection still buffers a bounded amount of request body.
CONNECTION_WINDOW_STREAMS = 4
_MAX_WINDOW = 2**31 - 1
#: How many closed streams a connection remembers, at least and per stream it may have open (see
#: `closed_streams_remembered`).
CLOSED_STREAMS_FLOOR: Final = 1024
CLOSED_STREAMS_PER_OPEN: Final = 4


class _LocalSettings(Settings):
    """Our settings as advertised, with h2's own concurrent-stream check lifted.

    h2 answers a HEADERS frame over SETTINGS_MAX_CONCURRENT_STREAMS with a connection error; RFC 9113 section
    5.1.2 allows (and clients expect) a stream error, REFUSED_STREAM, which a client can safely retry. The
    protocol counts streams itself and refuses the extra ones; the advertised value is unchanged (the SETTINGS
    frame reads the stored values, not this property).
    """

    @property
    def max_concurrent_streams(self) -> int:
        return _MAX_WINDOW

    @max_concurrent_streams.setter
    def max_concurrent_streams(self, value: int) -> None:
        self[SettingCodes.MAX_CONCURRENT_STREAMS] = value


def new_connection(config: Config, *, connect_protocol: bool) -> H2Connection:
    """A server-side h2 connection carrying our settings; call `initiate_connection` (or the upgrade) next,
    then `send_initial_settings`."""
    # Headers are ours to check both ways, in one pass each, where h2 chains a generator per rule: outbound,
    # `_headers.fields` lowercases names, drops connection-specific fields and refuses what HTTP/2 forbids
    # before anything is queued; inbound, `_headers.parse_request` and `check_trailers` do section 8.2 and
    # 8.3's checks (and join cookies) while reading the fields anyway.
    conn = H2Connection(
        H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
    )
    window = config.http2_initial_window_size
    # Values that only widen what the peer may do are safe to apply before the peer acknowledges them, so they
    # go in the first SETTINGS frame as current values. A window *smaller* than the default is sent afterwards
    # (`send_initial_settings`) and takes effect on the ACK, as RFC 9113 section 6.9.2 requires.
    conn.local_settings = _LocalSettings(
        client=False,
        initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: config.http2_max_concurrent_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: max(window, DEFAULT_WINDOW),
            SettingCodes.MAX_FRAME_SIZE: config.http2_max_frame_size,
            SettingCodes.MAX_HEADER_LIST_SIZE: config.http2_max_header_list_size,
            SettingCodes.ENABLE_CONNECT_PROTOCOL: int(connect_protocol),
        },
    )
    # Duck-typed for hpack's Encoder: h2 only calls `encode` and sets `header_table_size`.
    conn.encoder = ResponseEncoder()  # type: ignore[assignment]
    conn.decoder = RepeatAwareDecoder()
    conn.max_inbound_frame_size = config.http2_max_frame_size
    conn._closed_streams = ClosedStreams(closed_streams_remembered(config))  # type: ignore[assignment]  # noqa: SLF001
    # The HPACK decoder enforces the header list size while decoding (the defence against HPACK bombs).
    conn.decoder.max_header_list_size = config.http2_max_header_list_size
    return conn


def closed_streams_remembered(config: Config) -> int:
    """How many closed streams h2 keeps the end of (by END_STREAM or by RST_STREAM) on one connection.

    h2 remembers the last 65,536 (`H2Connection.MAX_CLOSED_STREAMS`, in `_closed_streams`) so that a frame the peer sent before it
    learnt of a stream's end gets the answer RFC 9113 section 5.1 gives (a RST_STREAM after a reset, not a
    connection error). At about 120 bytes an entry in an `OrderedDict`, a long-lived connection (a proxy's, a
    load balancer's) fills that to some 8 MB, and the garbage collector's full passes walk all of it: 18 ms
    pauses with eight such connections ten seconds into a load test. A frame can only be in flight for a stream that was open, in the
    peer's view, when the peer sent it, alongside fewer than SETTINGS_MAX_CONCURRENT_STREAMS others, so a
    few times that many closures cover every frame a client keeping to our limit can have in flight; a client
    past it (its first flight, before our SETTINGS arrive) is covered by the floor. A frame for a stream older
    than that ends the connection, as h2 does past its own 65,536.
    """
    per_open = CLOSED_STREAMS_PER_OPEN * config.http2_max_concurrent_streams
    return min(H2Connection.MAX_CLOSED_STREAMS, max(CLOSED_STREAMS_FLOOR, per_open))


def send_initial_settings(conn: H2Connection, config: Config) -> None:
    window = config.http2_initial_window_size
    if window < DEFAULT_WINDOW:
        conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: window})
    connection_window = min(window * CONNECTION_WINDOW_STREAMS, _MAX_WINDOW)
    if connection_window > DEFAULT_WINDOW:
        conn.increment_flow_control_window(connection_window - DEFAULT_WINDOW)


def decode_settings_header(value: bytes) -> bytes | None:
    """The SETTINGS payload of an `HTTP2-Settings` field (base64url, padding optional), or None if malformed."""
    try:
        payload = base64.b64decode(value + b"=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return payload if len(payload) % 6 == 0 else None  # six bytes per setting, RFC 9113 section 6.5.1


def upgrade_settings(headers: Headers) -> bytes:
    """The upgrading request's HTTP2-Settings, re-encoded with the padding h2's decoder insists on."""
    for name, value in headers:
        if name == b"http2-settings":
            payload = decode_settings_header(value)
            return base64.urlsafe_b64encode(payload) if payload else b""
    return b""
