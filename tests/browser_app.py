"""The app and page that the Chromium tests serve through a real Gunicorn master (`--chdir tests browser_app:app`).

The page (`/?protocol=h2` or `/?protocol=h3`) fetches `/info` until the browser says the fetch came over that
protocol (Chromium moves to HTTP/3 only after a response named it in `Alt-Svc`, so the first fetches may
still ride the page's HTTP/2 connection), then posts a 4 MiB body and opens a WebSocket, and finally posts what
it saw to `/report`, which the app writes to the file named by BROWSER_TEST_REPORT. Every step is recorded, an
exception included. With BROWSER_TEST_ALT_SVC set, every HTTP response carries that `Alt-Svc` of the app's own.

This module holds no tests and imports nothing but the standard library, as the worker imports it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

UPLOAD_SIZE = 4 * 1024 * 1024  # far above HTTP/2's 64 KiB initial windows and QUIC's: flow control both ways
REPORT_ENV = "BROWSER_TEST_REPORT"
ALT_SVC_ENV = "BROWSER_TEST_ALT_SVC"

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>gunicorn-asgi browser test</title></head>
<body><pre id="out">running</pre>
<script>
const SIZE = %(size)d;
const query = new URLSearchParams(location.search);
const WANTED = query.get("protocol");
const PATIENCE_MS = Number(query.get("patience_ms") || 10000);
const report = {};
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
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
    const started = performance.now();
    const protocols = [];
    let info;
    do {
      if (protocols.length) await sleep(100);
      const path = "/info?attempt=" + protocols.length;
      info = await (await fetch(path, {cache: "no-store"})).json();
      protocols.push(protocolOf(path));
    } while (protocols[protocols.length - 1] !== WANTED && performance.now() - started < PATIENCE_MS);
    report.fetch = {server_http_version: info.http_version, scheme: info.scheme, protocol: protocols.at(-1)};
    report.fetch_protocols = protocols;
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


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["http_version"]})  # over HTTP/3, HTTP/2 or 1.1?
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
    headers = [(b"content-type", content_type)]
    if alt_svc := os.environ.get(ALT_SVC_ENV):
        headers.append((b"alt-svc", alt_svc.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
