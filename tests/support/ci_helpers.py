"""Shared helpers for the CI tests: a fake `claude` and `claude-run` on a PATH, the sample's figures."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
SRC = SUPPORT.parent.parent / "src"
SAMPLE = SUPPORT / "ci_data" / "stream-tool.jsonl"


def sample_result() -> dict[str, object]:
    """The sample's `result` event: the figures a run replaying it must record."""
    for line in SAMPLE.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "result":
            return event  # type: ignore[no-any-return]
    raise AssertionError("the sample has no result event")


def _script(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_bin(tmp: Path) -> Path:
    """A directory holding `claude` (the replaying fake) and `claude-run` (this worktree's code)."""
    bindir = tmp / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    _script(bindir / "claude", f'#!/bin/sh\nexec "{py}" "{SUPPORT / "ci_fake_claude.py"}" "$@"\n')
    _script(bindir / "claude-run", f'#!/bin/sh\nPYTHONPATH="{SRC}" exec "{py}" -m claude_run "$@"\n')
    return bindir


def base_env(tmp: Path, bindir: Path) -> dict[str, str]:
    """A clean environment: no CI variables leak in from wherever the tests run."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(SRC),
    }
