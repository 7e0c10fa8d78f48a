"""Access logs and statsd metrics through Gunicorn's logger, and Gunicorn's request hooks."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx

from tests.worker_fixture import ServerFactory, serve_fixture, until  # noqa: F401


def test_access_log_format_atoms(serve: ServerFactory, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    log_format = (
        '%(h)s "%(r)s" %(s)s %(b)s %(L)s ua=%({user-agent}i)s out=%({x-test}o)s '
        "m=%(m)s U=%(U)s q=%(q)s H=%(H)s u=%(u)s missing=%({x-none}i)s"
    )
    server = serve("--access-logfile", str(access), "--access-logformat", log_format)
    httpx.get(server.url("/status?code=201"), headers={"user-agent": "probe/1.0"}, auth=("alice", "secret"))
    until(lambda: "/status" in access.read_text(), 5, "no access log line")
    line = next(line for line in access.read_text().splitlines() if "/status" in line)
    expected = (
        r'127\.0\.0\.1 "GET /status\?code=201 HTTP/1\.1" 201 6 \d+\.\d{6} ua=probe/1\.0 out=yes '
        r"m=GET U=/status q=code=201 H=HTTP/1\.1 u=alice missing=-"
    )
    assert re.fullmatch(expected, line), line


def test_statsd_metrics_are_sent_without_an_access_log(serve: ServerFactory) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(5)
        port = statsd.getsockname()[1]
        server = serve("--statsd-host", f"127.0.0.1:{port}", "--statsd-prefix", "web")
        httpx.get(server.url("/status?code=404"))
        packets: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("status.404" in p for p in packets):
            try:
                packets.append(statsd.recv(4096).decode())
            except TimeoutError:
                break
    assert "web.gunicorn.request.status.404:1|c|@1.0" in packets
    assert any(re.fullmatch(r"web\.gunicorn\.requests:1\|c\|@1\.0", p) for p in packets)
    assert any(re.fullmatch(r"web\.gunicorn\.request\.duration:[\d.]+\|ms", p) for p in packets)


def test_pre_request_and_post_request_hooks(serve: ServerFactory, tmp_path: Path) -> None:
    hooks_log = tmp_path / "hooks.log"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        f"LOG = {str(hooks_log)!r}\n"
        "def pre_request(worker, req):\n"
        "    with open(LOG, 'a') as f:\n"
        "        f.write(f'pre {req.method} {req.path} {req.query}\\n')\n"
        "def post_request(worker, req, environ, resp):\n"
        "    with open(LOG, 'a') as f:\n"
        "        f.write(f'post {req.uri} {resp.status} {environ[\"REMOTE_ADDR\"]}\\n')\n"
    )
    server = serve("--config", str(config))
    httpx.get(server.url("/status?code=202"))
    until(lambda: hooks_log.exists() and "post /status" in hooks_log.read_text(), 5, "hooks did not run")
    lines = [line for line in hooks_log.read_text().splitlines() if "/status" in line]
    assert lines == ["pre GET /status code=202", "post /status?code=202 202 127.0.0.1"]
