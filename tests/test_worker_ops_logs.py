"""--access-log-json through a real Gunicorn master: every access-log line is one JSON object whose fields
match the requests sent (non-ASCII paths, quotes in headers, WebSocket sessions, HTTP/2 streams), from the
command line and from a config file; --access-logformat still applies with the flag off."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.worker_fixture import Server, ServerFactory, serve_fixture, until  # noqa: F401

PARSERS = ["h11", "httptools"]
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _lines(access: Path, count: int) -> list[dict[str, Any]]:
    until(lambda: access.exists() and len(access.read_text().splitlines()) >= count, 5, "access lines missing")
    text = access.read_text(encoding="ascii")  # escaped: ASCII whatever the paths and headers held
    return [json.loads(line) for line in text.splitlines()]  # every line parses, or this fails


def _worker_pid(server: Server) -> int:
    return int(httpx.get(server.url("/pid")).text)


@pytest.mark.parametrize("parser", PARSERS)
def test_every_line_is_json_with_the_fields_of_the_request(
    serve: ServerFactory, tmp_path: Path, parser: str
) -> None:
    access = tmp_path / "access.log"
    server = serve("--access-logfile", str(access), "--access-log-json", env={"ASGI_HTTP1_PARSER": parser})
    pid = _worker_pid(server)
    raw_agent = 'probe "quoted" \\ agent\tλ'.encode()  # quotes, a backslash, a tab, UTF-8 bytes
    agent = raw_agent.decode("latin-1")  # header bytes are logged as ISO-8859-1, as Gunicorn's atoms are
    response = httpx.get(
        server.url("/status?code=201&q=%22x%22"),
        headers={b"user-agent": raw_agent, b"referer": b'https://example.com/?a="b"', b"x-request-id": b"req-42"},
    )
    assert response.status_code == 201
    httpx.get(server.url("/caf%C3%A9/%E6%97%A5%E6%9C%AC"))
    httpx.post(server.url("/echo"), content=b"x" * 1000)
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
        time.sleep(0.3)  # the session lasts a while: its line comes when it ends, with that duration
    probe, *lines = _lines(access, 6)  # the fixture's readiness probe first
    assert probe["path"] == "/"
    assert len(lines) == 5
    first, status, cafe, echo, websocket = lines
    assert first["path"] == "/pid"
    assert status == {
        "time": status["time"],
        "remote_addr": "127.0.0.1",
        "method": "GET",
        "path": "/status",
        "query": "code=201&q=%22x%22",
        "status": 201,
        "bytes": 6,
        "duration_ms": status["duration_ms"],
        "protocol": "http",
        "http_version": "1.1",
        "user_agent": agent,
        "referer": 'https://example.com/?a="b"',
        "request_id": "req-42",
        "pid": pid,
    }
    assert RFC3339.fullmatch(status["time"])
    assert isinstance(status["duration_ms"], float)
    assert status["duration_ms"] >= 0
    assert cafe["path"] == "/café/日本"
    assert cafe["user_agent"].startswith("python-httpx/")
    assert cafe["referer"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", cafe["request_id"])  # none sent: one is made per request
    assert cafe["request_id"] != echo["request_id"]
    assert (echo["method"], echo["status"], echo["bytes"]) == ("POST", 200, 4)
    assert (websocket["protocol"], websocket["status"], websocket["path"]) == ("websocket", 101, "/ws")
    assert websocket["close_code"] == 1000  # the client closed normally
    assert websocket["duration_ms"] >= 300
    assert all(line["pid"] == pid for line in lines)


def test_http2_streams_log_like_requests_and_a_config_file_sets_it(serve: ServerFactory, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(f"accesslog = {str(access)!r}\naccess_log_json = True\n")
    server = serve(
        "--config", str(config), "--http-protocols", "h1,h2", "--http2-cleartext", "prior-knowledge", wait=False
    )
    server.wait_for_output("(h2c: ")
    before = 0
    with httpx.Client(http1=False, http2=True) as client:
        for n in range(3):
            assert client.get(server.url(f"/status?code=20{n}")).http_version == "HTTP/2"
    lines = _lines(access, before + 3)[before:]
    assert [(line["http_version"], line["status"], line["protocol"]) for line in lines] == [
        ("2", 200, "http"),
        ("2", 201, "http"),
        ("2", 202, "http"),
    ]


def test_access_logformat_applies_with_the_flag_off(serve: ServerFactory, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve("--access-logfile", str(access), "--access-logformat", "%(m)s %(U)s %(s)s")
    httpx.get(server.url("/status?code=204"))
    until(lambda: "/status" in access.read_text(), 5, "no access line")
    assert "GET /status 204" in access.read_text().splitlines()


def test_json_log_lines_carry_the_worker_pid_across_workers(serve: ServerFactory, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve("--workers", "2", "--access-logfile", str(access), "--access-log-json")
    for _ in range(20):
        httpx.get(server.url("/"), headers={"connection": "close"})
    lines = _lines(access, 20)
    pids = {line["pid"] for line in lines}
    assert pids
    assert os.getpid() not in pids
    assert all(isinstance(pid, int) for pid in pids)


def test_statsd_metrics_are_still_sent_with_json_lines(serve: ServerFactory, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(5)
        port = statsd.getsockname()[1]
        server = serve("--access-logfile", str(access), "--access-log-json", "--statsd-host", f"127.0.0.1:{port}")
        httpx.get(server.url("/status?code=404"))
        packets: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("status.404" in p for p in packets):
            with contextlib.suppress(TimeoutError):
                packets.append(statsd.recv(4096).decode())
    assert "gunicorn.request.status.404:1|c|@1.0" in packets
    assert any(re.fullmatch(r"gunicorn\.request\.duration:[\d.]+\|ms", p) for p in packets)
    lines = _lines(access, 2)
    assert lines[-1]["status"] == 404  # one JSON line, no text line beside it
    assert len(access.read_text().splitlines()) == 2
