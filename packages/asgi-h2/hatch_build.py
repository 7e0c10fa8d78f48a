"""Wheel build hook, off by default: compiles the hot modules with mypyc (through hatch-mypyc) when the build runs
with HATCH_BUILD_HOOKS_ENABLE=true. The wheel keeps every source file, so the package also runs uncompiled."""

from __future__ import annotations

from typing import Any

from hatch_mypyc.plugin import MypycBuildHook


class CompiledModules(MypycBuildHook):  # type: ignore[misc]  # hatch-mypyc is untyped
    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        # hatch-mypyc compiles in place; left beside the sources, the modules would shadow them in an editable
        # install and keep running code that has since been edited.
        self.clean([version])


def get_build_hook() -> type[CompiledModules]:
    return CompiledModules
