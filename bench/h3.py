"""The h3 scenario: HTTP/3 GET load on gunicorn-asgi (asgi-h3) and on hypercorn's HTTP/3 (`--quic-bind`).

Both servers run one worker on uvloop with the same app (bench/app.py, `/plaintext`) and a throwaway
certificate, pinned to one core; the aioquic load client (bench/clients/h3_load.py) runs on the other. The
figure compared is requests per CPU-second of the server's processes (the client, pure Python too, may be
the one that limits the rate), and the server's RSS after each round shows whether memory grows with load.
Rounds interleave the servers; each server keeps running across its rounds.

    python3 bench/h3.py                        # 3 rounds x 5 s, both servers
    python3 bench/h3.py --rounds 2 --duration 3 --servers ours

Ours runs with this interpreter (it needs the workspace packages: `python3 dev.py run python bench/h3.py`
or the hatch test env's python). hypercorn gets its own venv, bench/.venvs/hypercorn-h3, with hypercorn[h3]
and uvloop, installed on first use. Load goes to 127.0.0.1 only; every step has a time limit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLIENT = BENCH / "clients" / "h3_load.py"
HYPERCORN_VENV = BENCH / ".venvs" / "hypercorn-h3"
HYPERCORN_REQUIREMENT = "hypercorn[h3]==0.18.0"
READY_TIMEOUT = 30.0
TICKS = os.sysconf("SC_CLK_TCK")
#: Stand-ins for two gunicorn-asgi changes (see docs/how-to/http3.md): Gunicorn's own validator knows only h1
#: and h2, and the worker does not yet record its certificate files for aioquic.
OURS_CONFIG = (
    "import gunicorn.config\n"
    "gunicorn.config.VALID_HTTP_PROTOCOLS |= {'h3'}\n"
    "from asgi_h3 import ssl_context_hook as ssl_context\n"
)


@dataclass
class Round:
    rps: float
    cpu_seconds: float
    requests: int
    errors: int
    rss_mb: float
    p50_ms: float
    p99_ms: float

    @property
    def per_cpu_second(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds else 0.0


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    rounds: list[Round] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        port = int(tcp.getsockname()[1])
        udp.bind(("127.0.0.1", port))  # free for UDP too
        return port


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def hypercorn_python() -> Path:
    python = HYPERCORN_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {HYPERCORN_REQUIREMENT} into {HYPERCORN_VENV}", flush=True)
        venv.create(HYPERCORN_VENV, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", HYPERCORN_REQUIREMENT, "uvloop"], check=True, timeout=600
        )
    return python


def pinned(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def start(name: str, args: argparse.Namespace, cert: Path, key: Path, workdir: Path) -> Running:
    port = free_port()
    tls = ["--certfile", str(cert), "--keyfile", str(key)]
    if name == "ours":
        config = workdir / "gunicorn_h3.conf.py"
        config.write_text(OURS_CONFIG)
        gunicorn_asgi = Path(sys.executable).parent / "gunicorn-asgi"
        argv = [str(gunicorn_asgi), "--no-control-socket", "--workers", "1", "--asgi-loop", "uvloop",
                "--config", str(config), "--bind", f"127.0.0.1:{port}", *tls, "--http-protocols", "h3,h1",
                "--keep-alive", "30", "--chdir", str(BENCH), "app:app"]  # fmt: skip
    elif name == "hypercorn":
        argv = [str(hypercorn_python()), "-m", "hypercorn", "--workers", "1", "--worker-class", "uvloop",
                "--bind", f"127.0.0.1:{port}", "--quic-bind", f"127.0.0.1:{port}", *tls,
                "--keep-alive", "30", "app:app"]  # fmt: skip
    else:
        raise SystemExit(f"unknown server {name!r}: ours or hypercorn")
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*pinned(args.server_cpu), *argv],
            cwd=BENCH,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    running = Running(name, proc, port, log)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}:\n{log.read_text()}")
        probe = client(args, port, probe=True)
        if probe.get("probe_status") == 200:  # noqa: PLR2004
            return running
        time.sleep(0.5)
    stop(running)
    raise SystemExit(f"{name} did not answer over HTTP/3 within {READY_TIMEOUT} s:\n{log.read_text()}")


def stop(running: Running) -> None:
    if running.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.proc.pid, signal.SIGTERM)
        try:
            running.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.proc.pid, signal.SIGKILL)
            running.proc.wait(5)


def session_pids(session: int) -> Iterator[int]:
    """The processes of a server: its session (the master and its workers)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session:  # field 6 of stat: the session id
                    yield int(entry)


def cpu_seconds(session: int) -> float:
    total = 0
    for pid in session_pids(session):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_mb(session: int) -> float:
    total = 0
    for pid in session_pids(session):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def client(args: argparse.Namespace, port: int, *, probe: bool = False) -> dict[str, float]:
    argv = [*pinned(args.client_cpu), sys.executable, str(CLIENT), "--port", str(port),
            "--connections", str(args.connections), "--streams", str(args.streams),
            "--duration", str(args.duration), "--path", "/plaintext"]  # fmt: skip
    if probe:
        argv += ["--probe", "--connections", "1"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=args.duration + 30, check=False)
    except subprocess.TimeoutExpired:
        return {}
    try:
        result: dict[str, float] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        if not probe:
            print(done.stderr.decode()[-2000:], file=sys.stderr)
        return {}
    return result


def measure(args: argparse.Namespace, running: Running) -> Round:
    session = running.proc.pid
    before = cpu_seconds(session)
    result = client(args, running.port)
    used = cpu_seconds(session) - before
    return Round(
        rps=float(result.get("rps", 0.0)),
        cpu_seconds=used,
        requests=int(result.get("requests", 0)),
        errors=int(result.get("errors", 0)),
        rss_mb=rss_mb(session),
        p50_ms=float(result.get("p50_ms", 0.0)),
        p99_ms=float(result.get("p99_ms", 0.0)),
    )


def report(servers: list[Running]) -> str:
    lines = [
        "| server | round | req/s | server CPU s | req per CPU-s | errors | p50 ms | p99 ms | RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for running in servers:
        for number, r in enumerate(running.rounds, 1):
            lines.append(
                f"| {running.name} | {number} | {r.rps:.0f} | {r.cpu_seconds:.2f} | {r.per_cpu_second:.0f} | "
                f"{r.errors} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.rss_mb:.1f} |"
            )
    medians = {s.name: statistics.median(r.per_cpu_second for r in s.rounds) for s in servers if s.rounds}
    lines.append("")
    for name, value in medians.items():
        lines.append(f"median requests per CPU-second, {name}: {value:.0f}")
    if "ours" in medians and medians.get("hypercorn"):
        lines.append(f"ours / hypercorn: {medians['ours'] / medians['hypercorn']:.2f}x")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="ours,hypercorn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--streams", type=int, default=16, help="requests in flight per connection")
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    if args.duration > 30 or args.rounds > 10:  # noqa: PLR2004 - the machine is shared: keep it bounded
        parser.error("at most 10 rounds of 30 s")
    if args.no_pin:
        args.server_cpu = args.client_cpu = None
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    with tempfile.TemporaryDirectory(prefix="h3-bench-") as tmp:
        workdir = Path(tmp)
        cert, key = make_certificate(workdir)
        servers: list[Running] = []
        try:
            servers.extend(start(name, args, cert, key, workdir) for name in names)
            for number in range(args.rounds):
                order = servers[number % len(servers) :] + servers[: number % len(servers)]
                for running in order:
                    running.rounds.append(measure(args, running))
                    print(f"round {number + 1} {running.name}: {running.rounds[-1]}", flush=True)
        finally:
            for running in servers:
                stop(running)
    print(report(servers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
