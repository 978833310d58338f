"""Where Claude Code keeps its session transcripts, and which file belongs to which session.

Layout (Claude Code 2.x): `<config>/projects/<project>/<session_id>.jsonl`, and the transcripts of a
session's subagents under `<config>/projects/<project>/<session_id>/subagents/agent-*.jsonl`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


def config_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """`CLAUDE_CONFIG_DIR` (comma-separated) else `~/.config/claude` and `~/.claude` (as ccusage)."""
    env = os.environ if env is None else env
    configured = env.get("CLAUDE_CONFIG_DIR", "").strip()
    if configured:
        return [Path(p.strip()).expanduser() for p in configured.split(",") if p.strip()]
    home = Path(env.get("HOME") or Path.home())
    return [home / ".config" / "claude", home / ".claude"]


def project_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    return [d / "projects" for d in config_dirs(env) if (d / "projects").is_dir()]


def find_transcript(session_id: str, env: Mapping[str, str] | None = None) -> Path | None:
    for root in project_dirs(env):
        for candidate in root.glob(f"*/{session_id}.jsonl"):
            return candidate
    return None


@dataclass(frozen=True)
class TranscriptFile:
    path: str
    # The session the file counts toward: its own name for a main transcript, the enclosing
    # session directory for a subagent's transcript (whose lines carry the parent's sessionId).
    session_key: str
    project_dir: str  # the `<project>` directory name under `projects/`
    subagent: bool


def roots_for(dirs: Iterable[Path]) -> list[Path]:
    """A DIR given by the user may be a config dir (holding `projects/`) or a projects dir itself."""
    roots: list[Path] = []
    seen: set[str] = set()
    for d in dirs:
        root = d / "projects" if (d / "projects").is_dir() else d
        if not root.is_dir():
            continue
        key = os.path.realpath(root)
        if key not in seen:
            seen.add(key)
            roots.append(root)
    return roots


def discover(roots: Iterable[Path]) -> list[TranscriptFile]:
    """Every `*.jsonl` under each root (recursively, as ccusage globs `**/*.jsonl`), sorted by path."""
    out: list[TranscriptFile] = []
    for root in roots:
        base = str(root)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = os.path.relpath(dirpath, base)
            parts = [] if rel == "." else rel.split(os.sep)
            for name in filenames:
                if not name.endswith(".jsonl"):
                    continue
                path = os.path.join(dirpath, name)
                if not parts:
                    # A transcript straight under the root: the root is itself a project dir.
                    out.append(TranscriptFile(path, name[:-6], os.path.basename(base), False))
                elif len(parts) == 1:
                    out.append(TranscriptFile(path, name[:-6], parts[0], False))
                else:
                    out.append(TranscriptFile(path, parts[1], parts[0], True))
    out.sort(key=lambda t: t.path)
    return out
