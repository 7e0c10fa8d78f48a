"""HTTP/1.1's connection state machine, as h11 models it: one state per side, the transitions an event makes
in tables, looked up by the engine (`_engine.py`) for every event.

Hot module: looked up for every request (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import enum
from typing import Final


class State(enum.Enum):
    """The state of one side of the connection, as in h11's state machine."""

    IDLE = "idle"
    SEND_RESPONSE = "request received, no response yet"
    SEND_BODY = "sending a body"
    DONE = "message complete"
    MUST_CLOSE = "message complete, connection closes"
    MIGHT_SWITCH_PROTOCOL = "request complete, protocol switch proposed"
    CLOSED = "closed"
    ERROR = "error"

    # Members are looked up in the transition tables for every event: hash them by identity, in C, rather than
    # with Enum's own `__hash__` (a Python function).
    __hash__ = object.__hash__


class Input(enum.Enum):
    REQUEST = "request head"
    END = "end of message"
    CLOSED = "connection closed"
    INFORMATIONAL = "informational response"
    RESPONSE = "response head"
    DATA = "body data"

    __hash__ = object.__hash__


# Client states that, with keep-alive on and no switch proposed, still lead to a transition in `_settle`.
UNSETTLED: Final = frozenset({State.MIGHT_SWITCH_PROTOCOL, State.CLOSED, State.ERROR})

CLIENT_TRANSITIONS: Final[dict[tuple[State, Input], State]] = {
    (State.IDLE, Input.REQUEST): State.SEND_BODY,
    (State.SEND_BODY, Input.END): State.DONE,
    (State.IDLE, Input.CLOSED): State.CLOSED,
    (State.DONE, Input.CLOSED): State.CLOSED,
    (State.MUST_CLOSE, Input.CLOSED): State.CLOSED,
    (State.CLOSED, Input.CLOSED): State.CLOSED,
}
SERVER_TRANSITIONS: Final[dict[tuple[State, Input], State]] = {
    (State.IDLE, Input.REQUEST): State.SEND_RESPONSE,  # the client's request, seen from the server side
    (State.SEND_RESPONSE, Input.INFORMATIONAL): State.SEND_RESPONSE,
    (State.SEND_RESPONSE, Input.RESPONSE): State.SEND_BODY,
    (State.SEND_BODY, Input.DATA): State.SEND_BODY,
    (State.SEND_BODY, Input.END): State.DONE,
}
