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


# Hot-path names for the members: a global costs 10 ns, `Enum.member` 75 on Python 3.11 (design.md, "Speed").
IDLE: Final = State.IDLE
SEND_RESPONSE: Final = State.SEND_RESPONSE
SEND_BODY: Final = State.SEND_BODY
DONE: Final = State.DONE
MUST_CLOSE: Final = State.MUST_CLOSE
MIGHT_SWITCH_PROTOCOL: Final = State.MIGHT_SWITCH_PROTOCOL
CLOSED: Final = State.CLOSED
ERROR: Final = State.ERROR
ON_REQUEST: Final = Input.REQUEST
ON_END: Final = Input.END
ON_CLOSED: Final = Input.CLOSED
ON_INFORMATIONAL: Final = Input.INFORMATIONAL
ON_RESPONSE: Final = Input.RESPONSE
ON_DATA: Final = Input.DATA

# Client states that, with keep-alive on and no switch proposed, still lead to a transition in `_settle`.
UNSETTLED: Final = frozenset({MIGHT_SWITCH_PROTOCOL, CLOSED, ERROR})

CLIENT_TRANSITIONS: Final[dict[tuple[State, Input], State]] = {
    (IDLE, ON_REQUEST): SEND_BODY,
    (SEND_BODY, ON_END): DONE,
    (IDLE, ON_CLOSED): CLOSED,
    (DONE, ON_CLOSED): CLOSED,
    (MUST_CLOSE, ON_CLOSED): CLOSED,
    (CLOSED, ON_CLOSED): CLOSED,
}
SERVER_TRANSITIONS: Final[dict[tuple[State, Input], State]] = {
    (IDLE, ON_REQUEST): SEND_RESPONSE,  # the client's request, seen from the server side
    (SEND_RESPONSE, ON_INFORMATIONAL): SEND_RESPONSE,
    (SEND_RESPONSE, ON_RESPONSE): SEND_BODY,
    (SEND_BODY, ON_DATA): SEND_BODY,
    (SEND_BODY, ON_END): DONE,
}
