"""The architecture as a contract: the layers hold, the top level stays small, one record builder."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import claude_run

PACKAGE = Path(claude_run.__file__).resolve().parent
SRC = PACKAGE.parent


def _lint_imports() -> Path | None:
    exe = Path(sys.executable).parent / "lint-imports"
    return exe if exe.exists() else None


@pytest.mark.skipif(_lint_imports() is None, reason="import-linter is a test extra: pip install -e '.[test]'")
def test_no_module_imports_a_layer_above_it() -> None:
    root = SRC.parent  # the project, where pyproject.toml declares the layers
    out = subprocess.run(
        [str(_lint_imports()), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_the_top_level_holds_only_entry_points_and_shared_kernels() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 10, modules


def _writes(tree: ast.AST, key: str) -> bool:
    """A dict display with `key`, or a store to `x[key]`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == key for k in node.keys
        ):
            return True
        store = isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
        if store and isinstance(node.slice, ast.Constant) and node.slice.value == key:  # type: ignore[attr-defined]
            return True
    return False


def test_the_record_is_built_in_one_module() -> None:
    """`claude_run_version` (with the schema version and id) is written only by `record/build.py`,
    so every writer goes through it. The read engine names it too, as a column to read."""
    writers = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "query":
            continue
        if _writes(ast.parse(path.read_text()), "claude_run_version"):
            writers.append(str(rel))
    assert writers == ["record/build.py"], writers


def test_one_main_model_rule_and_one_directory_hash() -> None:
    text = {p: p.read_text() for p in PACKAGE.rglob("*.py")}
    rule = [p for p, t in text.items() if "def main_model(" in t and "record/build.py" in str(p)]
    assert rule, "record/build.py defines main_model"
    hashing = [p.relative_to(PACKAGE) for p, t in text.items() if "os.path.realpath(cwd).encode()" in t]
    assert [str(p) for p in hashing] == ["record/build.py"]
