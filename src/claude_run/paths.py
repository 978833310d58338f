"""Where claude-run keeps its files, resolved the same way by every command.

No pathlib at import: the run's fast path resolves (and gates) the ledger before claude starts.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

APP = "claude-run"
LEDGER_FILE = "ledger.jsonl"


def _data_dir(env: dict[str, str]) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", APP)
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, APP)
    xdg = env.get("XDG_DATA_HOME")
    # The XDG spec says relative values are invalid and must be ignored.
    base_dir = xdg if xdg and os.path.isabs(xdg) else os.path.join(home, ".local", "share")
    return os.path.join(base_dir, APP)


def data_dir(env: dict[str, str] | None = None) -> Path:
    """The platform's per-user data directory for claude-run (no third-party dependency needed)."""
    from pathlib import Path

    return Path(_data_dir(dict(os.environ) if env is None else env))


def ledger_file(option: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> str:
    """`--ledger PATH`, else `$CLAUDE_RUN_LEDGER`, else the platform data dir (as a string)."""
    env = dict(os.environ) if env is None else env
    if option:
        return os.path.expanduser(os.fspath(option))
    from_env = env.get("CLAUDE_RUN_LEDGER")
    if from_env:
        return os.path.expanduser(from_env)
    return os.path.join(_data_dir(env), LEDGER_FILE)


def ledger_path(option: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Path:
    """`--ledger PATH`, else `$CLAUDE_RUN_LEDGER`, else the platform data dir."""
    from pathlib import Path

    return Path(ledger_file(option, env))


def state_dir(env: dict[str, str] | None = None) -> Path:
    """Where claude-run keeps what is neither data nor config: `$XDG_STATE_HOME/claude-run` (Linux,
    default `~/.local/state/claude-run`); the data directory elsewhere."""
    from pathlib import Path

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
    from pathlib import Path

    env = dict(os.environ) if env is None else env
    override = env.get("CLAUDE_RUN_SPOOL_DIR")
    directory = Path(override).expanduser() if override else state_dir(env) / "spool"
    name = hashlib.sha256(os.path.abspath(ledger).encode()).hexdigest()[:16]
    return directory / f"{name}.jsonl"
