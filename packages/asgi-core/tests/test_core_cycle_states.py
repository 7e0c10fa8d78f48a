"""Hypothesis drives a RequestCycle through every order of protocol events (body bytes, the body's end, a
half-close, a lost client) and app calls (receive, the response messages), against a model of what ASGI
promises the app: the body arrives whole and in order, its end is reported only when it really ended, a
receive never hangs while something is owed, and http.disconnect only comes once the client stopped or the
response is done."""

from __future__ import annotations

import asyncio
from typing import Any, BinaryIO

import pytest
from asgi_core import (
    ClientDisconnected,
    Config,
    ConnectionInfo,
    Headers,
    InvalidMessage,
    Message,
    RequestCycle,
    RequestState,
    ServerContext,
    build_http_scope,
)
from asgi_core._request_state import TRANSITIONS, RequestEvent, advance
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

CONN = ConnectionInfo(client=("192.0.2.1", 1234), server=("127.0.0.1", 80), scheme="http")


class Writer:
    can_send_trailers = True
    can_send_informational = True
    can_sendfile = False

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.body_requests = 0

    def request_body(self) -> None:
        self.body_requests += 1

    def body_consumed(self, size: int) -> None:
        pass

    def send_informational(self, status: int, headers: Headers) -> None:
        self.events.append(("info", status))

    def start_response(self, status: int, headers: Headers) -> None:
        self.events.append(("start", status))

    def send_data(self, data: bytes) -> None:
        self.events.append(("data", data))

    def drain(self) -> None:
        return None

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        raise AssertionError("not used")

    def end_response(self, trailers: Headers | None) -> None:
        self.events.append(("end",))

    def abort_response(self) -> None:
        self.events.append(("abort",))


async def _unused_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the machine calls receive and send itself")


class CycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.writer = Writer()
        self.cycle: RequestCycle
        self.pending: asyncio.Task[Message] | None = None
        # The model.
        self.fed = b""
        self.ended = False
        self.half_closed = False
        self.disconnected = False
        self.received = b""
        self.got_end = False
        self.got_disconnect = False
        self.response = "start"  # start, body, complete

    @initialize(body_expected=st.booleans(), head=st.booleans())
    def start(self, body_expected: bool, head: bool) -> None:
        scope = build_http_scope(
            conn=CONN,
            method="HEAD" if head else "POST",
            http_version="1.1",
            target=b"/",
            headers=[],
            root_path="",
            state=None,
            extensions={},
        )
        context = ServerContext(app=_unused_app, config=Config(server_header=False, date_header=False))
        self.cycle = RequestCycle(scope, self.writer, context, body_expected=body_expected)
        self.ended = not body_expected

    def teardown(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.loop.run_until_complete(asyncio.gather(self.pending, return_exceptions=True))
        self.loop.close()

    def _settle(self) -> None:
        for _ in range(3):
            self.loop.run_until_complete(asyncio.sleep(0))
        if self.pending is not None and self.pending.done():
            message = self.pending.result()
            self.pending = None
            self._took(message)

    def _took(self, message: Message) -> None:
        assert not self.got_disconnect or message["type"] == "http.disconnect", "body after a disconnect"
        if message["type"] == "http.disconnect":
            assert self.half_closed or self.disconnected or self.response == "complete"
            self.got_disconnect = True
            return
        assert message["type"] == "http.request"
        assert not self.got_end, "a request message after the body's end"
        self.received += message["body"]
        assert self.fed.startswith(self.received)
        if not message["more_body"]:
            assert self.ended, "the end of a body that did not end"
            assert self.received == self.fed, "the end reported before the whole body"
            self.got_end = True

    # ---- the protocol ---------------------------------------------------------------------------------

    def _stopped(self) -> bool:
        """Whether the app is owed nothing more than the body's end: the client stopped, or the app was
        told the exchange is over."""
        return self.half_closed or self.disconnected or self.got_disconnect

    @precondition(lambda self: not self.ended and not self.half_closed and not self.disconnected)
    @rule(data=st.binary(min_size=1, max_size=4))
    def feed(self, data: bytes) -> None:
        self.cycle.feed_body(data)
        if not self.got_disconnect:  # after http.disconnect, body is dropped
            self.fed += data
        self._settle()

    @precondition(lambda self: not self.ended)
    @rule()
    def end_body(self) -> None:
        self.cycle.end_body()
        self.ended = not self._stopped()  # an end after the client stopped is moot
        self._settle()

    @rule()
    def peer_closed(self) -> None:
        self.cycle.peer_closed()
        self.half_closed = True
        self._settle()

    @rule()
    def connection_lost(self) -> None:
        self.cycle.connection_lost()
        self.disconnected = True
        self._settle()

    # ---- the app --------------------------------------------------------------------------------------

    @precondition(lambda self: self.pending is None)
    @rule()
    def receive(self) -> None:
        self.pending = self.loop.create_task(self.cycle.receive())
        self._settle()

    @rule(kind=st.sampled_from(["http.response.start", "http.response.body", "http.response.trailers"]))
    def send(self, kind: str) -> None:
        message: dict[str, Any] = {"type": kind}
        if kind == "http.response.start":
            message.update(status=200, headers=[])
        expected = {"start": "http.response.start", "body": "http.response.body"}.get(self.response)
        outcome: BaseException | None = None
        try:
            self.loop.run_until_complete(self.cycle.send(message))
        except (InvalidMessage, ClientDisconnected) as exc:
            outcome = exc
        if self.disconnected and self.response != "complete":
            assert isinstance(outcome, ClientDisconnected)
        elif kind != expected:
            assert isinstance(outcome, InvalidMessage), f"{kind} accepted while awaiting {expected}"
        else:
            assert outcome is None
            self.response = "body" if self.response == "start" else "complete"
        self._settle()

    # ---- what must always hold --------------------------------------------------------------------------

    @invariant()
    def a_waiting_receive_is_owed_nothing(self) -> None:
        if self.pending is None:
            return
        assert self.received == self.fed, "body bytes held back from a waiting receive"
        assert not (self.ended and not self.got_end), "the body's end held back from a waiting receive"
        assert not self.half_closed, "a receive left waiting after the client half-closed"
        assert not self.disconnected, "a receive left waiting after the client left"
        assert self.response != "complete", "a receive left waiting after the response completed"

    @invariant()
    def the_state_says_what_is_owed(self) -> None:
        state = self.cycle.request_state
        stopped = self._stopped()
        if self.got_end:
            assert state is (RequestState.CLOSED if stopped else RequestState.DELIVERED)
        elif self.ended:
            assert state is (RequestState.CLOSING if stopped else RequestState.ENDED)
        elif stopped:
            assert state is RequestState.CLOSED
        else:
            assert state in (RequestState.UNREAD, RequestState.READING)
        assert self.writer.body_requests <= 1, "100-continue asked for twice"


CycleMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
test_request_cycle_state_machine = CycleMachine.TestCase


def test_transition_table_rejects_what_it_does_not_list() -> None:
    for state in RequestState:
        for event in RequestEvent:
            if event in TRANSITIONS[state]:
                assert advance(state, event) is TRANSITIONS[state][event]
            else:
                with pytest.raises(RuntimeError, match=event.name):
                    advance(state, event)
