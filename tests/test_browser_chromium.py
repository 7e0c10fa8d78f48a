"""A real browser against a real Gunicorn master: headless Chromium (Debian's) loads a page over TLS from the
worker, and the page fetches JSON, posts a 4 MiB body and opens a WebSocket, then posts what it saw to
`/report`, which the app writes to a file this test reads.

Chromium trusts the throw-away certificate through `--ignore-certificate-errors-spki-list` (the hash of its
public key), runs with a fresh profile and without any background networking, and is stopped with its
whole process group when the test ends. The module is also the app (`--chdir tests test_browser_chromium:app`),
so it imports nothing at the top but the standard library.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

UPLOAD_SIZE = 4 * 1024 * 1024  # far above HTTP/2's 64 KiB initial windows: flow control both ways
BROWSER_DEADLINE = 45.0
REPORT_ENV = "BROWSER_TEST_REPORT"

# The page: every step is recorded, an exception included, and the whole report is posted back.
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>gunicorn-asgi browser test</title></head>
<body><pre id="out">running</pre>
<script>
const SIZE = %(size)d;
const report = {};
function protocolOf(path) {
  const entries = performance.getEntriesByType("resource").filter(e => e.name.endsWith(path));
  return entries.length ? entries[entries.length - 1].nextHopProtocol : null;
}
function echoOnce(url, text) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const seen = [];
    ws.onopen = () => ws.send(text);
    ws.onmessage = event => {
      seen.push(event.data);
      if (seen.length === 2) { ws.close(1000); resolve({server_http_version: seen[0], echo: seen[1]}); }
    };
    ws.onerror = () => reject(new Error("websocket error"));
    setTimeout(() => reject(new Error("websocket timeout")), 10000);
  });
}
(async () => {
  try {
    report.page_protocol = performance.getEntriesByType("navigation")[0].nextHopProtocol;
    const info = await (await fetch("/info")).json();
    report.fetch = {server_http_version: info.http_version, scheme: info.scheme, protocol: protocolOf("/info")};
    const body = new Uint8Array(SIZE);
    for (let i = 0; i < SIZE; i++) body[i] = i %% 251;
    const upload = await (await fetch("/upload", {method: "POST", body})).json();
    report.upload = {...upload, protocol: protocolOf("/upload")};
    report.websocket = await echoOnce("wss://" + location.host + "/ws", "hello from chromium");
  } catch (error) {
    report.error = String(error);
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(report)});
  document.getElementById("out").textContent = "done";
})();
</script></body></html>
""" % {b"size": UPLOAD_SIZE}


# ---- the app the worker serves ---------------------------------------------------------------------------


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["http_version"]})  # over HTTP/2 (RFC 8441) or 1.1?
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text") or ""})
        return
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    path = scope["path"]
    if path == "/info":
        answer = json.dumps({"http_version": scope["http_version"], "scheme": scope["scheme"]}).encode()
        await _reply(send, answer, b"application/json")
    elif path == "/upload":
        intact = body == bytes(i % 251 for i in range(len(body)))
        upload = {"size": len(body), "intact": intact, "server_http_version": scope["http_version"]}
        await _reply(send, json.dumps(upload).encode(), b"application/json")
    elif path == "/report":
        Path(os.environ[REPORT_ENV]).write_bytes(body)
        await _reply(send, b"thanks", b"text/plain")
    elif path == "/":
        await _reply(send, PAGE, b"text/html; charset=utf-8")
    else:
        await _reply(send, b"", b"text/plain", status=404)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _reply(send: Any, body: bytes, content_type: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


# ---- the test --------------------------------------------------------------------------------------------


def test_chromium_loads_a_page_over_tls_and_uses_http2_and_a_websocket(tmp_path: Path) -> None:
    import ssl

    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from tests.haproxy_fixture import install_debian_package
    from tests.worker_fixture import TESTS, ServerFactory

    browser = shutil.which("chromium") or install_debian_package("chromium")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    certificate = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    spki_hash = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    trust = ssl.create_default_context()
    ca.configure_trust(trust)

    report_path = tmp_path / "report.json"
    servers = ServerFactory(tmp_path)
    try:
        server = servers(
            "--certfile", str(tmp_path / "server.pem"), "--http-protocols", "h2,h1",
            app="test_browser_chromium:app", chdir=TESTS, tls=trust, env={REPORT_ENV: str(report_path)},
        )  # fmt: skip
        report = _run_chromium(browser, server.url("/"), spki_hash, tmp_path, report_path)
        output = server.output()
    finally:
        servers.stop_all()

    assert "error" not in report, report
    assert report["page_protocol"] == "h2"  # the browser's own view: the page came over HTTP/2 by ALPN
    assert report["fetch"] == {"server_http_version": "2", "scheme": "https", "protocol": "h2"}
    assert report["upload"] == {"size": UPLOAD_SIZE, "intact": True, "server_http_version": "2", "protocol": "h2"}
    # Chromium carries the WebSocket over the page's HTTP/2 connection (RFC 8441 extended CONNECT), which the
    # server offers with SETTINGS_ENABLE_CONNECT_PROTOCOL.
    assert report["websocket"] == {"server_http_version": "2", "echo": "hello from chromium"}
    assert "Traceback" not in output


def _run_chromium(browser: str, url: str, spki_hash: str, tmp_path: Path, report_path: Path) -> dict[str, Any]:
    """Start Chromium on `url` and return the report the page posted, within BROWSER_DEADLINE seconds."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    argv = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--ignore-certificate-errors-spki-list={spki_hash}", url,
    ]  # fmt: skip
    log_path = tmp_path / "chromium.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        deadline = time.monotonic() + BROWSER_DEADLINE
        while time.monotonic() < deadline:
            if report_path.exists() and report_path.stat().st_size:
                time.sleep(0.1)  # the app writes the file in one call; let it finish
                result: dict[str, Any] = json.loads(report_path.read_text())
                return result
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"Chromium reported nothing within {BROWSER_DEADLINE} s (exit {proc.poll()}):\n"
            + log_path.read_text(errors="replace")[-4000:]
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the group this test started: Chromium and its helpers
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
