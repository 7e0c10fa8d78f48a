"""HTTP/3 through a real Gunicorn master: the worker never names asgi-h3, yet serves it from the registry when
it is installed, and starts cleanly when it is not.

`gunicorn-asgi` accepts `--http-protocols h3,...` because a plugin named `h3` is installed, and hands the
certificate's files (`--certfile`, `--keyfile`) to the server for QUIC's own TLS: no config file is needed.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from tests.h3_client import connect
from tests.worker_fixture import ServerFactory, serve_fixture, until  # noqa: F401

WORKER_BOOT_ERROR = 3
H3_NO_ERROR = 0x100
H3_EXCESSIVE_LOAD = 0x107


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_args(ca: trustme.CA, tmp_path: Path) -> list[str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    return ["--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem")]


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def hide_asgi_h3(tmp_path: Path) -> str:
    """A directory whose `asgi_h3` cannot be imported: first on the path, as if asgi-h3 were not installed."""
    fake = tmp_path / "no_asgi_h3" / "asgi_h3"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('asgi_h3 hidden by the test')\n")
    return str(fake.parent)


def test_gunicorn_serves_http3_beside_http1_and_http2(
    serve: ServerFactory, ca: trustme.CA, tls_args: list[str], tmp_path: Path
) -> None:
    server = serve(
        *tls_args,
        "--http-protocols",
        "h3,h2,h1",
        "--workers",
        "2",
        tls=client_context(ca),
    )
    # Both workers' UDP sockets must be open before QUIC connections start: the kernel spreads datagrams over
    # the SO_REUSEPORT group by a hash of their addresses, and a socket joining the group mid-connection moves
    # some connections to a worker that does not know them (see docs/how-to/http3.md, "Workers").
    until(lambda: server.output().count(" serving ") >= 2, 30, "the second worker never started serving")
    alt_svc = f'h3=":{server.port}"; ma=86400'
    h1 = httpx.get(server.url("/scope"), verify=client_context(ca))
    assert h1.http_version == "HTTP/1.1"
    assert h1.headers["alt-svc"] == alt_svc
    with httpx.Client(verify=client_context(ca), http2=True, http1=False) as client:
        h2 = client.get(server.url("/scope"))
    assert h2.http_version == "HTTP/2"
    assert h2.headers["alt-svc"] == alt_svc

    async def over_h3() -> list[bytes]:
        bodies = []
        for _ in range(4):  # new connections: the kernel spreads them over both workers' UDP sockets
            async with connect(server.port, ca.cert_pem.bytes()) as client:
                scope = await client.request(b"/scope")
                assert scope.status == 200
                assert b'"http_version": "3"' in scope.body
                echo = await client.request(b"/echo", method=b"POST", body=b"x" * 1_000_000)
                bodies.append(bytes(echo.body))
        return bodies

    assert asyncio.run(over_h3()) == [b"1000000"] * 4
    assert "h3" in server.output()


#: The app of the tests below: a streamed response, an app failure, and an echo.
H3_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/fail":
        raise RuntimeError("this request fails")
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for number in range(20):
            await send({"type": "http.response.body", "body": b"chunk %02d\\n" % number, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})
"""


def test_streams_errors_and_a_reset_flood_on_one_gunicorn_worker(
    serve: ServerFactory, ca: trustme.CA, tls_args: list[str], tmp_path: Path
) -> None:
    (tmp_path / "h3_app.py").write_text(H3_APP)
    server = serve(
        *tls_args,
        "--http-protocols",
        "h3,h1",
        app="h3_app:app",
        chdir=tmp_path,
        tls=client_context(ca),
    )

    async def main() -> None:
        async with connect(server.port, ca.cert_pem.bytes()) as client:
            streamed = await client.request(b"/stream")
            assert bytes(streamed.body) == b"".join(b"chunk %02d\n" % n for n in range(20))
            many = [client.start(b"/%d" % n) for n in range(300)]
            failing = client.start(b"/fail")
            await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in [*many, failing])), 20)
            assert [bytes(r.body) for r in many] == [b"/%d" % n for n in range(300)]
            assert failing.status == 500
            assert (await client.request(b"/after")).status == 200
        async with connect(server.port, ca.cert_pem.bytes()) as flooder:
            for _ in range(400):  # more than H3Limits.max_resets (200 per 10 s)
                stream_id = flooder._quic.get_next_available_stream_id()
                flooder.h3.send_headers(stream_id, [(b":method", b"POST"), (b":scheme", b"https"),
                                                    (b":authority", b"localhost"), (b":path", b"/")])  # fmt: skip
                flooder._quic.reset_stream(stream_id, 0x10C)
                flooder.transmit()
                await asyncio.sleep(0.001)
                if flooder.terminated is not None:
                    break
            await asyncio.wait_for(flooder.wait_closed(), 5)
            assert flooder.terminated is not None
            assert flooder.terminated.error_code == H3_EXCESSIVE_LOAD
        async with connect(server.port, ca.cert_pem.bytes()) as client:
            assert (await client.request(b"/still-serving")).status == 200

    asyncio.run(main())
    assert "Exception in ASGI application" in server.output()


def test_sigterm_drains_http3_with_goaway_and_finishes_the_request(
    serve: ServerFactory, ca: trustme.CA, tls_args: list[str], tmp_path: Path
) -> None:
    server = serve(
        *tls_args,
        "--http-protocols",
        "h3,h2,h1",
        "--graceful-timeout",
        "10",
        tls=client_context(ca),
    )

    async def main() -> None:
        async with connect(server.port, ca.cert_pem.bytes()) as client:
            slow = client.start(b"/slow?t=1")
            await asyncio.sleep(0.3)
            server.send_signal(signal.SIGTERM)
            await asyncio.wait_for(slow.done.wait(), 10)
            assert slow.status == 200
            assert bytes(slow.body) == b"slow done"
            assert client.goaway_ids() == [4]
            await asyncio.wait_for(client.wait_closed(), 10)
            assert client.terminated is not None
            assert client.terminated.error_code == H3_NO_ERROR

    asyncio.run(main())
    assert server.wait_exit() == 0


def test_worker_starts_cleanly_without_asgi_h3(
    serve: ServerFactory, ca: trustme.CA, tls_args: list[str], tmp_path: Path
) -> None:
    server = serve(
        *tls_args, "--http-protocols", "h2,h1", env={"PYTHONPATH": hide_asgi_h3(tmp_path)}, tls=client_context(ca)
    )
    response = httpx.get(server.url("/"), verify=client_context(ca))
    assert response.status_code == 200
    assert "alt-svc" not in response.headers
    assert "asgi_h3" not in server.output()  # never imported: plugins load when asked for


def test_asking_for_h3_without_asgi_h3_stops_with_a_clear_error(
    serve: ServerFactory, tls_args: list[str], tmp_path: Path
) -> None:
    server = serve(
        *tls_args,
        "--http-protocols",
        "h3,h2,h1",
        env={"PYTHONPATH": hide_asgi_h3(tmp_path)},
        wait=False,
    )
    assert server.wait_exit() == WORKER_BOOT_ERROR
    output = server.output()
    assert "'h3' failed to load: ImportError: asgi_h3 hidden by the test" in output, output
