"""HTTP/2 connections: h2 events in, one asgi-core request cycle (or an RFC 8441 tunnel) per stream out.

Connection lifecycle (`_lifecycle`): SERVING (streams come and go; with none open, the keep-alive timer runs)
-> WARNED (a first GOAWAY and a PING: the client stops opening streams, the ones in flight still arrive) ->
DRAINING (a second GOAWAY named the last stream we serve; the streams up to it finish, later ones are
refused) -> CLOSED once no stream is left. `going_away`, a protocol error, an exhausted abuse limit or the
idle timer go straight to CLOSED with a GOAWAY. The peer's GOAWAY or a lost transport end every stream at
once: each cycle sees `http.disconnect`.

Stream admission: a stream over SETTINGS_MAX_CONCURRENT_STREAMS is refused (RST_STREAM REFUSED_STREAM, which
the client may retry); an admitted request's app starts when a task slot is free (asgi-core's `Admission`,
as for HTTP/3). What each kind of stream is made of is in `_streams`; moving their data onto the wire, and the
send deadline, in `_sender`.

Hot module: this code runs for every frame (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final

from asgi_core import (
    Admission,
    ConnectionInfo,
    Deadline,
    FlowControl,
    HeadRejected,
    ProxyHeader,
    ServerContext,
    Transport,
    UpgradeRequest,
    WindowCounter,
    apply_forwarded,
    cut_streams,
    is_head_request,
)
from h2 import events as ev
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes

from ._errors import FrameTooLarge, MalformedRequest
from ._headers import check_trailers, parse_request
from ._inbound import InboundFrames
from ._lifecycle import (
    DRAIN_PING,
    DRAIN_PING_TIMEOUT,
    MAX_STREAM_ID,
    ConnectionState,
    goaway,
)
from ._limits import DEFAULT_LIMITS, H2Limits
from ._preface import PREFACE, PrefaceCheck
from ._request import RequestStream
from ._sender import Sender
from ._settings import new_connection, send_initial_settings, upgrade_settings
from ._stream import OutboundStream
from ._streams import open_tunnel, reply_status, request_stream, upgrade_stream
from ._tunnel import TunnelStream

_SWITCHING: Final = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"


class H2Protocol(asyncio.Protocol):
    """An `asyncio.Protocol` serving ASGI over HTTP/2 (TLS with ALPN `h2`, or cleartext by prior knowledge).

    One per connection: `H2Protocol(context)`. `upgrade` is the HTTP/1.1 request that asked for `h2c`; it is
    answered with 101 and served on stream 1.
    """

    transport: Transport
    flow: FlowControl
    sender: Sender

    def __init__(
        self,
        context: ServerContext,
        *,
        limits: H2Limits = DEFAULT_LIMITS,
        upgrade: UpgradeRequest | None = None,
        proxy: ProxyHeader | None = None,
    ) -> None:
        self.context = context
        self.config = context.config
        self._proxy = proxy
        self.limits = limits
        self.send_timeout = self.config.send_timeout if limits.send_timeout is None else limits.send_timeout
        self.streams: dict[int, OutboundStream] = {}
        self._upgrade = upgrade
        self._loop = context.loop or asyncio.get_running_loop()
        self._admission = Admission(
            self._loop,
            context.logger,
            self.config.http2_max_concurrent_streams,
            self.limits.max_pending_streams,
            "HTTP/2",
        )
        self._resets = WindowCounter(self.limits.max_resets, self.limits.reset_window)
        self._control = WindowCounter(self.limits.max_control_frames, self.limits.control_window)
        self._queued_control = 0
        self._idle = Deadline(self._loop, self._on_idle)
        self._drain_ping: Deadline | None = None
        self._state: ConnectionState = ConnectionState.SERVING
        self._tunnels = False
        #: Until the client's preface is complete (then None).
        self._preface: PrefaceCheck | None = PrefaceCheck()
        self._conn_info: ConnectionInfo

    # ---- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.flow = FlowControl(self.transport)
        self._conn_info = ConnectionInfo.from_transport(self.transport, self._proxy)
        set_limits = getattr(transport, "set_write_buffer_limits", None)
        if set_limits is not None:
            set_limits(high=self.config.write_buffer_high_water)
        registry = self.context.registry
        self._tunnels = registry is not None and registry.upgrade("websocket") is not None
        self.conn = conn = new_connection(self.config, connect_protocol=self._tunnels)
        self.sender = Sender(
            self, self._loop, self._conn_info.client, forget=self._forget, abort=self._abort_unread
        )
        limit = self.config.http2_max_frame_size
        self._inbound = InboundFrames(
            conn, limit, skip=len(PREFACE), to_h2=self.receive_h2, new_request=self._new_request
        )
        self.context.connections.add(self)
        upgrade = self._upgrade
        if upgrade is not None:
            self.transport.write(_SWITCHING)
            conn.initiate_upgrade_connection(upgrade_settings(upgrade.headers))
        else:
            conn.initiate_connection()
        send_initial_settings(conn, self.config)
        self.sender.flush()
        if upgrade is not None:
            self._admit(upgrade_stream(self, upgrade))
        else:
            # Until its first request a client gets the head timeout, as on HTTP/1.1; between requests the
            # keep-alive timeout applies.
            self._arm_idle(self.config.header_timeout or self.config.keep_alive_timeout)
        if self.context.draining:
            self.shutdown()

    def data_received(self, data: bytes) -> None:
        if self._state is ConnectionState.CLOSED:
            return
        preface = self._preface
        if preface is not None:
            if not preface.matches(data):
                self._fail(ErrorCodes.PROTOCOL_ERROR, b"invalid connection preface")
                return
            if preface.complete:
                self._preface = None
        try:
            self._inbound.receive(data)
        except FrameTooLarge:
            self._fail(ErrorCodes.FRAME_SIZE_ERROR, b"frame larger than SETTINGS_MAX_FRAME_SIZE")
            return
        except ProtocolError as exc:
            # h2 has queued a GOAWAY with the matching error code; send it and close.
            self.context.logger.debug("HTTP/2 protocol error from %s: %s", self._conn_info.client, exc)
            self.sender.flush()
            self._close()
            return
        if self._state is ConnectionState.CLOSED:  # type: ignore[comparison-overlap]  # mypy cannot see a handler close it
            return
        self.sender.pump()
        self.sender.flush()

    def receive_h2(self, data: bytes) -> bool:
        """Frames for h2 (`_inbound`), and what its events mean here; False once the connection is closed.
        Raises h2's `ProtocolError`."""
        for event in self.conn.receive_data(data):
            handler = _HANDLERS.get(type(event))
            if handler is not None:  # the events not listed need nothing from us
                handler(self, event)
                if self._state is ConnectionState.CLOSED:
                    return False
        return True

    def eof_received(self) -> bool:
        return False  # the peer is done sending: nothing more can arrive, so close

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = ConnectionState.CLOSED
        self._stop_timers()
        self.sender.connection_lost()
        self.context.connections.discard(self)
        self.flow.connection_lost()
        self._admission.clear()
        cut_streams(self.streams)

    def pause_writing(self) -> None:
        # The slow-reader rule: while the peer has not read what we queued, read nothing more from it. New
        # streams, PINGs and SETTINGS would each make us queue more (and start more apps); kept unread, they
        # hold the peer back instead, through TCP. A peer that never reads meets the send deadline.
        self.flow.pause_writing()
        self.flow.pause_reading("write")
        self.sender.writes_paused()

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        self.flow.resume_reading("write")
        self.sender.writes_resumed()
        self._queued_control = 0
        self.sender.schedule()

    # ---- ServerConnection ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Graceful close in two GOAWAY steps (`_lifecycle`): the client stops opening streams, every stream it
        opened before it knew is served, and the connection closes once none is left."""
        if self._state is not ConnectionState.SERVING:
            return
        self._state = ConnectionState.WARNED
        self._idle.cancel()  # the drain PING's deadline drives the connection now
        self.sender.flush()  # what h2 holds goes first; the GOAWAY frame itself is written past it
        self.transport.write(goaway(MAX_STREAM_ID))
        self.conn.ping(DRAIN_PING)
        self.sender.flush()
        self._drain_ping = Deadline(self._loop, self._last_goaway)
        self._drain_ping.arm(DRAIN_PING_TIMEOUT)

    def _last_goaway(self) -> None:
        """The client has seen the first GOAWAY: name the last stream served; close if none is open."""
        if self._state is not ConnectionState.WARNED:
            return
        self._state = ConnectionState.DRAINING
        if self._drain_ping is not None:
            self._drain_ping.close()
        self.sender.flush()
        self.transport.write(goaway(self.conn.highest_inbound_stream_id))
        self._close_if_done()

    def going_away(self) -> None:
        """The drain is over: streams still open are reset (their apps see `http.disconnect`), the last GOAWAY
        goes out and the connection closes. A stream whose app never started is refused, so its client may
        retry it; the others are cancelled."""
        if self._state is ConnectionState.CLOSED:
            return
        for stream in list(self.streams.values()):
            waiting = isinstance(stream, RequestStream) and self._waiting(stream)
            stream.reset(ErrorCodes.REFUSED_STREAM if waiting else ErrorCodes.CANCEL)
            stream.cut()  # a stream that had ended its side but waited for the peer's
        self.sender.flush()
        if not self.transport.is_closing():
            self.transport.write(goaway(self.conn.highest_inbound_stream_id))
        self._close()

    # ---- for the streams -----------------------------------------------------------------------------

    def reset_stream(self, stream_id: int, error_code: ErrorCodes) -> None:
        if self._state is ConnectionState.CLOSED:
            return
        with contextlib.suppress(ProtocolError):  # already closed in h2: nothing to cut
            self.conn.reset_stream(stream_id, error_code)
        self.sender.schedule()
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._forget(stream)

    def stream_done(self, stream: OutboundStream) -> None:
        """The stream sent its END_STREAM. A peer still sending is told to stop (RFC 9113 section 8.1), unless
        the stream waits for the peer's end (a tunnel)."""
        if stream.awaits_peer_end():
            return
        if not stream.peer_ended and self._state is not ConnectionState.CLOSED:
            with contextlib.suppress(ProtocolError):
                self.conn.reset_stream(stream.stream_id, ErrorCodes.NO_ERROR)
        self._forget(stream)

    # ---- events --------------------------------------------------------------------------------------

    def _on_request(self, event: ev.RequestReceived) -> None:
        self.request_received(event.stream_id, event.headers, ended=event.stream_ended is not None)

    def _new_request(self, stream_id: int, headers: list[tuple[bytes, bytes]], ended: bool) -> bool:  # noqa: FBT001 - `_inbound.NewRequest`
        self.request_received(stream_id, headers, ended=ended)
        return self._state is not ConnectionState.CLOSED

    def request_received(self, stream_id: int, headers: list[tuple[bytes, bytes]], *, ended: bool) -> None:
        """A new stream's request head (from h2's event, or straight from `_inbound`)."""
        if (
            self._state is ConnectionState.DRAINING
            or len(self.streams) >= self.config.http2_max_concurrent_streams
        ):
            self._refuse(stream_id)
            return
        self._idle.cancel()
        try:
            head = parse_request(headers, self.config)
        except MalformedRequest as exc:
            self._reject_malformed(stream_id, exc)
            return
        except HeadRejected as rejected:  # its own name: see asgi_core._accept._connect on mypyc and `except`
            reply_status(self, stream_id, rejected.status, peer_ended=ended, head_only=is_head_request(headers))
            return
        conn = apply_forwarded(self.config, self._conn_info, head.headers) if head.forwarded else self._conn_info
        if head.protocol is not None:
            open_tunnel(self, stream_id, head, conn, ended=ended, enabled=self._tunnels)
            return
        self._admit(request_stream(self, stream_id, head, conn, ended=ended))

    def _on_data(self, event: ev.DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if not event.data and event.stream_ended is None and not self._control_frame(ack=False):
            return  # an empty DATA frame does nothing but cost us work (CVE-2019-9518)
        if isinstance(stream, (RequestStream, TunnelStream)):
            stream.receive_data(event.data, event.flow_controlled_length)
        else:  # a stream we finished or reset: its data is dropped, its credit returned
            self.sender.acknowledge(event.stream_id, event.flow_controlled_length)

    def _on_trailers(self, event: ev.TrailersReceived) -> None:
        # ASGI has no request trailers, so they are dropped; a malformed block still fails its stream.
        try:
            check_trailers(event.headers)
        except MalformedRequest as exc:
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._forget(stream)
                stream.cut()
            self._reject_malformed(event.stream_id, exc)

    def _on_stream_ended(self, event: ev.StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if isinstance(stream, (RequestStream, TunnelStream)):
            stream.end_of_body()
        elif stream is not None:
            stream.peer_ended = True

    def _on_reset(self, event: ev.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            self._forget(stream)
            stream.cut()
        if not self._resets.hit(self._loop.time()):
            self._fail(ErrorCodes.ENHANCE_YOUR_CALM, b"too many reset streams")

    def _on_window_updated(self, event: ev.WindowUpdated) -> None:
        if self.sender.sending:
            self.sender.schedule()

    def _on_settings(self, event: ev.RemoteSettingsChanged) -> None:
        if self._control_frame(ack=True) and SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
            self.sender.schedule()

    def _on_ping(self, event: ev.PingReceived) -> None:
        self._control_frame(ack=True)

    def _on_ping_ack(self, event: ev.PingAckReceived) -> None:
        if self._state is ConnectionState.WARNED and event.ping_data == DRAIN_PING:
            self._last_goaway()
        else:  # an acknowledgement of a PING we never sent costs work like any control frame
            self._control_frame(ack=False)

    def _on_other_control(self, event: ev.Event) -> None:
        self._control_frame(ack=False)

    def _on_goaway(self, event: ev.ConnectionTerminated) -> None:
        # h2 sends nothing more once the peer has said GOAWAY, so the streams cannot be finished.
        self._close()

    # ---- admission and app tasks ---------------------------------------------------------------------

    def _refuse(self, stream_id: int) -> None:
        self.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
        if not self._resets.hit(self._loop.time()):
            self._fail(ErrorCodes.ENHANCE_YOUR_CALM, b"too many refused streams")

    def _reject_malformed(self, stream_id: int, exc: MalformedRequest) -> None:
        """RFC 9113 section 8.1.1: a malformed request is a stream error; it counts against the reset budget,
        as a refused stream does, so that a flood of them still ends the connection."""
        self.context.logger.debug(
            "HTTP/2 stream %d from %s: malformed request: %s", stream_id, self._conn_info.client, exc
        )
        self.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
        if not self._resets.hit(self._loop.time()):
            self._fail(ErrorCodes.ENHANCE_YOUR_CALM, b"too many malformed requests")

    def _admit(self, stream: RequestStream) -> None:
        assert stream.cycle is not None  # noqa: S101 - made with the stream
        if not self._admission.admit(stream.cycle):
            self._fail(ErrorCodes.ENHANCE_YOUR_CALM, b"too many streams waiting for the application")

    def _forget(self, stream: OutboundStream) -> None:
        if self.streams.pop(stream.stream_id, None) is None:
            return
        self.sender.sending.pop(stream.stream_id, None)
        if isinstance(stream, RequestStream) and stream.cycle is not None:
            self._admission.withdraw(stream.cycle)
        if not self.streams:
            if self._state is ConnectionState.DRAINING:
                self._close_if_done()
            elif self._state is ConnectionState.SERVING:
                self._arm_idle()

    # ---- abuse limits --------------------------------------------------------------------------------

    def _control_frame(self, *, ack: bool) -> bool:
        """Count a frame that carries no request; False (and the connection ending) past the limits."""
        if not self._control.hit(self._loop.time()):
            self._fail(ErrorCodes.ENHANCE_YOUR_CALM, b"too many control frames")
            return False
        if ack and self.flow.write_paused:
            self._queued_control += 1
            if self._queued_control > self.limits.max_queued_control_frames:
                self._fail(ErrorCodes.ENHANCE_YOUR_CALM, b"control frames sent faster than their replies are read")
                return False
        return True

    # ---- closing -------------------------------------------------------------------------------------

    def _fail(self, error_code: ErrorCodes, reason: bytes) -> None:
        """End the connection now with GOAWAY `error_code` (a protocol error, an abuse limit)."""
        if self._state is ConnectionState.CLOSED:
            return
        self.context.logger.info(
            "closing HTTP/2 connection from %s: %s (%s)", self._conn_info.client, reason.decode(), error_code.name
        )
        with contextlib.suppress(ProtocolError):  # h2 may consider the connection closed already
            self.conn.close_connection(error_code, additional_data=reason)
        self.sender.flush()
        self._close()

    def _close(self) -> None:
        self._state = ConnectionState.CLOSED
        self._stop_timers()
        if not self.transport.is_closing():
            self.transport.close()

    def _stop_timers(self) -> None:
        self._idle.close()
        if self._drain_ping is not None:
            self._drain_ping.close()
        self.sender.stop()

    def _abort_unread(self) -> None:
        """The send deadline passed with the write buffer full: the peer reads nothing; drop what it holds."""
        if not self.flow.write_paused:
            return  # resumed meanwhile, or the connection is gone
        self.context.logger.info(
            "closing HTTP/2 connection from %s: nothing it was sent was read for %s s",
            self._conn_info.client,
            self.send_timeout,
        )
        self._state = ConnectionState.CLOSED
        self._stop_timers()
        abort = getattr(self.transport, "abort", None)  # not part of asgi-core's Transport; asyncio's have it
        if callable(abort):
            abort()
        else:
            self.transport.close()

    def _close_if_done(self) -> None:
        if not self.streams and self._state is not ConnectionState.CLOSED:
            self.sender.flush()
            self._close()

    def _arm_idle(self, timeout: float | None = None) -> None:
        """Close the connection if no stream opens within `timeout` (the keep-alive timeout by default).
        Only a new stream stops the timer: PINGs and other frames do not keep an idle connection open."""
        if self._state is not ConnectionState.CLOSED:
            self._idle.arm(self.config.keep_alive_timeout if timeout is None else timeout)

    def _on_idle(self) -> None:
        if self.streams or self._state is ConnectionState.CLOSED:
            return
        with contextlib.suppress(ProtocolError):
            self.conn.close_connection(ErrorCodes.NO_ERROR, additional_data=b"idle")
        self.sender.flush()
        self._close()

    def _waiting(self, stream: RequestStream) -> bool:
        return stream.cycle is not None and self._admission.is_waiting(stream.cycle)


#: What each h2 event means here; events not listed need nothing from us. It lives outside the class because a
#: class body naming its own methods cannot be compiled by mypyc (as `asgi_core.RequestCycle`'s table).
_HANDLERS: Final[dict[type[ev.Event], Callable[[H2Protocol, Any], None]]] = {
    ev.RequestReceived: H2Protocol._on_request,  # noqa: SLF001
    ev.StreamEnded: H2Protocol._on_stream_ended,  # noqa: SLF001
    ev.DataReceived: H2Protocol._on_data,  # noqa: SLF001
    ev.WindowUpdated: H2Protocol._on_window_updated,  # noqa: SLF001
    ev.StreamReset: H2Protocol._on_reset,  # noqa: SLF001
    ev.TrailersReceived: H2Protocol._on_trailers,  # noqa: SLF001
    ev.RemoteSettingsChanged: H2Protocol._on_settings,  # noqa: SLF001
    ev.PingReceived: H2Protocol._on_ping,  # noqa: SLF001
    ev.PingAckReceived: H2Protocol._on_ping_ack,  # noqa: SLF001
    ev.ConnectionTerminated: H2Protocol._on_goaway,  # noqa: SLF001
    **dict.fromkeys((ev.PriorityUpdated, ev.UnknownFrameReceived), H2Protocol._on_other_control),  # noqa: SLF001
}
