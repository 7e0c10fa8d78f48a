"""Hypothesis drives one HTTP/2 connection through every order of the events its life table names (`_lifecycle`):
streams opened and finished, the drain's first step (`shutdown`), the drain PING's acknowledgement, the second
step (`going_away`), the peer's GOAWAY and a lost transport. What must hold whatever the order: the state only
moves along the table, a stream opened while DRAINING is refused and never reaches the app, one opened before
is served, a drained connection closes once its last stream ends, and a closed one writes nothing more."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from asgi_core import Receive, Scope, Send
from asgi_h2._lifecycle import DRAIN_PING, ConnectionState
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, parse_frames

GET_BLOCK = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.org")]
S, W, D, C = (ConnectionState.SERVING, ConnectionState.WARNED, ConnectionState.DRAINING, ConnectionState.CLOSED)
#: The moves the table in `_lifecycle` allows (staying put is always allowed).
ALLOWED = {(S, W), (W, D), (D, C), (S, C), (W, C)}
#: Steps before the events that end a connection at once may come: without the wait, most runs would end in
#: CLOSED before the drain has been explored.
LATE = 12


class H2LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.release: asyncio.Event
        self.called: set[str] = set()
        self.next_stream = 1
        self.steps = 0
        self.opened: dict[int, ConnectionState] = {}  # stream id -> the state it was opened in
        self.refused: set[int] = set()
        self.peer = self.loop.run_until_complete(self._connect())
        self.state = S

    async def _connect(self) -> H2Peer:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            self.called.add(scope["path"])
            if scope["path"].startswith("/slow"):
                await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        self.release = asyncio.Event()
        peer = H2Peer(app)
        await peer.settle()  # the SETTINGS exchange; from here the wire is read as raw frames
        return peer

    def teardown(self) -> None:
        self.release.set()
        if not self.peer.transport.closed:
            self._step(self.peer.transport.close)

        async def cancel_the_rest() -> None:
            pending = asyncio.all_tasks() - {asyncio.current_task()}
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        self.loop.run_until_complete(cancel_the_rest())
        self.loop.close()

    def _step(self, action: Callable[[], object] | None = None) -> None:
        """Do `action` inside the loop (the protocol expects a running one), let the tasks run, read the wire."""

        async def run() -> None:
            if action is not None:
                action()
            for _ in range(10):
                await asyncio.sleep(0)

        self.loop.run_until_complete(run())
        self.steps += 1
        for frame in parse_frames(self.peer.transport.take()):
            if isinstance(frame, RstStreamFrame) and frame.error_code == ErrorCodes.REFUSED_STREAM:
                self.refused.add(frame.stream_id)
        new = self.peer.protocol._state  # the state under test
        assert new is self.state or (self.state, new) in ALLOWED, f"{self.state.name} -> {new.name}"
        self.state = new

    # ---- the client ---------------------------------------------------------------------------------------

    @precondition(lambda self: not self.peer.transport.closed and self.next_stream < 40)
    @rule(slow=st.booleans())
    def open_stream(self, slow: bool) -> None:
        stream_id = self.next_stream
        self.next_stream += 2
        path = f"/{'slow' if slow else 'fast'}/{stream_id}"
        block = self.peer.client.encoder.encode([*GET_BLOCK, (b":path", path.encode())])
        self.opened[stream_id] = self.state
        frame = HeadersFrame(stream_id, data=block, flags=["END_HEADERS", "END_STREAM"])
        self._step(lambda: self.peer.send_raw(frame.serialize()))

    @rule()
    def slow_apps_finish(self) -> None:
        self._step(self.release.set)

    @precondition(lambda self: not self.peer.transport.closed)
    @rule()
    def acknowledge_drain_ping(self) -> None:
        self._step(lambda: self.peer.send_raw(PingFrame(0, opaque_data=DRAIN_PING, flags=["ACK"]).serialize()))

    @precondition(lambda self: not self.peer.transport.closed and self.steps >= LATE)
    @rule()
    def peer_goaway(self) -> None:
        self._step(lambda: self.peer.send_raw(GoAwayFrame(0, last_stream_id=0).serialize()))

    @precondition(lambda self: not self.peer.transport.closed and self.steps >= LATE)
    @rule()
    def transport_lost(self) -> None:
        self._step(self.peer.transport.close)
        assert self.state is C

    # ---- the server ---------------------------------------------------------------------------------------

    @rule()
    def shutdown(self) -> None:
        self._step(self.peer.protocol.shutdown)

    @precondition(lambda self: self.steps >= LATE)
    @rule()
    def going_away(self) -> None:
        self._step(self.peer.protocol.going_away)
        assert self.state is C

    # ---- what must always hold ----------------------------------------------------------------------------

    @invariant()
    def streams_opened_while_draining_are_refused_and_never_seen(self) -> None:
        for stream_id, opened_in in self.opened.items():
            if opened_in is D:
                assert stream_id in self.refused, f"stream {stream_id}, opened while draining, not refused"
                assert not any(path.endswith(f"/{stream_id}") for path in self.called)

    @invariant()
    def streams_opened_before_the_drain_reach_the_app(self) -> None:
        for stream_id, opened_in in self.opened.items():
            if opened_in in (S, W) and self.state is not C:
                assert any(path.endswith(f"/{stream_id}") for path in self.called), f"stream {stream_id} lost"

    @invariant()
    def a_drained_connection_closes_with_its_last_stream(self) -> None:
        if self.state is D:
            assert self.peer.protocol.streams, "draining with no stream left, yet open"

    @invariant()
    def a_closed_connection_is_silent(self) -> None:
        if self.state is C:
            assert self.peer.transport.closed
            assert self.peer.transport.take() == b"", "bytes written after the close"


H2LifecycleMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
test_h2_connection_lifecycle = H2LifecycleMachine.TestCase
