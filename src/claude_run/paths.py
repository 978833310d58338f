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


def state_dir(env: dict[str, str] | None = None) -> Path:
    """Where claude-run keeps what is neither data nor config: `$XDG_STATE_HOME/claude-run` (Linux,
    default `~/.local/state/claude-run`); the data directory elsewhere."""
    env = dict(os.environ) if env is None else env
    if sys.platform in ("darwin", "win32"):
        return data_dir(env)
    xdg = env.get("XDG_STATE_HOME")
    home = Path(env.get("HOME") or Path.home())
    return (Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "state") / APP


def spool_file(ledger: Path, env: dict[str, str] | None = None) -> Path:
    """Where records that could not be appended to `ledger` wait: `$CLAUDE_RUN_SPOOL_DIR`, else
    `<state dir>/spool`, one file per ledger (named by a hash of its absolute path)."""
    import hashlib

    env = dict(os.environ) if env is None else env
    override = env.get("CLAUDE_RUN_SPOOL_DIR")
    directory = Path(override).expanduser() if override else state_dir(env) / "spool"
    name = hashlib.sha256(os.path.abspath(ledger).encode()).hexdigest()[:16]
    return directory / f"{name}.jsonl"
