"""Where claude-run keeps its files, resolved the same way by every command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "claude-run"
LEDGER_FILE = "ledger.jsonl"


def data_dir(env: dict[str, str] | None = None) -> Path:
    """The platform's per-user data directory for claude-run (no third-party dependency needed)."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / APP
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / APP
    xdg = env.get("XDG_DATA_HOME")
    # The XDG spec says relative values are invalid and must be ignored.
    base_dir = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"
    return base_dir / APP


def ledger_path(option: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Path:
    """`--ledger PATH`, else `$CLAUDE_RUN_LEDGER`, else the platform data dir."""
    env = dict(os.environ) if env is None else env
    if option:
        return Path(option).expanduser()
    from_env = env.get("CLAUDE_RUN_LEDGER")
    if from_env:
        return Path(from_env).expanduser()
    return data_dir(env) / LEDGER_FILE
