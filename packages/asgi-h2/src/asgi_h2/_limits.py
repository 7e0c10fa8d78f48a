"""Defences against abusive HTTP/2 peers: the limits (the frame-size guard is `_inbound`'s, which reads every
frame header anyway; the counters that enforce the others are asgi-core's `WindowCounter`s, as for HTTP/3).

HTTP/2 lets one connection ask a server for a lot of work for very few bytes. The h2 library caps some of it
(CONTINUATION frames per header block, the decoded header list size); the rest is counted here:

- Rapid Reset (CVE-2023-44487) and its mirror image "MadeYouReset" (CVE-2025-8671): streams opened and then
  reset, by the peer or by us for the peer's errors, or refused for going over the stream limit. Past
  `max_resets` in `reset_window` seconds the connection ends with GOAWAY ENHANCE_YOUR_CALM.
- Control-frame floods (CVE-2019-9512 PING, CVE-2019-9515 SETTINGS, CVE-2019-9516/9518 empty frames, and
  PRIORITY or unknown-extension floods): frames that cost work but carry no request. Past
  `max_control_frames` in `control_window` seconds: ENHANCE_YOUR_CALM. Each PING or SETTINGS also makes us
  queue an acknowledgement; a peer that stops reading while it keeps sending them would grow our write buffer,
  so at most `max_queued_control_frames` are accepted while the connection's write buffer is full.
- Peers that stop taking what we send (a flow-control window left at zero, a socket left unread): past
  `send_timeout` seconds without progress the stream is reset, or the connection aborted (`_stall`).
- Too much work queued behind the stream limit: streams whose handlers cannot start yet (the app is still busy
  with `http2_max_concurrent_streams` earlier ones, reset or not) wait; more than `max_pending_streams` of them
  is abuse as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from asgi_core import check_limits


@dataclass(frozen=True, slots=True)
class H2Limits:
    """Abuse limits of one HTTP/2 connection. The defaults are what the test suite exercises."""

    #: Streams reset by the peer, reset by us because of the peer's errors, or refused, per `reset_window`.
    max_resets: int = 200
    reset_window: float = 30.0
    #: PING, SETTINGS, PRIORITY, unknown-type and empty DATA frames per `control_window`.
    max_control_frames: int = 10_000
    control_window: float = 10.0
    #: PING/SETTINGS frames (each needing an ACK) accepted while our write buffer is over its high-water mark.
    max_queued_control_frames: int = 1000
    #: Streams waiting for a handler slot, beyond the running `http2_max_concurrent_streams`.
    max_pending_streams: int = 100
    #: Seconds a stream may hold data its flow-control windows admit none of, and a connection may stay above
    #: its write high-water mark, before the stream is reset (CANCEL) or the connection aborted; None: the
    #: Config's `send_timeout`, the same bound as for HTTP/3.
    send_timeout: float | None = None

    def __post_init__(self) -> None:
        check_limits(
            self,
            counts=("max_resets", "max_control_frames", "max_queued_control_frames", "max_pending_streams"),
            seconds=("reset_window", "control_window", "send_timeout"),
        )


#: What a connection gets when it is given no limits of its own.
DEFAULT_LIMITS: Final = H2Limits()
