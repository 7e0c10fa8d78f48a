"""WebSocket floods against any server: what one abusive client costs the worker and the other clients.

    python3 bench/ws_floods.py                                   # ours: packages/asgi-ws/examples/echo_server.py
    python3 bench/ws_floods.py --duration 5 -- gunicorn-asgi --no-control-socket --bind 127.0.0.1:{port} \\
        --chdir packages/asgi-ws/examples echo_server:app
    python3 bench/ws_floods.py -- uvicorn --port {port} --app-dir packages/asgi-ws/examples echo_server:app

The server command (after `--`; `{port}` is replaced by a free loopback port) must serve a WebSocket echo app at
`/` on 127.0.0.1. Two cases, each `--duration` seconds (default 10):

- ping flood: one client sends 125-byte pings as fast as the server takes them and never reads a pong (its
  receive buffer is 4 KiB). Reported: the RSS of the server's processes (from /proc/PID/status, the command's
  process and its descendants) before, at peak and 1 s after the flooder left; when the server dropped the
  flooder, if it did; and how many of `--clients` other clients, started evenly over the flood, got their echo
  within 1 s of connecting.
- empty-continuation flood: one client sends a text frame without FIN, then zero-length continuation frames
  as fast as it can (reconnecting when the server closes it). Reported: the other clients' echo latency.

Only the standard library is used, every wait is bounded, load goes to 127.0.0.1 only, and the server process
started here is stopped (SIGTERM, then SIGKILL) by its PID at the end.
"""

from __future__ import annotations

import argparse
import base64
import os
import shlex
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = [sys.executable, str(ROOT / "packages/asgi-ws/examples/echo_server.py"), "--port", "{port}"]
ANSWER_LIMIT = 1.0  # seconds an other client may wait for its echo and still count as served
LATENCY_CAP = 5.0  # an other client waits at most this long for its echo
PING = b"\x89\xfd\x00\x00\x00\x00" + b"p" * 125  # masked (zero key) ping, 125 bytes of payload
TEXT_START = b"\x01\x85\x00\x00\x00\x00hello"  # text frame without FIN
EMPTY_CONTINUATION = b"\x00\x80\x00\x00\x00\x00"


# ---- a WebSocket client on a plain socket ----------------------------------------------------------------


def open_websocket(port: int, *, receive_buffer: int | None = None, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        status = head.split(b"\r\n", 1)[0]
        raise ConnectionError(f"handshake refused: {status!r}")
    return sock


def text_frame(text: str) -> bytes:
    payload = text.encode()
    return bytes((0x81, 0x80 | len(payload))) + b"\x00\x00\x00\x00" + payload  # short texts only


def read_text(sock: socket.socket, deadline: float) -> str:
    """The next text message's payload (control frames skipped); raises TimeoutError past `deadline`."""
    buffer = b""
    while True:
        if len(buffer) >= 2:  # noqa: PLR2004 - the fixed header
            size, start = buffer[1] & 0x7F, 2
            if size == 126:  # noqa: PLR2004
                size, start = struct.unpack("!H", buffer[2:4])[0], 4
            elif size == 127:  # noqa: PLR2004
                size, start = struct.unpack("!Q", buffer[2:10])[0], 10
            if len(buffer) >= start + size:
                opcode, payload = buffer[0] & 0x0F, buffer[start : start + size]
                buffer = buffer[start + size :]
                if opcode == 1:
                    return payload.decode()
                if opcode == 8:  # noqa: PLR2004
                    raise ConnectionError("closed by the server")
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        buffer += chunk


# ---- the server under test -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(command: list[str], port: int) -> subprocess.Popen[bytes]:
    argv = [part.replace("{port}", str(port)) for part in command]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}: {shlex.join(argv)}")
        try:
            open_websocket(port, timeout=1).close()
        except OSError:
            time.sleep(0.1)
        else:
            return process
    stop_server(process)
    raise SystemExit(f"server did not answer a WebSocket handshake within 20 s: {shlex.join(argv)}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants (a Gunicorn master and its workers), in MiB."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# ---- the cases -------------------------------------------------------------------------------------------


@dataclass
class Others:
    """Clients started evenly over a flood, each timing one echo from the start of its connection."""

    latencies: list[float | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def one(self, port: int) -> None:
        started = time.monotonic()
        latency: float | None = None
        try:
            with open_websocket(port, timeout=LATENCY_CAP) as sock:
                sock.sendall(text_frame("are you there"))
                if read_text(sock, started + LATENCY_CAP) == "are you there":
                    latency = time.monotonic() - started
        except (OSError, TimeoutError, ConnectionError):
            latency = None
        with self.lock:
            self.latencies.append(latency)

    def run(self, port: int, count: int, duration: float) -> list[threading.Thread]:
        threads = []
        for index in range(count):
            time.sleep(duration / (count + 1) if index else duration / (count + 1) / 2)
            thread = threading.Thread(target=self.one, args=(port,), daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def summary(self) -> str:
        answered = [latency for latency in self.latencies if latency is not None]
        within = sum(1 for latency in answered if latency <= ANSWER_LIMIT)
        text = f"{within} of {len(self.latencies)} other clients answered within {ANSWER_LIMIT:g} s"
        if answered:
            text += (
                f"; latency median {statistics.median(answered) * 1000:.0f} ms, "
                f"max {max(answered) * 1000:.0f} ms ({len(self.latencies) - len(answered)} unanswered"
                f" within {LATENCY_CAP:g} s)"
            )
        return text


def ping_flood(port: int, server_pid: int, duration: float, clients: int) -> list[str]:
    baseline = rss_mib(server_pid)
    peak = [baseline]
    stop = threading.Event()
    dropped_after: list[float] = []
    sent = [0]

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(server_pid))
            time.sleep(0.1)

    def flood() -> None:
        started = time.monotonic()
        burst = PING * 64
        try:
            with open_websocket(port, receive_buffer=4096) as sock:
                sock.settimeout(0.5)
                while not stop.is_set():
                    try:
                        sock.sendall(burst)
                        sent[0] += len(burst)
                    except TimeoutError:
                        continue  # the server is not reading: try again until the case ends
        except OSError:
            dropped_after.append(time.monotonic() - started)

    threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=flood, daemon=True)]
    for thread in threads:
        thread.start()
    others = Others()
    started = time.monotonic()
    waiting = others.run(port, clients, duration)
    time.sleep(max(0.0, duration - (time.monotonic() - started)))
    stop.set()
    for thread in [*threads, *waiting]:
        thread.join(LATENCY_CAP + 1)
    time.sleep(1.0)
    after = rss_mib(server_pid)
    dropped = f"dropped by the server after {dropped_after[0]:.1f} s" if dropped_after else "never dropped"
    return [
        f"ping flood ({duration:g} s, {sent[0] / 2**20:.1f} MiB of pings taken by the server, flooder {dropped})",
        f"  server RSS: {baseline:.1f} MiB before, {peak[0]:.1f} MiB peak (+{peak[0] - baseline:.1f}), "
        f"{after:.1f} MiB 1 s after the flooder left (+{after - baseline:.1f})",
        f"  {others.summary()}",
    ]


def continuation_flood(port: int, duration: float, clients: int) -> list[str]:
    stop = threading.Event()
    connections = [0]
    frames = [0]

    def flood() -> None:
        burst = EMPTY_CONTINUATION * 4096
        while not stop.is_set():
            try:
                with open_websocket(port) as sock:
                    connections[0] += 1
                    sock.sendall(TEXT_START)
                    sock.settimeout(0.5)
                    while not stop.is_set():
                        try:
                            sock.sendall(burst)
                            frames[0] += 4096
                        except TimeoutError:
                            continue
            except OSError:
                time.sleep(0.01)  # closed by the server (1009, say): start again

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    others = Others()
    started = time.monotonic()
    waiting = others.run(port, clients, duration)
    time.sleep(max(0.0, duration - (time.monotonic() - started)))
    stop.set()
    for thread in [flooder, *waiting]:
        thread.join(LATENCY_CAP + 1)
    return [
        f"empty-continuation flood ({duration:g} s, {frames[0]:,} frames sent over {connections[0]} connection(s))",
        f"  {others.summary()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], usage="%(prog)s [options] [-- command]")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per case (default 10)")
    parser.add_argument("--clients", type=int, default=19, help="other clients per case (default 19)")
    parser.add_argument("--cases", default="ping,continuation", help="ping, continuation or both (default)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the server command, {port} for its port")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    command = command or DEFAULT_SERVER
    cases = set(args.cases.split(","))
    report = [f"server: {shlex.join(command)}"]
    for case in ("ping", "continuation"):
        if case not in cases:
            continue
        port = free_port()  # a fresh server per case: one case's leftovers do not weigh on the next
        process = start_server(command, port)
        try:
            if case == "ping":
                report += ping_flood(port, process.pid, args.duration, args.clients)
            else:
                report += continuation_flood(port, args.duration, args.clients)
        finally:
            stop_server(process)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
