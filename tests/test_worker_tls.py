"""TLS from Gunicorn's settings: serving with trustme certificates made here, ALPN, client certificates,
the ssl_context hook, and refusing to start (never falling back to plaintext) when a certificate is bad."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from tests.worker_fixture import ServerFactory, serve_fixture  # noqa: F401

WORKER_BOOT_ERROR = 3


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_files(ca: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_serves_https_and_negotiates_http1_by_alpn(
    serve: ServerFactory, ca: trustme.CA, server_files: tuple[str, str]
) -> None:
    certfile, keyfile = server_files
    server = serve("--certfile", certfile, "--keyfile", keyfile, tls=client_context(ca))
    response = httpx.get(server.url("/scope"), verify=client_context(ca))
    assert response.json()["scheme"] == "https"
    context = client_context(ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.selected_alpn_protocol() == "http/1.1"  # h2 is not in --http-protocols
    # Plaintext on the TLS port is not served.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}/", timeout=3)
    assert "over TLS" in server.output()


def test_bad_certificates_stop_startup_instead_of_serving_plaintext(
    serve: ServerFactory, server_files: tuple[str, str], tmp_path: Path
) -> None:
    certfile, keyfile = server_files
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    missing = serve("--certfile", str(tmp_path / "absent.pem"), "--keyfile", keyfile, wait=False)
    cases = {
        "garbage": ("--certfile", str(garbage), "--keyfile", keyfile),
        "key without its certificate": ("--keyfile", keyfile),
        "mismatched key": ("--certfile", certfile, "--keyfile", certfile),
        "no usable cipher": ("--certfile", certfile, "--keyfile", keyfile, "--ciphers", "NO-SUCH-CIPHER"),
    }
    servers = {case: serve(*args, wait=False) for case, args in cases.items()}
    for case, server in servers.items():
        assert server.wait_exit() == WORKER_BOOT_ERROR, case
        output = server.output()
        assert "TLS is configured" in output, output
        assert "the worker will not serve plaintext instead" in output
        assert "Reason: Worker failed to boot." in output
    # A file that does not exist is refused by Gunicorn's master itself, before any worker starts.
    assert missing.wait_exit() != 0
    assert "does not exist" in missing.output()
    assert "Booting worker" not in missing.output()


def test_client_certificates_and_the_ssl_context_hook(
    serve: ServerFactory, ca: trustme.CA, server_files: tuple[str, str], tmp_path: Path
) -> None:
    certfile, keyfile = server_files
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        "import ssl\n"
        "def ssl_context(conf, default_ssl_context_factory):\n"
        "    context = default_ssl_context_factory()\n"
        "    context.minimum_version = ssl.TLSVersion.TLSv1_3\n"
        "    return context\n"
    )
    client_cert = ca.issue_cert("client@example.com")
    with_cert = client_context(ca)
    client_cert.configure_cert(with_cert)
    server = serve(
        "--config",
        str(config),
        "--certfile",
        certfile,
        "--keyfile",
        keyfile,
        "--ca-certs",
        str(tmp_path / "ca.pem"),
        "--cert-reqs",
        str(int(ssl.CERT_REQUIRED)),
        tls=with_cert,
    )

    def request(context: ssl.SSLContext) -> httpx.Response:
        return httpx.get(server.url("/"), verify=context, timeout=5)

    assert request(with_cert).text == "ok"
    with pytest.raises(httpx.HTTPError):
        request(client_context(ca))  # no client certificate: the handshake fails
    tls12 = client_context(ca)
    client_cert.configure_cert(tls12)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.HTTPError):
        request(tls12)  # the hook raised the minimum to TLS 1.3
