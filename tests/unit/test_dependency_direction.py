"""DESIGN.md's dependency direction: the agent, the orchestrator and the testbeds may import
ozwald_sdk and the generated contracts, never each other; the SDK imports none of them.
They talk over gRPC, so a shortcut import would couple processes the contracts keep apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROCESS_PACKAGES = ("ozwald_agent", "ozwald_orchestrator", "ozwald_testbed")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "ozwald_sdk": PROCESS_PACKAGES,
    **{package: tuple(p for p in PROCESS_PACKAGES if p != package) for package in PROCESS_PACKAGES},
}


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(_imported_top_levels(path) & set(FORBIDDEN[package]))
    ]
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from ozwald_agent.runtime import labels\nimport ozwald_sdk\n")
    assert _imported_top_levels(module) == {"ozwald_agent", "ozwald_sdk"}
