"""The release build stays true to the packages: cibuildwheel.toml, the wheels workflow and
tools/compiled_wheels.py (`python3 dev.py wheels`) build every package that has a mypyc build hook, in an order
where each package's compiled siblings come first, for Pythons every one of them supports, on every arch the
configuration names; and the smoke test the wheels are checked with (tools/wheel_smoke.py) still serves its
exchanges, here against the source install, so that it keeps up with the packages between releases.

What only a CI runner checks: the builds themselves on each platform, and the smoke test against each wheel.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
WORKFLOW = ROOT / ".github" / "workflows" / "wheels.yml"
CIBUILDWHEEL = tomllib.loads((ROOT / "cibuildwheel.toml").read_text(encoding="utf-8"))["tool"]["cibuildwheel"]


def load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"release_{name}", ROOT / "tools" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def project(package: str) -> dict[str, Any]:
    pyproject = tomllib.loads((PACKAGES / package / "pyproject.toml").read_text(encoding="utf-8"))
    table: dict[str, Any] = pyproject["project"]
    return table


#: Every package with a mypyc build hook (packages/<name>/hatch_build.py), by directory name.
COMPILED = sorted(path.parent.name for path in PACKAGES.glob("*/hatch_build.py"))


def workflow_build_order() -> list[str]:
    """The packages the workflow's compiled job hands to cibuildwheel, in the order of its steps."""
    command = r"python -m cibuildwheel --config-file cibuildwheel\.toml packages/([\w-]+)"
    return re.findall(command, WORKFLOW.read_text(encoding="utf-8"))


def test_there_are_compiled_packages() -> None:
    # Guards the checks below, which would all pass over an empty list.
    assert {"asgi-core", "asgi-http1", "asgi-h2"} <= set(COMPILED)


def test_every_compiled_package_is_built_after_its_compiled_siblings() -> None:
    names = {project(package)["name"]: package for package in COMPILED}
    for order in (workflow_build_order(), list(load_tool("compiled_wheels").PACKAGES)):
        assert sorted(order) == COMPILED, order  # each one, once
        for position, package in enumerate(order):
            siblings = {Requirement(spec).name for spec in project(package).get("dependencies", [])} & set(names)
            before = {project(earlier)["name"] for earlier in order[:position]}
            assert siblings <= before, f"{package} is built before {sorted(siblings - before)} in {order}"


def test_the_wheels_are_for_pythons_every_compiled_package_supports() -> None:
    versions = []
    for selector in CIBUILDWHEEL["build"]:
        found = re.fullmatch(r"cp3(\d+)-\*", selector)
        assert found, f"a build selector this test does not read: {selector}"
        versions.append(Version(f"3.{found[1]}"))
    assert versions == [Version("3.11"), Version("3.12"), Version("3.13")]
    for package in COMPILED:
        supported = SpecifierSet(project(package)["requires-python"])
        assert all(version in supported for version in versions), (package, str(supported))


def test_the_workflow_builds_every_arch_the_configuration_names_each_on_its_own_runner() -> None:
    configured = {platform: set(CIBUILDWHEEL[platform]["archs"]) for platform in ("linux", "macos", "windows")}
    assert configured == {"linux": {"x86_64", "aarch64"}, "macos": {"x86_64", "arm64"}, "windows": {"AMD64"}}
    matrix = re.findall(r"\{ os: ([\w.-]+), arch: (\w+) \}", WORKFLOW.read_text(encoding="utf-8"))
    built: dict[str, set[str]] = {"linux": set(), "macos": set(), "windows": set()}
    for runner, arch in matrix:
        built[{"ubuntu": "linux", "macos": "macos", "windows": "windows"}[runner.split("-")[0]]].add(arch)
    assert built == configured
    assert "CIBW_ARCHS: ${{ matrix.arch }}" in WORKFLOW.read_text(encoding="utf-8")  # one arch per runner


def test_the_build_compiles_and_the_test_command_checks_each_compiled_package() -> None:
    assert CIBUILDWHEEL["environment"]["HATCH_BUILD_HOOKS_ENABLE"] == "true"
    assert CIBUILDWHEEL["test-command"] == "python {project}/tools/wheel_smoke.py {package}"
    smoke = load_tool("wheel_smoke")
    for package in COMPILED:
        assert project(package)["name"] in smoke.EXCHANGES, package
        modules = smoke.expected_compiled_modules(PACKAGES / package)
        import_name = project(package)["name"].replace("-", "_")
        assert modules, package
        assert all(module.startswith(import_name + ".") for module in modules), modules
        assert f"{import_name}._errors" not in modules  # excluded by every hook: it subclasses built-in exceptions
    assert "fast" in project("asgi-http1")["optional-dependencies"]  # test-extras: httptools, for _fast_heads
    assert CIBUILDWHEEL["test-extras"] == ["fast"]


@pytest.mark.parametrize("package", COMPILED)
def test_the_smoke_exchange_runs_against_the_source_install(package: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "wheel_smoke.py"), str(PACKAGES / package), "--interpreted"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "served an exchange" in done.stderr


def test_the_smoke_test_refuses_modules_that_came_from_source() -> None:
    # asgi-core imported from its source tree (ahead of any installed build, the compiled one included): the
    # compiled check must say so, not pass.
    source = str(PACKAGES / "asgi-core" / "src")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "wheel_smoke.py"), str(PACKAGES / "asgi-core")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))},
    )
    assert done.returncode != 0
    assert "not compiled (imported from source): ['asgi_core." in done.stderr
