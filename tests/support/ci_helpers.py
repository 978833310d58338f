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


def make_recorder(bindir: Path, name: str, calls: Path) -> None:
    """A fake `gh` / `curl`: records its argv and, for --body-file, the body; exits 0."""
    _script(
        bindir / name,
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "body = None\n"
        "if '--body-file' in args:\n"
        "    body = open(args[args.index('--body-file') + 1]).read()\n"
        f"with open({str(calls)!r}, 'a') as fh:\n"
        f"    fh.write(json.dumps({{'cmd': {name!r}, 'args': args, 'body': body}}) + '\\n')\n",
    )


def execution_file_from(stream: Path, dest: Path) -> Path:
    """What claude-code-action writes: the run's stream-json messages as one indented JSON array."""
    messages = [json.loads(line) for line in stream.read_text().splitlines() if line.strip()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(messages, indent=2))
    return dest
