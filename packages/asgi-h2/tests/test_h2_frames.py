"""A response in one piece, written without h2's frame objects (`_frames`): the same bytes as h2's own
`send_headers` and `send_data` would put on the wire, and h2 left in the same state, whatever the head, the
body and the peer's frame size; a body the windows do not admit whole is left to h2's path untouched. Over
the paired peer: heads past one frame arrive whole, in CONTINUATION frames."""

from __future__ import annotations

import sys
from pathlib import Path

from asgi_core import Config, Receive, Scope, Send
from asgi_h2._frames import whole_response
from asgi_h2._hpack import ResponseEncoder
from asgi_h2._settings import new_connection, send_initial_settings
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes
from hyperframe.frame import ContinuationFrame, HeadersFrame
from hypothesis import given, settings
from hypothesis import strategies as st

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, parse_frames, run

REQUEST = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"), (b":authority", b"example.com")]
FIELDS = st.lists(
    st.tuples(
        st.sampled_from([b"content-type", b"x-long", b"set-cookie", b"cache-control", b"x-a"]),
        st.one_of(st.sampled_from([b"text/plain", b"no-store"]), st.binary(min_size=1, max_size=9000)),
    ),
    max_size=4,
)


def server_pair(frame_size: int, window: int, *, ended: bool = True) -> tuple[H2Connection, H2Connection]:
    """Two server connections in the same state: one request on stream 1 received from a client whose
    SETTINGS give `frame_size` and `window`, its body still to come unless `ended`."""
    client = H2Connection(H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({SettingCodes.MAX_FRAME_SIZE: frame_size, SettingCodes.INITIAL_WINDOW_SIZE: window})
    client.send_headers(1, REQUEST, end_stream=ended)
    data = client.data_to_send()
    servers = []
    for _ in range(2):
        server = new_connection(Config(), connect_protocol=False)
        server.initiate_connection()
        send_initial_settings(server, Config())
        server.receive_data(data)
        server.data_to_send()
        servers.append(server)
    return servers[0], servers[1]


def h2_state(conn: H2Connection) -> tuple[object, ...]:
    stream = conn.streams[1]
    return (
        conn.state_machine.state,
        conn.outbound_flow_control_window,
        sorted(vars(stream.state_machine).items()),  # every attribute: state, who sent what, how it closed
        stream.outbound_flow_control_window,
        stream.request_method,
        conn.encoder.header_table_size,
    )


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from([b"200", b"204", b"404"]),
    fields=FIELDS,
    body=st.binary(max_size=20000),
    frame_size=st.sampled_from([16384, 20000]),
    window=st.sampled_from([100, 65535]),
    ended=st.booleans(),
)
def test_a_whole_response_is_what_h2_would_send_and_leaves_h2_where_h2_would(
    status: bytes, fields: list[tuple[bytes, bytes]], body: bytes, frame_size: int, window: int, ended: bool
) -> None:
    ours, theirs = server_pair(frame_size, window, ended=ended)
    head = [(b":status", status), *fields]
    # The encoder's process-wide cache decides what it indexes (a field seen before): the same for both.
    ResponseEncoder().encode(head)
    before = h2_state(ours)
    frames = whole_response(ours, 1, head, body)
    if len(body) > min(window, frame_size):  # not admitted whole: h2's path sends it, nothing here changed
        assert frames is None
        assert h2_state(ours) == before
        assert ours.data_to_send() == b""
        return
    theirs.send_headers(1, head, end_stream=not body)
    if body:
        theirs.send_data(1, body, end_stream=True)
    assert frames == theirs.data_to_send()
    assert h2_state(ours) == h2_state(theirs)
    # What comes next finds the same state: the peer's frames on the stream and the connection, a reset from
    # us, and the next response's HPACK.
    assert after(ours) == after(theirs)
    assert ours.encoder.encode(head) == theirs.encoder.encode(head)


def after(conn: H2Connection) -> list[str]:
    """What `conn` makes of a window update and a reset from the client, then of resetting the stream itself."""
    client = H2Connection(H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, REQUEST, end_stream=True)
    client.data_to_send()
    client.increment_flow_control_window(1000)
    client.increment_flow_control_window(1000, stream_id=1)
    client.reset_stream(1, ErrorCodes.CANCEL)
    seen = [repr(conn.receive_data(client.data_to_send()))]
    try:
        conn.reset_stream(1, ErrorCodes.NO_ERROR)
    except ProtocolError as exc:
        seen.append(type(exc).__name__)
    seen.append(repr(conn.data_to_send()))
    return seen


def test_a_head_larger_than_a_frame_arrives_whole_in_continuation_frames() -> None:
    long_value = b"v" * 40_000

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-long", long_value)]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> None:
        peer = H2Peer(app)
        peer.client.decoder.max_header_list_size = 1 << 20
        stream = peer.request()
        result = await peer.response(stream)
        assert result.status == 200
        assert result.header(b"x-long") == long_value
        assert bytes(result.data) == b"ok"
        assert result.ended

    run(main())


def test_the_continuation_frames_of_a_long_head_end_it_and_the_stream_ends_on_the_headers_frame() -> None:
    ours, _ = server_pair(16384, 65535)
    head = [(b":status", b"200"), (b"x-long", bytes(range(256)) * 150)]
    frames = parse_frames(whole_response(ours, 1, head, b"") or b"")
    assert len(frames) >= 3
    assert [type(frame) for frame in frames] == [HeadersFrame] + [ContinuationFrame] * (len(frames) - 1)
    assert set(frames[0].flags) == {"END_STREAM"}
    assert [set(frame.flags) for frame in frames[1:]] == [set()] * (len(frames) - 2) + [{"END_HEADERS"}]
    assert all(frame.body_len <= 16384 for frame in frames)
