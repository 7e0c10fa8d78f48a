"""The request side of a cycle: what `receive()` owes the app, as a state enum and a transition table.

The theory first. The app reads a request body through `receive()`, and the answer depends on two things only:
how far the body has come (still arriving, complete, complete and handed over) and whether the client has
stopped talking to us (a half-close or a lost connection; for the body the two are the same, for `send` they
are not, which is why the cycle keeps "the client is gone" apart). Body bytes already buffered are always
handed over first, whatever the state; the state decides what comes after them (each member of
`RequestState` says what).

The transitions, driven by the protocol (END, CLOSE) and by the app's reads (ASK, DELIVER):

    state     | ASK      | END     | DELIVER   | CLOSE
    ----------+----------+---------+-----------+--------
    UNREAD    | READING  | ENDED   |           | CLOSED
    READING   |          | ENDED   |           | CLOSED
    ENDED     |          | ENDED   | DELIVERED | CLOSING
    DELIVERED |          |         |           | CLOSED
    CLOSING   |          | CLOSING | CLOSED    | CLOSING
    CLOSED    |          | CLOSED  |           | CLOSED

A request with no body starts in ENDED. A pair missing from the table is a bug in the caller, not in the peer:
`advance` raises `RuntimeError` for it (the cycle indexes the table inline: a `KeyError` there). A body cut
short by CLOSE never reports its end: the app must not mistake a truncated body for a complete one.
"""

from __future__ import annotations

import enum
from typing import Final


class RequestState(enum.Enum):
    """How far the request has come; each member's docstring: what `receive()` gives once the buffer is empty."""

    UNREAD = enum.auto()
    """Body to come, not asked for yet: asks the protocol for it (an interim 100 Continue where the client
    waits for one), then waits."""
    READING = enum.auto()
    """Body to come, asked for: waits for more."""
    ENDED = enum.auto()
    """Body complete, its end not yet given to the app: the end of the body (`more_body: False`)."""
    DELIVERED = enum.auto()
    """Body given to the app in full: waits, the next news being a disconnect or the response's end."""
    CLOSING = enum.auto()
    """Body complete and the client has stopped: the end of the body, then `http.disconnect` from then on."""
    CLOSED = enum.auto()
    """The client has stopped: `http.disconnect`."""

    # Looked up in the transition table: hash by identity, in C, not with Enum's Python `__hash__`.
    __hash__ = object.__hash__


class RequestEvent(enum.Enum):
    """What moves the request side on; each member's docstring: what it is, and who reports it."""

    ASK = enum.auto()
    """The app waits for body it has not got (`receive()`)."""
    END = enum.auto()
    """The protocol read the end of the body (`end_body()`)."""
    DELIVER = enum.auto()
    """The app was given the end of the body (`receive()`)."""
    CLOSE = enum.auto()
    """The client half-closed or went away (`peer_closed()`, `connection_lost()`), or the app is told the
    exchange is over (`receive()` once the response is complete)."""

    __hash__ = object.__hash__


#: States in which the end of the body is owed to the app.
END_OWED: Final = frozenset({RequestState.ENDED, RequestState.CLOSING})

#: State -> event -> next state, as h11 lays out its tables: two lookups keyed by one member each are half the
#: cost of one keyed by a (state, event) tuple, and the cycle moves through here a few times per request.
TRANSITIONS: Final[dict[RequestState, dict[RequestEvent, RequestState]]] = {
    RequestState.UNREAD: {
        RequestEvent.ASK: RequestState.READING,
        RequestEvent.END: RequestState.ENDED,
        RequestEvent.CLOSE: RequestState.CLOSED,
    },
    RequestState.READING: {RequestEvent.END: RequestState.ENDED, RequestEvent.CLOSE: RequestState.CLOSED},
    RequestState.ENDED: {
        RequestEvent.END: RequestState.ENDED,
        RequestEvent.DELIVER: RequestState.DELIVERED,
        RequestEvent.CLOSE: RequestState.CLOSING,
    },
    RequestState.DELIVERED: {RequestEvent.CLOSE: RequestState.CLOSED},
    RequestState.CLOSING: {
        RequestEvent.END: RequestState.CLOSING,
        RequestEvent.DELIVER: RequestState.CLOSED,
        RequestEvent.CLOSE: RequestState.CLOSING,
    },
    RequestState.CLOSED: {RequestEvent.END: RequestState.CLOSED, RequestEvent.CLOSE: RequestState.CLOSED},
}


def advance(state: RequestState, event: RequestEvent) -> RequestState:
    """The state after `event`; raises `RuntimeError` for a pair the table does not allow."""
    following = TRANSITIONS[state].get(event)
    if following is None:
        raise RuntimeError(f"request side: {event.name} is not allowed in {state.name}")
    return following
