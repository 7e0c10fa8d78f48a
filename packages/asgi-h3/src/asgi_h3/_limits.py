"""Bounds on what one HTTP/3 connection's peer can make the server hold or do. The counters and the admission of
apps that enforce them are asgi-core's, shared with HTTP/2 (`WindowCounter`, `Admission`)."""

from __future__ import annotations

from dataclasses import dataclass

from asgi_core import check_limits


@dataclass(frozen=True, slots=True)
class H3Limits:
    """Per-connection limits; `None` for a field means "from the server's `Config`" where one applies."""

    #: Request streams the peer may have open at once (QUIC initial_max_streams_bidi); None: the Config's
    #: `http2_max_concurrent_streams`, the same bound as for HTTP/2.
    max_concurrent_streams: int | None = None
    #: Apps of a connection that may wait for a task slot (a reset stream's app runs on for the disconnect
    #: grace, and QUIC frees its stream slot at once): beyond this the peer is flooding and is disconnected.
    max_pending_streams: int = 100
    #: Streams the peer may reset within `reset_window` seconds before the connection is closed
    #: (H3_EXCESSIVE_LOAD): the HTTP/3 form of HTTP/2's Rapid Reset.
    max_resets: int = 200
    reset_window: float = 10.0
    #: The largest decoded request field section, in RFC 9114 section 4.2.2's measure: 431 beyond it.
    max_field_section_size: int = 65536
    #: QUIC's idle timeout (RFC 9000 section 10.1): a connection with no packet for this long is gone.
    idle_timeout: float = 30.0
    #: The QUIC receive windows offered, per stream and for the connection (aioquic doubles them as they fill).
    max_stream_data: int = 256 * 1024
    max_data: int = 1024 * 1024
    #: Seconds a response (or tunnel) stream may wait with no byte acknowledged by the client before it is
    #: reset; None: the Config's `send_timeout`, the same bound as for HTTP/2.
    send_timeout: float | None = None
    #: Validate each client's address with a Retry packet before any connection state is kept (RFC 9000
    #: section 8.1): one more round trip per connection, against floods of Initial packets from spoofed
    #: addresses.
    retry: bool = False

    def __post_init__(self) -> None:
        check_limits(
            self,
            counts=(
                "max_concurrent_streams",
                "max_pending_streams",
                "max_resets",
                "max_field_section_size",
                "max_stream_data",
                "max_data",
            ),
            seconds=("reset_window", "idle_timeout", "send_timeout"),
        )
