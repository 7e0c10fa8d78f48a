"""The ASGI `tls` extension through the worker: mutual TLS (`--cert-reqs 2 --ca-certs`) with a trustme client
certificate, and TLS without one, over HTTP/1.1 (both parsers), HTTP/2 and WebSocket."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.sync.client import connect

from tests.worker_fixture import Server, ServerFactory, serve_fixture  # noqa: F401

APP = "test_worker_ops_apps:tls_app"
PARSERS = ["h11", "httptools"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _serve(serve: ServerFactory, ca: trustme.CA, tmp_path: Path, *args: str, parser: str = "h11") -> Server:
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    files: tuple[str, ...] = ("--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"))
    files += ("--ca-certs", str(tmp_path / "ca.pem"))
    client = _client_context(ca, ca.issue_cert("probe@example.com", common_name="probe"))
    return serve(*files, *args, app=APP, tls=client, env={"ASGI_HTTP1_PARSER": parser})


def _client_context(ca: trustme.CA, leaf: trustme.LeafCert | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if leaf is not None:
        leaf.configure_cert(context)
    return context


def _check_client_cert(tls: dict[str, Any], leaf: trustme.LeafCert) -> None:
    assert tls["client_cert_chain"][0] == leaf.cert_chain_pems[0].bytes().decode()
    assert tls["client_cert_name"].startswith("CN=alice,OU=")
    assert tls["client_cert_error"] is None
    # The worker hands --certfile to the server, which reports its own certificate too.
    assert tls["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert isinstance(tls["cipher_suite"], int)


@pytest.mark.parametrize("parser", PARSERS)
def test_mutual_tls_http1_and_websocket_see_the_client_certificate(
    serve: ServerFactory, ca: trustme.CA, tmp_path: Path, parser: str
) -> None:
    server = _serve(serve, ca, tmp_path, "--cert-reqs", "2", parser=parser)
    leaf = ca.issue_cert("alice@example.com", common_name="alice")
    context = _client_context(ca, leaf)
    body = httpx.get(server.url("/"), verify=context).json()
    assert body["http_version"] == "1.1"
    _check_client_cert(body["tls"], leaf)
    with connect(f"wss://127.0.0.1:{server.port}/ws", ssl=context) as ws:
        message = json.loads(ws.recv(timeout=5))
    _check_client_cert(message["tls"], leaf)
    # --cert-reqs 2 (CERT_REQUIRED): a client without a certificate is not served at all.
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url("/"), verify=_client_context(ca, None))


def test_mutual_tls_http2_streams_see_the_client_certificate(
    serve: ServerFactory, ca: trustme.CA, tmp_path: Path
) -> None:
    server = _serve(serve, ca, tmp_path, "--cert-reqs", "2", "--http-protocols", "h2,h1")
    leaf = ca.issue_cert("alice@example.com", common_name="alice")
    with httpx.Client(verify=_client_context(ca, leaf), http2=True) as client:
        bodies = [client.get(server.url(f"/{n}")).json() for n in range(2)]
    for body in bodies:
        assert body["http_version"] == "2"
        _check_client_cert(body["tls"], leaf)


@pytest.mark.parametrize("parser", PARSERS)
def test_tls_without_a_client_certificate(
    serve: ServerFactory, ca: trustme.CA, tmp_path: Path, parser: str
) -> None:
    server = _serve(serve, ca, tmp_path, "--cert-reqs", "1", parser=parser)  # CERT_OPTIONAL
    body = httpx.get(server.url("/"), verify=_client_context(ca, None)).json()
    tls = body["tls"]
    assert list(tls["client_cert_chain"]) == []
    assert tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] in (0x0303, 0x0304)


def test_plaintext_has_no_tls_extension(serve: ServerFactory) -> None:
    server = serve(app=APP)
    assert httpx.get(server.url("/")).json()["tls"] is None


def test_the_mtls_how_to_app_works_as_documented(serve: ServerFactory, ca: trustme.CA, tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "how-to" / "mtls.md").read_text(encoding="utf-8")
    code = page.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "mtls_doc_app.py").write_text(code)
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = serve(
        "--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"),
        "--ca-certs", str(tmp_path / "ca.pem"), "--cert-reqs", "1",
        app="mtls_doc_app:app", chdir=tmp_path, tls=_client_context(ca, None),
    )  # fmt: skip
    leaf = ca.issue_cert("alice@example.com", common_name="alice")
    allowed = httpx.get(server.url("/"), verify=_client_context(ca, leaf))
    assert allowed.status_code == 200
    assert allowed.text.startswith("hello CN=alice,OU=")
    refused = httpx.get(server.url("/"), verify=_client_context(ca, None))
    assert refused.status_code == 403
