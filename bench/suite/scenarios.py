"""The scenarios: what load each one drives, how a server is checked before it, and how its output is read."""

from __future__ import annotations

import http
import http.client
import json
import re
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app import ONE_MIB, PLAINTEXT, STREAM_CHUNKS

from .procs import pinned
from .servers import BENCH

POST_BODY = b"x" * (16 * 1024)  # what wrk/post.lua sends
PROBE_MESSAGES = 3


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    driver: str  # "wrk", "h2load", "ws", "memory"
    path: str = "/plaintext"
    connections: int = 64
    protocol: str = "http"  # how the server listens: "http", "h2" (TLS) or "uwsgi" (behind nginx)
    close: bool = False
    post: bool = False
    streams: int = 16  # h2load only: concurrent streams per connection (`-m`)

    def load_line(self) -> str:
        if self.driver == "wrk":
            request = f"POST {self.path} with 16 KiB (wrk/post.lua)" if self.post else f"GET {self.path}"
            request += ", Connection: close" if self.close else ""
            request += ", through nginx uwsgi_pass" if self.protocol == "uwsgi" else ""
            return f"wrk -t1 -c{self.connections} --latency, {request}"
        if self.driver == "h2load":
            return f"h2load -t1 -c{self.connections} -m{self.streams} over TLS (h2 by ALPN), GET {self.path}"
        if self.driver == "ws":
            return f"clients/ws_load.py: {self.connections} connections, 64-byte text messages echoed"
        return "clients/conn_churn.py: connections opened and closed, then idle keep-alive connections held"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("plaintext", "plaintext GET, keep-alive", "wrk"),
        Scenario("json", "small JSON response", "wrk", path="/json"),
        Scenario("post", "POST 16 KiB, echoed back", "wrk", path="/echo", post=True),
        Scenario("close", "GET with Connection: close", "wrk", connections=32, close=True),
        Scenario("stream", "streamed response, 10 small chunks", "wrk", path="/stream"),
        Scenario("1mib", "1 MiB response", "wrk", path="/1mib", connections=16),
        Scenario("ws", "WebSocket echo, 32 connections x 64-byte messages", "ws", path="/ws", connections=32),
        Scenario("h2", "HTTP/2 over TLS, 8 connections x 16 streams", "h2load", connections=8, protocol="h2"),
        Scenario(
            "h2-1", "HTTP/2 over TLS, 8 connections x 1 stream", "h2load", connections=8, protocol="h2", streams=1
        ),
        Scenario(
            "h2-100",
            "HTTP/2 over TLS, 8 connections x 100 streams",
            "h2load",
            connections=8,
            protocol="h2",
            streams=100,
        ),
        Scenario("uwsgi", "plaintext through nginx uwsgi_pass", "wrk", connections=32, protocol="uwsgi"),
        Scenario("memory", "RSS across connection churn and idle keep-alive connections", "memory"),
    )
}


@dataclass
class Measurement:
    requests: int
    seconds: float
    errors: int
    p99_ms: float | None
    detail: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


# ---- probes: one correct answer before any load ---------------------------------------------------------


def _expected(scenario: Scenario) -> bytes:
    return {
        "/plaintext": PLAINTEXT,
        "/json": json.dumps({"message": "Hello, world!"}).encode(),
        "/echo": POST_BODY,
        "/stream": b"".join(STREAM_CHUNKS),
        "/1mib": ONE_MIB,
    }[scenario.path]


def probe_http(scenario: Scenario, port: int) -> str | None:
    """None if the server answers the scenario's request correctly; else what was wrong."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Connection": "close"} if scenario.close else {}
        if scenario.post:
            conn.request("POST", scenario.path, body=POST_BODY, headers=headers)
        else:
            conn.request("GET", scenario.path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    if response.status != http.HTTPStatus.OK:
        return f"status {response.status}: {body[:200]!r}"
    expected = _expected(scenario)
    if scenario.path == "/json":
        return None if json.loads(body) == json.loads(expected) else f"wrong JSON body {body[:200]!r}"
    if body != expected:
        return f"wrong body ({len(body)} bytes, expected {len(expected)}): {body[:80]!r}"
    return None


def probe_h2(port: int, cpu: int | None) -> str | None:
    command = pinned(cpu, ["h2load", "-n", "4", "-c", "1", "-m", "1", f"https://127.0.0.1:{port}/plaintext"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if "Application protocol: h2" not in done.stdout:
        return f"no h2 by ALPN: {(done.stdout + done.stderr).strip()[-300:]}"
    if not re.search(r"requests: 4 total, 4 started, 4 done, 4 succeeded", done.stdout):
        return f"h2 requests failed: {done.stdout.strip()[-300:]}"
    return None


def probe_ws(python: str, port: int, cpu: int | None) -> str | None:
    command = [python, str(BENCH / "clients" / "ws_load.py"), "--port", str(port), "--connections", "1"]
    command += ["--duration", "5", "--probe-messages", str(PROBE_MESSAGES)]
    done = subprocess.run(pinned(cpu, command), capture_output=True, text=True, timeout=30, check=False)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"ws client failed: {done.stderr.strip()[-300:]}"
    if result["errors"] or result["round_trips"] < PROBE_MESSAGES:
        return f"ws echo failed: {result['first_error'] or 'no echo'}"
    return None


# ---- load drivers --------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> Measurement:
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", output)
    if total is None:
        raise ValueError(f"no request count in wrk output: {output[-500:]}")
    seconds = _latency_ms(total[2] + total[3]) / 1000
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    non2xx = int(bad[1]) if bad else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.MULTILINE)
    return Measurement(
        requests=int(total[1]) - non2xx,
        seconds=seconds,
        errors=non2xx + socket_errors,
        p99_ms=_latency_ms(p99[1]) if p99 else None,
        detail=f"non-2xx {non2xx}, socket errors {socket_errors}" if non2xx or socket_errors else "",
    )


def run_wrk(scenario: Scenario, port: int, duration: float, cpu: int | None) -> Measurement:
    command = ["wrk", "-t1", f"-c{scenario.connections}", f"-d{max(1, round(duration))}s", "--latency"]
    command += ["--timeout", "5s"]
    if scenario.post:
        command += ["-s", str(BENCH / "wrk" / "post.lua")]
    if scenario.close:
        command += ["-H", "Connection: close"]
    command.append(f"http://127.0.0.1:{port}{scenario.path}")
    done = subprocess.run(pinned(cpu, command), capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return parse_wrk(done.stdout)


def parse_h2load(output: str, log: Path | None) -> Measurement:
    finished = re.search(r"finished in ([\d.]+)(us|ms|s|m),", output)
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
        r"(\d+) timeout",
        output,
    )
    if finished is None or counts is None:
        raise ValueError(f"unreadable h2load output: {output[-500:]}")
    succeeded, failed, errored, timeouts = (int(counts[i]) for i in (4, 5, 6, 7))
    p99 = None
    if log is not None and log.exists():
        # One line per request: start time, status, elapsed microseconds.
        rows = (line.split("\t") for line in log.read_text().splitlines())
        elapsed = [int(row[2]) for row in rows if len(row) > 2]  # noqa: PLR2004
        if len(elapsed) > 1:
            p99 = statistics.quantiles(elapsed, n=100)[98] / 1000
    return Measurement(
        requests=succeeded,
        seconds=_latency_ms(finished[1] + finished[2]) / 1000,
        errors=failed + errored + timeouts,
        p99_ms=p99,
    )


def run_h2load(scenario: Scenario, port: int, duration: float, cpu: int | None, log: Path) -> Measurement:
    log.unlink(missing_ok=True)
    command = ["h2load", "-t1", f"-c{scenario.connections}", f"-m{scenario.streams}"]
    command += ["-D", str(max(1, round(duration))), "--log-file", str(log)]
    command.append(f"https://127.0.0.1:{port}{scenario.path}")
    done = subprocess.run(pinned(cpu, command), capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"h2load failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-300:]}")
    measurement = parse_h2load(done.stdout, log)
    log.unlink(missing_ok=True)
    return measurement


def run_ws(python: str, scenario: Scenario, port: int, duration: float, cpu: int | None) -> Measurement:
    command = [python, str(BENCH / "clients" / "ws_load.py"), "--port", str(port)]
    command += ["--connections", str(scenario.connections), "--duration", str(duration), "--path", scenario.path]
    done = subprocess.run(pinned(cpu, command), capture_output=True, text=True, timeout=duration + 60, check=False)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"ws client failed: {done.stderr.strip()[-300:]}") from None
    return Measurement(
        requests=int(result["round_trips"]),
        seconds=float(result["seconds"]),
        errors=int(result["errors"]),
        p99_ms=float(result["p99_ms"]) if result["round_trips"] else None,
        detail=result["first_error"] or "",
    )
