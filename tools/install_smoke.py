#!/usr/bin/env python3
"""Install the server from a clone as the README says, into a fresh venv, and check it serves fast by default.

    python3 tools/install_smoke.py [--clone DIR]

Makes a venv in a temporary directory, runs the README's install command there (`pip install ./packages/*/`,
one pip call so the packages find each other locally, never on PyPI), starts `gunicorn-asgi` on the demo app on a
free loopback port, and checks that a request is answered, over HTTP/1.1 and h2c, by the httptools head parser on
uvloop. Exits non-zero with the reason otherwise. CI runs it on a fresh clone (`.ci/run`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clone", type=Path, default=ROOT, help="the checkout to install from")
    args = parser.parse_args()
    clone: Path = args.clone.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        packages = sorted(
            str(path) + "/" for path in (clone / "packages").iterdir() if (path / "pyproject.toml").exists()
        )
        pip = [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *packages,
        ]
        subprocess.run(pip, check=True, timeout=900, cwd=clone)
        port = free_port()
        log = Path(tmp) / "server.log"
        command = [str(venv / "bin" / "gunicorn-asgi"), "--no-control-socket", "--bind", f"127.0.0.1:{port}"]
        command += ["--chdir", str(clone / "examples"), "--http-protocols", "h1,h2", "--http2-cleartext", "both"]
        with log.open("wb") as output:
            server = subprocess.Popen([*command, "demo_app:app"], stdout=output, stderr=subprocess.STDOUT)
        try:
            answer = wait_for_json(f"http://127.0.0.1:{port}/json")
            engine = subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-c",
                    "import asgi_http1._parsers as p; print(p.select_parser().__name__)",
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        text = log.read_text(errors="replace")
        problems = []
        if answer.get("http_version") != "1.1":
            problems.append(f"unexpected answer {answer}")
        if " on uvloop" not in text:
            problems.append("the worker does not run on uvloop by default")
        if engine != "FastHeads":
            problems.append(f"the HTTP/1.1 head parser by default is {engine}, not the httptools one")
        if "h2" not in text.split("serving", 1)[-1].split("\n", 1)[0]:
            problems.append("HTTP/2 is not served by the plain install")
        if problems:
            print("install smoke test failed:\n- " + "\n- ".join(problems) + "\n\n" + text, file=sys.stderr)
            return 1
        print(f"installed from {clone} and served: {json.dumps(answer)}")
        return 0


def wait_for_json(url: str, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL we built
                loaded: dict[str, object] = json.loads(response.read())
                return loaded
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    os.environ.pop("ASGI_HTTP1_PARSER", None)
    sys.exit(main())
