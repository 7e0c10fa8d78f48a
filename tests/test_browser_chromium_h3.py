"""Chromium over HTTP/3 to a real Gunicorn master (`--http-protocols h3,h2,h1`), with the page, app and browser
of test_browser_chromium.py (`tests/browser_app.py`, `tests/browser_fixture.py`).

How a browser really gets there: the page loads over HTTP/2, its response carries the server's
`Alt-Svc: h3=":PORT"`, Chromium opens QUIC to that port in the background, and later requests go over HTTP/3.
The page fetches until Chromium itself reports `nextHopProtocol` "h3", then uploads over it.

Trusting the throw-away certificate for QUIC takes one more switch than for TCP. Chromium's QUIC refuses any
certificate that does not chain to a publicly known root, even one `--ignore-certificate-errors-spki-list`
accepts ("TLS handshake failure ... 46: certificate unknown" in its net log: ERR_QUIC_CERT_ROOT_NOT_KNOWN in
net/quic/crypto/proof_verifier_chromium.cc), except for the hosts named by `--origin-to-force-quic-on`, and that
exemption is by host, not port. So the Alt-Svc tests name 127.0.0.1 on port 9, where nothing is asked for:
QUIC is forced nowhere the page goes, the certificate is still trusted only by its key's hash, and only the
server's Alt-Svc moves Chromium to HTTP/3 (the second test is the control: the same flags, an app that
answers `Alt-Svc: clear`, and Chromium never leaves HTTP/2).

The third test is HTTP/3 itself rather than its discovery: QUIC forced on the server's own origin, so the page
too comes over HTTP/3, and Chromium's WebSockets over HTTP/3 (RFC 9220), off by default in Chromium 156, are
turned on with `--enable-features=EnableWebsocketsOverHttp3`. By default Chromium opens a page's WebSocket over
its HTTP/2 connection even when its fetches go over HTTP/3, as the first test shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser_app import ALT_SVC_ENV, REPORT_ENV, UPLOAD_SIZE
from tests.browser_fixture import ThrowAwayCertificate, quic_close_reasons, run_chromium
from tests.worker_fixture import TESTS, ServerFactory

#: Trust the SPKI-pinned certificate for QUIC to 127.0.0.1 without forcing QUIC on the origin under test
#: (see the module docstring): port 9 is never contacted.
QUIC_TRUST_FOR_LOOPBACK = "--origin-to-force-quic-on=127.0.0.1:9"


def serve_and_browse(
    tmp_path: Path, page: str, flags: list[str], env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """Serve browser_app with HTTP/3 on, run Chromium on `page` (`{port}` filled in), return (report, log)."""
    certificate = ThrowAwayCertificate.issue(tmp_path)
    report_path = tmp_path / "report.json"
    servers = ServerFactory(tmp_path)
    try:
        server = servers(
            # The page's HTTP/2 connection must outlive the slowest run's HTTP/3 upload: Chromium sends a WebSocket
            # over an HTTP/2 connection it has, and over HTTP/1.1 once keep-alive (2 s by default) closed it.
            *certificate.server_args(), "--http-protocols", "h3,h2,h1", "--keep-alive", "30",
            app="browser_app:app", chdir=TESTS, tls=certificate.client_context,
            env={REPORT_ENV: str(report_path), **(env or {})},
        )  # fmt: skip
        browser_flags = [flag.format(port=server.port) for flag in flags]
        report = run_chromium(server.url(page), certificate, tmp_path, report_path, *browser_flags)
        return report, server.output()
    finally:
        servers.stop_all()


def test_chromium_finds_http3_through_alt_svc_and_fetches_and_uploads_over_it(tmp_path: Path) -> None:
    report, output = serve_and_browse(tmp_path, "/?protocol=h3", ["--enable-quic", QUIC_TRUST_FOR_LOOPBACK])

    why = f"{report}; Chromium's QUIC sessions closed: {quic_close_reasons(tmp_path)}"
    assert "error" not in report, why
    assert report["page_protocol"] == "h2", why  # the first load: TCP, TLS, ALPN h2, and the Alt-Svc header
    *before, last = report["fetch_protocols"]
    assert last == "h3", why  # the browser's own view of the fetch
    assert set(before) <= {"h2"}, why  # until the QUIC connection was up, the page's HTTP/2 one
    assert report["fetch"] == {"server_http_version": "3", "scheme": "https", "protocol": "h3"}
    assert report["upload"] == {"size": UPLOAD_SIZE, "intact": True, "server_http_version": "3", "protocol": "h3"}
    # Chromium's default: a page's WebSocket is not sent over HTTP/3. It rides the page's HTTP/2 connection
    # (RFC 8441) while Chromium still uses that one; twice under the full suite's load, with 30 s of keep-alive on
    # our side, it went over a new HTTP/1.1 connection instead, once the fetches had moved to HTTP/3. RFC 8441
    # with Chromium is test_browser_chromium.py's; here, the WebSocket works and stays off HTTP/3.
    assert report["websocket"]["echo"] == "hello from chromium", why
    assert report["websocket"]["server_http_version"] in {"2", "1.1"}, why
    assert "Traceback" not in output


def test_an_apps_own_alt_svc_clear_keeps_chromium_on_http2(tmp_path: Path) -> None:
    # The control for the test above (same flags, same server, HTTP/3 up): what moves Chromium is the Alt-Svc
    # header, and an app's own replaces the server's. Above, HTTP/3 comes within a few hundred milliseconds.
    report, output = serve_and_browse(
        tmp_path,
        "/?protocol=h3&patience_ms=3000",
        ["--enable-quic", QUIC_TRUST_FOR_LOOPBACK],
        {ALT_SVC_ENV: "clear"},
    )

    assert "error" not in report, report
    assert report["page_protocol"] == "h2"
    assert len(report["fetch_protocols"]) > 10, report  # it kept asking for the whole 3 s
    assert set(report["fetch_protocols"]) == {"h2"}, report
    assert report["upload"] == {"size": UPLOAD_SIZE, "intact": True, "server_http_version": "2", "protocol": "h2"}
    assert "Traceback" not in output


def test_chromium_over_http3_only_page_fetch_upload_and_websocket(tmp_path: Path) -> None:
    # HTTP/3 itself, not its discovery: QUIC forced on the server's origin, WebSockets over HTTP/3 switched on.
    flags = [
        "--enable-quic",
        "--origin-to-force-quic-on=127.0.0.1:{port}",
        "--enable-features=EnableWebsocketsOverHttp3",
    ]
    report, output = serve_and_browse(tmp_path, "/?protocol=h3", flags)

    why = f"{report}; Chromium's QUIC sessions closed: {quic_close_reasons(tmp_path)}"
    assert "error" not in report, why
    assert report["page_protocol"] == "h3", why
    assert report["fetch_protocols"] == ["h3"], why
    assert report["fetch"] == {"server_http_version": "3", "scheme": "https", "protocol": "h3"}
    assert report["upload"] == {"size": UPLOAD_SIZE, "intact": True, "server_http_version": "3", "protocol": "h3"}
    # RFC 9220: an extended CONNECT on the QUIC connection, which the server offers in its HTTP/3 SETTINGS.
    assert report["websocket"] == {"server_http_version": "3", "echo": "hello from chromium"}
    assert "Traceback" not in output
