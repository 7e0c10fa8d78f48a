#!/usr/bin/env python3
"""Bootstrap for a fresh machine: `python3 dev.py demo`, `python3 dev.py test`, `python3 dev.py check`.

`python3 dev.py demo-h2` serves the demo over TLS with HTTP/2 (ALPN h2, then HTTP/1.1) on a throw-away
self-signed certificate that it makes with `openssl` in `.tools/demo-tls/`.

Only the standard library is used here: it makes a private venv in `.tools/` holding a pinned hatch (system pip
is externally managed on Debian), then hands everything to hatch. Any other arguments go to hatch as they are.
"""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
BIN = TOOLS / ("Scripts" if os.name == "nt" else "bin")
HATCH = BIN / ("hatch.exe" if os.name == "nt" else "hatch")
HATCH_VERSION = "1.18.2"

DEMO_TLS = TOOLS / "demo-tls"
DEMO_ROUTES = """\
Demo routes (examples/demo_app.py):
  GET  /          plain text           curl http://127.0.0.1:{port}/
  GET  /json      JSON                 curl http://127.0.0.1:{port}/json
  GET  /stream    ten streamed chunks  curl -N http://127.0.0.1:{port}/stream
  POST /echo      the body back        curl --data-binary 'hi' http://127.0.0.1:{port}/echo
  WS   /ws        WebSocket echo       in a browser's console on http://127.0.0.1:{port}/:
                  w = new WebSocket("ws://127.0.0.1:{port}/ws"); w.onmessage = e => console.log(e.data);
                  w.onopen = () => w.send("hi")
HTTP/2: `python3 dev.py demo-h2` serves the same app over TLS on port {h2_port} with a throw-away
certificate, then `curl -k --http2 https://127.0.0.1:{h2_port}/json` (its http_version says "2").
"""

SHORTCUTS = {
    "demo": ["run", "demo"],
    "docs": ["run", "docs:build"],
}


def ensure_hatch() -> None:
    if HATCH.exists():
        return
    venv.create(TOOLS, with_pip=True)
    subprocess.check_call([str(BIN / "python"), "-m", "pip", "install", "-q", f"hatch=={HATCH_VERSION}"])


def demo_certificate(directory: Path = DEMO_TLS) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (made once, kept): (certificate, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not (cert.exists() and key.exists()):
        openssl = shutil.which("openssl")
        if openssl is None:
            raise SystemExit(
                "demo-h2 makes its certificate with openssl: install it (Debian: apt-get install openssl)"
            )
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.check_call(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-days", "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    return cert, key


def demo_h2_args(cert: Path, key: Path) -> list[str]:
    """What `dev.py demo-h2` adds to the demo's `gunicorn-asgi` command (the tests serve the demo with it)."""
    return ["--certfile", str(cert), "--keyfile", str(key), "--http-protocols", "h2,h1"]


def main() -> int:
    args = sys.argv[1:] or ["test"]
    if args[0] == "bench":  # the benchmark makes its own venvs per server; it needs no hatch
        return subprocess.call([sys.executable, str(ROOT / "bench" / "run.py"), *args[1:]], cwd=ROOT)
    ensure_hatch()
    port = int(os.environ.get("PORT", "8000"))
    if args[0] == "demo":
        print(DEMO_ROUTES.format(port=port, h2_port=port + 443), flush=True)
    if args[0] == "demo-h2":
        cert, key = demo_certificate()
        print(f"HTTP/2 over TLS: curl -k --http2 https://127.0.0.1:{port + 443}/json", flush=True)
        where = ["--no-control-socket", "--bind", f"127.0.0.1:{port + 443}", "--chdir", str(ROOT / "examples")]
        args = ["run", "gunicorn-asgi", *where, *demo_h2_args(cert, key), *args[1:], "demo_app:app"]
    if args[0] == "wheels":
        # What a release uploads: every package as a pure wheel (and sdist) in dist/, the fallback anywhere, and
        # asgi-core, asgi-http1 and asgi-h2 compiled with mypyc for this platform and Python in dist/compiled/.
        status = subprocess.call([str(HATCH), "build", "--all"], cwd=ROOT)
        compiled = [
            sys.executable,
            str(ROOT / "tools" / "compiled_wheels.py"),
            "--out",
            str(ROOT / "dist" / "compiled"),
        ]
        return status or subprocess.call([*compiled, *args[1:]], cwd=ROOT)
    if args[0] in SHORTCUTS:
        args = [*SHORTCUTS[args[0]], *args[1:]]
    return subprocess.call([str(HATCH), *args], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
