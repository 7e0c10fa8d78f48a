"""A real browser against a real Gunicorn master: headless Chromium (Debian's) loads a page over TLS from the
worker, and the page fetches JSON, posts a 4 MiB body and opens a WebSocket, then posts what it saw to
`/report`, which the app writes to a file this test reads (`tests/browser_app.py`).

Chromium trusts the throw-away certificate through `--ignore-certificate-errors-spki-list` (the hash of its
public key), runs with a fresh profile and without any background networking, and is stopped with its whole
process group when the test ends (`tests/browser_fixture.py`). HTTP/3 is in test_browser_chromium_h3.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.browser_app import REPORT_ENV, UPLOAD_SIZE
from tests.browser_fixture import ThrowAwayCertificate, run_chromium
from tests.worker_fixture import TESTS, ServerFactory


def test_chromium_loads_a_page_over_tls_and_uses_http2_and_a_websocket(tmp_path: Path) -> None:
    certificate = ThrowAwayCertificate.issue(tmp_path)
    report_path = tmp_path / "report.json"
    servers = ServerFactory(tmp_path)
    try:
        server = servers(
            *certificate.server_args(), "--http-protocols", "h2,h1",
            app="browser_app:app", chdir=TESTS, tls=certificate.client_context, env={REPORT_ENV: str(report_path)},
        )  # fmt: skip
        report = run_chromium(server.url("/?protocol=h2"), certificate, tmp_path, report_path, "--disable-quic")
        output = server.output()
    finally:
        servers.stop_all()

    assert "error" not in report, report
    assert report["page_protocol"] == "h2"  # the browser's own view: the page came over HTTP/2 by ALPN
    assert report["fetch"] == {"server_http_version": "2", "scheme": "https", "protocol": "h2"}
    assert report["fetch_protocols"] == ["h2"]
    assert report["upload"] == {"size": UPLOAD_SIZE, "intact": True, "server_http_version": "2", "protocol": "h2"}
    # Chromium carries the WebSocket over the page's HTTP/2 connection (RFC 8441 extended CONNECT), which the
    # server offers with SETTINGS_ENABLE_CONNECT_PROTOCOL.
    assert report["websocket"] == {"server_http_version": "2", "echo": "hello from chromium"}
    assert "Traceback" not in output
