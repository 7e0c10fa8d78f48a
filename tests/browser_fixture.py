"""Headless Chromium (Debian's) on a page of a test server, with a throw-away certificate and profile.

    from tests.browser_fixture import ThrowAwayCertificate, run_chromium

    certificate = ThrowAwayCertificate.issue(tmp_path)   # --certfile/--keyfile for the server
    report = run_chromium(url, certificate, tmp_path, report_path, "--disable-quic")

`run_chromium` starts Chromium in its own session with a fresh profile, no background networking, and trust in
exactly one certificate: `--ignore-certificate-errors-spki-list` names the SHA-256 of its public key, so any
other certificate still fails. It waits for the page to post its report (the app writes it to `report_path`),
returns it, and stops Chromium's whole process group, within BROWSER_DEADLINE seconds. Chromium writes its net
log beside the profile; `quic_close_reasons` reads why its QUIC sessions ended, for failure messages.

This module holds no tests.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BROWSER_DEADLINE = 45.0


@dataclass(frozen=True)
class ThrowAwayCertificate:
    """A leaf for 127.0.0.1 and localhost from a fresh trustme CA that nothing trusts."""

    certfile: Path
    keyfile: Path
    spki_sha256: str  # base64, as --ignore-certificate-errors-spki-list takes it
    client_context: ssl.SSLContext  # trusts the CA: for the test's own requests (the fixture's readiness probe)

    @classmethod
    def issue(cls, directory: Path) -> ThrowAwayCertificate:
        import trustme
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        certfile, keyfile = directory / "server-cert.pem", directory / "server-key.pem"
        leaf.cert_chain_pems[0].write_to_path(str(certfile))
        leaf.private_key_pem.write_to_path(str(keyfile))
        public_key = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_key()
        spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return cls(certfile, keyfile, base64.b64encode(hashlib.sha256(spki).digest()).decode(), context)

    def server_args(self) -> list[str]:
        return ["--certfile", str(self.certfile), "--keyfile", str(self.keyfile)]


def chromium_binary() -> str:
    """Debian's chromium, installed first when missing and we are root (as CI is)."""
    from tests.haproxy_fixture import install_debian_package

    return shutil.which("chromium") or install_debian_package("chromium")


def run_chromium(
    url: str, certificate: ThrowAwayCertificate, tmp_path: Path, report_path: Path, *flags: str
) -> dict[str, Any]:
    """Start Chromium on `url` with `flags` and return the report the page posted, within BROWSER_DEADLINE s."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    argv = [
        chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--ignore-certificate-errors-spki-list={certificate.spki_sha256}",
        f"--log-net-log={net_log_path(tmp_path)}", *flags, url,
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
            + f"\nQUIC sessions closed: {quic_close_reasons(tmp_path)}"
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


def net_log_path(tmp_path: Path) -> Path:
    return tmp_path / "chromium-netlog.json"


def quic_close_reasons(tmp_path: Path) -> list[str]:
    """Why Chromium's QUIC sessions closed, from its net log (one event a line, possibly cut short by the
    SIGTERM that stopped Chromium): empty if none closed. A refused certificate shows here as
    "certificate unknown", a server that never answered as a handshake timeout."""
    path = net_log_path(tmp_path)
    if not path.exists():
        return []
    reasons = set()
    for line in path.read_text(errors="replace").splitlines():
        if '"quic_error"' not in line:
            continue
        with contextlib.suppress(ValueError):
            params = json.loads(line.rstrip(",")).get("params", {})
            if "details" in params:
                reasons.add(str(params["details"]))
    return sorted(reasons)
