#!/usr/bin/env python3
"""Build the mypyc-compiled wheels of the packages that offer them, optionally install them and check that the
compiled modules are the ones imported.

    python tools/compiled_wheels.py [--out dist/compiled] [--python PATH] [--install]

Each package says what it compiles in `[tool.hatch.build.targets.wheel.hooks.custom]` and compiles only with
HATCH_BUILD_HOOKS_ENABLE=true (see its hatch_build.py). Builds are isolated and need a C compiler, the
Python headers and the package index; asgi-core is built first because the builds of asgi-http1 and asgi-h2
type-check against it (found in the output directory).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
#: In build order: each package's build may need the ones before it.
PACKAGES = ("asgi-core", "asgi-http1", "asgi-h2")

_CHECK = """
import importlib, importlib.machinery, json, sys
suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
print(json.dumps({name: importlib.import_module(name).__file__.endswith(suffixes) for name in sys.argv[1:]}))
"""


class BuildFailed(Exception):
    pass


def compiled_modules(wheel: Path) -> list[str]:
    """The modules a wheel holds compiled: its extension modules inside a package (`pkg/_mod.cpython-*.so`);
    the mypyc runtime sits at the top level, outside any package."""
    with zipfile.ZipFile(wheel) as archive:
        names = [PurePosixPath(name) for name in archive.namelist()]
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return [
        f"{path.parent.as_posix().replace('/', '.')}.{path.name.split('.')[0]}"
        for path in names
        if path.name.endswith(suffixes)
        and path.parent != PurePosixPath(".")
        and ".dist-info" not in path.parent.name
    ]


def _pip(python: str, *args: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run([python, "-m", "pip", *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildFailed(f"pip {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def build(python: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        for old in out.glob(f"{package.replace('-', '_')}-*.whl"):
            old.unlink()
    env = {**os.environ, "HATCH_BUILD_HOOKS_ENABLE": "true"}
    wheels = []
    for package in PACKAGES:
        print(f"[compiled] building {package}", file=sys.stderr)
        _pip(
            python,
            "wheel",
            "-q",
            "--no-deps",
            "--find-links",
            str(out),
            "-w",
            str(out),
            str(ROOT / "packages" / package),
            env=env,
        )
        (wheel,) = out.glob(f"{package.replace('-', '_')}-*.whl")
        if wheel.name.endswith("-none-any.whl"):
            raise BuildFailed(f"{wheel.name} is not a compiled wheel: was the build hook enabled?")
        wheels.append(wheel)
    return wheels


def check(python: str, wheels: list[Path]) -> dict[str, bool]:
    names = [name for wheel in wheels for name in compiled_modules(wheel)]
    done = subprocess.run([python, "-c", _CHECK, *names], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildFailed(f"importing the compiled modules failed:\n{done.stderr[-3000:]}")
    found: dict[str, bool] = json.loads(done.stdout)
    return found


def install(python: str, wheels: list[Path]) -> None:
    _pip(python, "install", "-q", "--no-deps", "--force-reinstall", *map(str, wheels))
    interpreted = [name for name, compiled in check(python, wheels).items() if not compiled]
    if interpreted:
        raise BuildFailed(f"installed, but these modules still import from source: {interpreted}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "compiled", help="where the wheels go")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to build for and install into")
    parser.add_argument("--install", action="store_true", help="install the wheels (over any install) and check")
    args = parser.parse_args()
    try:
        wheels = build(args.python, args.out.resolve())
        for wheel in wheels:
            print(f"[compiled] {wheel}", file=sys.stderr)
        if args.install:
            install(args.python, wheels)
            print("[compiled] installed; every compiled module imports as an extension module", file=sys.stderr)
    except BuildFailed as exc:
        print(f"[compiled] {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
