"""An HTTP/2 connection's life, and the two GOAWAY frames of a graceful close (RFC 9113 section 6.8).

A client may have a request on the wire when the server decides to stop, so a single GOAWAY naming the last
stream seen would refuse a stream the client believes it opened in time, without telling it whether the
request was processed. Section 6.8's answer is two steps: a first GOAWAY with the largest possible stream id
("stop opening streams", refusing nothing), then, once a PING round trip shows that every stream the client
opened before reading it has arrived (or a short timeout passes), a second GOAWAY with the real last stream
id. Streams up to it are served; a later one is refused with REFUSED_STREAM, which that GOAWAY lets the
client retry elsewhere.

    state     | event                                         | next
    ----------+-----------------------------------------------+----------
    SERVING   | shutdown(): GOAWAY(2^31-1), PING              | WARNED
    WARNED    | PING acknowledged, or the timeout             | DRAINING (GOAWAY(last stream id))
    DRAINING  | the last stream ends                          | CLOSED
    any       | going_away(), protocol error, abuse limit,    | CLOSED
              | idle timeout, the peer's GOAWAY, lost transport |

SERVING and WARNED both admit new streams; DRAINING refuses them. CLOSED sends nothing more.
"""

from __future__ import annotations

import enum
from typing import Final

from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame


class ConnectionState(enum.Enum):
    SERVING = "serving"
    WARNED = "warned"
    DRAINING = "draining"
    CLOSED = "closed"


#: The largest stream id: a first GOAWAY carrying it refuses nothing (section 6.8).
MAX_STREAM_ID: Final = 2**31 - 1
#: What our drain PING carries, to tell its acknowledgement from the peer's own PINGs' answers.
DRAIN_PING: Final = b"drain\x00\x00\x00"
#: Seconds to wait for the drain PING's acknowledgement before the second GOAWAY goes anyway: a round trip
#: is normally milliseconds, and a peer that never answers must not hold the drain.
DRAIN_PING_TIMEOUT: Final = 1.0


def goaway(last_stream_id: int, error_code: ErrorCodes = ErrorCodes.NO_ERROR) -> bytes:
    """A GOAWAY frame, written past h2: h2 would stop opening streams for us after a GOAWAY of its own, while
    the streams up to `last_stream_id` must still be served."""
    return GoAwayFrame(stream_id=0, last_stream_id=last_stream_id, error_code=error_code).serialize()
