"""The response's Content-Length is held to, as HTTP/1.1 and HTTP/2 hold to it: nginx must never get a response
whose body disagrees with its declared length. An app that sends more, or ends with less, gets an error from
`send` (or the cycle's abort) and nginx sees the connection reset, never a clean close after a wrong body."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from asgi_core import Message, Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent))
from uwsgi_client import Response, connect, exchange, packet, parse_response, run


async def read_until_close_or_reset(port: int, data: bytes) -> tuple[bytes, bool]:
    """Everything the server sends, and whether it ended with a reset (True) or a clean close (False)."""
    reader, writer = await connect(port)
    writer.write(data)
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            received += chunk
    except ConnectionResetError:
        return received, True
    finally:
        writer.close()
    return received, False


def declared(length: int) -> Message:
    return {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % length)]}


@pytest.mark.parametrize(
    "bodies",
    [
        [b"x" * 20],  # one message, too long
        [b"x" * 5],  # one message, too short
        [b"x" * 5, b"y" * 10],  # streamed, runs past the length
        [b"x" * 5, b""],  # streamed, ends short
        [b"", b"x" * 11],
    ],
)
def test_body_that_disagrees_with_content_length_is_cut_not_closed(bodies: list[bytes]) -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(declared(10))
        for index, body in enumerate(bodies):
            more = index < len(bodies) - 1
            try:
                await send({"type": "http.response.body", "body": body, "more_body": more})
            except Exception as exc:
                errors.append(exc)
                raise

    async def scenario(port: int) -> tuple[bytes, bool]:
        return await read_until_close_or_reset(port, packet())

    received, reset = run(app, scenario)
    assert reset, f"a wrong body ended by a clean close: {received!r}"
    # never a byte past the declared length
    assert b"x" * 11 not in received
    assert b"y" not in received
    assert errors, "the app was not told"
    assert "content-length" in str(errors[0]).lower()


def test_one_message_too_long_sends_nothing_at_all() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(declared(3))
        await send({"type": "http.response.body", "body": b"abcdef"})

    received, reset = run(app, lambda port: read_until_close_or_reset(port, packet()))
    assert (received, reset) == (b"", True)


def test_exact_length_in_pieces_is_a_complete_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(declared(10))
        for piece in (b"abc", b"", b"defg", b"hij"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    response = run(app, lambda port: exchange(port, packet()))
    assert response.body == b"abcdefghij"
    assert response.header(b"content-length") == b"10"


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 304), ("GET", 204)])
def test_bodyless_responses_keep_their_declared_length(method: str, status: int) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [] if status == 204 else [(b"content-length", b"1234")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"x" * 1234 if status == 200 else b""})

    received, reset = run(app, lambda port: read_until_close_or_reset(port, packet(method)))
    assert not reset
    response = parse_response(received)
    assert response.status == status
    assert response.body == b""


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"abc")],
        [(b"content-length", b"-1")],
        [(b"content-length", b"5"), (b"content-length", b"6")],
        [(b"content-length", b"5, 6")],
        [(b"content-length", b"")],
    ],
)
def test_invalid_content_length_from_the_app_is_a_500(headers: list[tuple[bytes, bytes]]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    response: Response = run(app, lambda port: exchange(port, packet()))
    assert response.status == 500


def test_repeated_equal_content_length_is_sent_once() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"5"), (b"Content-Length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    response: Response = run(app, lambda port: exchange(port, packet()))
    assert response.body == b"hello"
    assert [name for name, _ in response.headers if name.lower() == b"content-length"] == [b"content-length"]


def test_pathsend_of_a_file_longer_than_the_declared_length_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"z" * 100_000)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(declared(10))
        await send({"type": "http.response.pathsend", "path": str(path)})

    received, reset = run(app, lambda port: read_until_close_or_reset(port, packet()))
    assert reset
    assert b"z" * 11 not in received
