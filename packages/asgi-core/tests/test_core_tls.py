"""The ASGI TLS extension from a real in-memory TLS handshake (trustme certificates, no sockets)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from asgi_core import ConnectionInfo, build_http_scope, build_websocket_scope, tls_extension
from asgi_core._tls import _escape, record_server_certificate

_EXTENSIONS: dict[str, dict[str, object]] = {"http.response.trailers": {}}


def _handshake(client_cert: bool) -> tuple[ssl.SSLObject, ssl.SSLObject, trustme.LeafCert | None]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    leaf = None
    if client_cert:
        leaf = ca.issue_cert("alice@example.com", common_name='Alice, "the" tester', organization_name="Ex+mple")
        leaf.configure_cert(client_ctx)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    for _ in range(10):
        done = 0
        for side in (client, server):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done == 2:
            break
    # TLS 1.3 delivers the client's certificate to the server with its last flight; one more read settles it.
    return server, client, leaf


def test_client_certificate_chain_subject_version_and_cipher() -> None:
    server, _client, leaf = _handshake(client_cert=True)
    assert leaf is not None
    ext = tls_extension(server)
    chain = list(ext["client_cert_chain"])
    assert chain[0] == leaf.cert_chain_pems[0].bytes().decode()
    assert all(pem.startswith("-----BEGIN CERTIFICATE-----") for pem in chain)
    name = ext["client_cert_name"]
    assert name.startswith('CN=Alice\\, \\"the\\" tester,OU=')  # trustme makes a random OU
    assert name.endswith(",O=Ex\\+mple")
    assert ext["client_cert_error"] is None
    assert ext["server_cert"] is None
    assert ext["tls_version"] == {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}[server.version() or ""]
    assert isinstance(ext["cipher_suite"], int)
    assert 0 < ext["cipher_suite"] <= 0xFFFF
    if server.version() == "TLSv1.3":
        assert ext["cipher_suite"] in (0x1301, 0x1302, 0x1303)


def test_without_a_client_certificate_the_fields_say_so() -> None:
    server, _client, _leaf = _handshake(client_cert=False)
    ext = tls_extension(server)
    assert list(ext["client_cert_chain"]) == []
    assert ext["client_cert_name"] is None
    assert ext["client_cert_error"] is None
    assert isinstance(ext["tls_version"], int)


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_scopes_carry_the_extension_without_touching_the_callers_dict(kind: str) -> None:
    server, _client, _leaf = _handshake(client_cert=True)
    conn = ConnectionInfo(("127.0.0.1", 1), ("127.0.0.1", 2), "https", server, None, tls_extension(server))
    common = {"conn": conn, "http_version": "1.1", "target": b"/", "headers": [], "root_path": "", "state": None}
    if kind == "http":
        scope = build_http_scope(method="GET", extensions=_EXTENSIONS, **common)  # type: ignore[arg-type]
    else:
        scope = build_websocket_scope(extensions=_EXTENSIONS, **common)  # type: ignore[arg-type]
    assert scope["extensions"]["tls"] is conn.tls_extension
    assert scope["extensions"]["http.response.trailers"] == {}
    assert _EXTENSIONS == {"http.response.trailers": {}}  # the shared constant is left alone
    plain = ConnectionInfo(("127.0.0.1", 1), ("127.0.0.1", 2), "http")
    common["conn"] = plain
    scope = build_http_scope(method="GET", extensions=_EXTENSIONS, **common)  # type: ignore[arg-type]
    assert "tls" not in scope["extensions"]


def test_rfc4514_escaping() -> None:
    assert _escape("#a ") == "\\#a\\ "
    assert _escape(" lead") == "\\ lead"
    assert _escape("a;b<c>d\\e") == "a\\;b\\<c\\>d\\\\e"


def test_the_server_certificate_is_reported_once_recorded(tmp_path: Path) -> None:
    server, _client, _leaf = _handshake(client_cert=False)
    assert tls_extension(server)["server_cert"] is None  # Python's ssl cannot tell it
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    certfile = tmp_path / "chain.pem"
    certfile.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))  # leaf, then its issuers
    record_server_certificate(server.context, str(certfile))
    assert tls_extension(server)["server_cert"] == leaf.cert_chain_pems[0].bytes().decode()
