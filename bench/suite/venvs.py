"""One virtualenv per server under bench/.venvs, so that no peer's dependencies change another's speed.

Peers are installed once (a marker file remembers what); ours is reinstalled from packages/ on every run, so
a run always measures the code in the working tree, built and installed as a user would get it (not editable).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from .servers import OUR_PACKAGES, ROOT, VENVS, ServerSpec

MARKER = ".bench-installed.json"
INSTALL_TIMEOUT = 900


class InstallError(RuntimeError):
    pass


def venv_bin(name: str) -> Path:
    return VENVS / name / "bin"


def _pip(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)


def _create(name: str) -> Path:
    bin_dir = venv_bin(name)
    if not (bin_dir / "python").exists():
        VENVS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True, timeout=300)
    return bin_dir


def _marker(name: str) -> dict[str, object]:
    try:
        loaded: dict[str, object] = json.loads((VENVS / name / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return loaded


def _write_marker(name: str, content: dict[str, object]) -> None:
    (VENVS / name / MARKER).write_text(json.dumps(content, indent=2))


def ensure_peer(spec: ServerSpec) -> list[str]:
    """Install the first of the spec's requirement sets that installs; notes say which one it was."""
    bin_dir = _create(spec.venv)
    marker = _marker(spec.venv)
    if marker.get("candidates") == [list(c) for c in spec.requirements]:
        notes = marker.get("notes", [])
        return [str(note) for note in notes] if isinstance(notes, list) else []
    failures: list[str] = []
    for candidate in spec.requirements:
        print(f"[{spec.name}] pip install {' '.join(candidate)}", file=sys.stderr)
        done = _pip(bin_dir, *candidate)
        if done.returncode == 0:
            notes = [f"installed: {' '.join(candidate)}"]
            if failures:
                notes.append(f"not installable here: {'; '.join(failures)}")
            candidates = [list(c) for c in spec.requirements]
            _write_marker(spec.venv, {"candidates": candidates, "installed": candidate, "notes": notes})
            return notes
        failures.append(f"{' '.join(candidate)} ({done.stderr.strip().splitlines()[-1:]})")
    raise InstallError(f"{spec.name}: no requirement set installed: {'; '.join(failures)}")


def _package_dirs() -> list[Path]:
    return [
        ROOT / "packages" / name for name in OUR_PACKAGES if (ROOT / "packages" / name / "pyproject.toml").exists()
    ]


def ensure_ours(spec: ServerSpec, *, compiled: bool) -> list[str]:
    """Build and install every local package (not editable), all in one pip call so siblings resolve locally;
    then, if `compiled`, the mypyc-compiled wheels over them (tools/compiled_wheels.py)."""
    bin_dir = _create(spec.venv)
    dirs = _package_dirs()
    extras = [item for candidate in spec.requirements[:1] for item in candidate]
    digest = hashlib.sha256(b"".join((d / "pyproject.toml").read_bytes() for d in dirs)).hexdigest()
    marker = _marker(spec.venv)
    if marker.get("digest") != digest:
        # Dependencies first (they change rarely); the packages themselves are reinstalled below every time.
        print(f"[ours] pip install {' '.join(d.name for d in dirs)} {' '.join(extras)}", file=sys.stderr)
        done = _pip(bin_dir, *map(str, dirs), *extras)
        if done.returncode != 0:
            minimal = dirs[:2]  # asgi-core and asgi-http1: enough for the standalone stand-in
            print(f"[ours] full install failed; trying {[d.name for d in minimal]}", file=sys.stderr)
            retry = _pip(bin_dir, *map(str, minimal), *extras)
            if retry.returncode != 0:
                raise InstallError(f"ours: pip install failed: {retry.stderr.strip()[-2000:]}")
            dirs = minimal
            digest = "partial"
        _write_marker(spec.venv, {"digest": digest, "packages": [d.name for d in dirs]})
    else:
        names = marker.get("packages", [])
        dirs = [ROOT / "packages" / str(name) for name in names] if isinstance(names, list) else dirs
    done = _pip(bin_dir, "--no-deps", "--force-reinstall", *map(str, dirs))
    if done.returncode != 0:
        raise InstallError(f"ours: reinstall failed: {done.stderr.strip()[-2000:]}")
    notes = [f"installed from the working tree: {', '.join(d.name for d in dirs)}"]
    if compiled:
        notes.append(_install_compiled(bin_dir, VENVS / spec.venv / "compiled"))
    return notes


def _install_compiled(bin_dir: Path, out: Path) -> str:
    """Put the compiled wheels over the pure install; on failure the pure install stays, and the note says so."""
    print("[ours] building the mypyc-compiled wheels", file=sys.stderr)
    command = [sys.executable, str(ROOT / "tools" / "compiled_wheels.py"), "--install"]
    command += ["--python", str(bin_dir / "python"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["no output"]
        print(f"[ours] compiled build failed, measuring pure Python: {done.stderr[-2000:]}", file=sys.stderr)
        return f"pure Python: the compiled build failed ({reason[0][:200]})"
    return "asgi-core, asgi-http1 and asgi-h2 compiled with mypyc (tools/compiled_wheels.py)"


_VERSIONS_SCRIPT = """
import json, platform, sys
from importlib import metadata
found = {"python": platform.python_version()}
for name in sys.argv[1:]:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps(found))
"""


def versions(bin_dir: Path, names: tuple[str, ...]) -> dict[str, str]:
    done = subprocess.run(
        [str(bin_dir / "python"), "-c", _VERSIONS_SCRIPT, *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    try:
        found: dict[str, str] = json.loads(done.stdout)
    except ValueError:
        return {"error": done.stderr.strip()[-300:]}
    return found


def ours_worker_available(bin_dir: Path) -> tuple[bool, str]:
    """Whether ours can run as the Gunicorn worker yet: the module exists and `gunicorn-asgi --help` runs."""
    if not (ROOT / "packages" / "gunicorn-asgi" / "src" / "gunicorn_asgi" / "worker.py").exists():
        return False, "packages/gunicorn-asgi/src/gunicorn_asgi/worker.py does not exist yet"
    script = bin_dir / "gunicorn-asgi"
    if not script.exists():
        return False, f"{script} is not installed"
    try:
        done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
        imported = subprocess.run(
            [str(bin_dir / "python"), "-c", "import gunicorn_asgi.worker"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "gunicorn-asgi --help did not finish within 60 s"
    if done.returncode != 0:
        return False, f"gunicorn-asgi --help failed: {done.stderr.strip()[-300:]}"
    if imported.returncode != 0:
        return False, f"import gunicorn_asgi.worker failed: {imported.stderr.strip()[-300:]}"
    return True, "gunicorn-asgi worker"
