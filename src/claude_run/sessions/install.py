"""The two entries `claude-run install` keeps in Claude Code's settings.json, as pure edits.

    "statusLine": {"type": "command", "command": "<claude-run> statusline", "padding": 0}
    "hooks": {"SessionEnd": [{"hooks": [{"type": "command", "command": "<claude-run> hook session-end",
                                         "timeout": 30}]}]}

Every other key is kept as it is, in its place. An entry is ours when its command runs claude-run's
`statusline` / `hook session-end`; ours are replaced in place (installing twice leaves one), others
are never touched, and a status line of someone else's is replaced only when asked (`force`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError

HOOK_TIMEOUT_S = 30  # the hook detaches at once; this only bounds a stuck start
_OURS = {
    "statusline": re.compile(r"(claude-run|claude_run)\S*\s+(?:\S+\s+)*?statusline(\s|$)"),
    "session-end": re.compile(r"(claude-run|claude_run)\S*\s+(?:\S+\s+)*?hook\s+session-end(\s|$)"),
}


def settings_path(project: bool, env: Mapping[str, str], cwd: str) -> Path:
    """The project's `.claude/settings.json`, else `$CLAUDE_CONFIG_DIR/settings.json`, else ~/.claude's."""
    if project:
        return Path(cwd) / ".claude" / "settings.json"
    configured = env.get("CLAUDE_CONFIG_DIR", "").split(",")[0].strip()
    if configured:
        return Path(configured).expanduser() / "settings.json"
    return Path(env.get("HOME") or Path.home()) / ".claude" / "settings.json"


def self_command() -> list[str]:
    """How Claude should call this claude-run: the script that is running, else `python -m claude_run`.

    An absolute path, because Claude runs the command with its own PATH (a virtualenv's bin is
    rarely on it).
    """
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name in ("claude-run", "claude-run.exe") and script.is_file():
        return [os.path.abspath(script)]  # not resolved: pipx's ~/.local/bin link outlives upgrades
    return [sys.executable, "-m", "claude_run"]


def commands(base: list[str], ledger: str | None) -> dict[str, str]:
    extra = ["--ledger", ledger] if ledger else []
    return {
        "statusline": shlex.join([*base, "statusline", *extra]),
        "session-end": shlex.join([*base, "hook", "session-end", *extra]),
    }


def is_ours(kind: str, command: object) -> bool:
    return isinstance(command, str) and _OURS[kind].search(command) is not None


def _hook_groups(settings: dict[str, Any]) -> list[Any]:
    hooks = settings.get("hooks")
    if hooks is None:
        return []
    if not isinstance(hooks, dict):
        raise UsageError("settings.json: `hooks` is not an object; fix it by hand first")
    groups = hooks.get("SessionEnd", [])
    if not isinstance(groups, list):
        raise UsageError("settings.json: `hooks.SessionEnd` is not a list; fix it by hand first")
    return groups


def _edit_hooks(groups: list[Any], wanted: dict[str, Any] | None) -> tuple[list[Any], int]:
    """Groups with our SessionEnd entries removed, or the first of them replaced by `wanted` (in
    its place, so installing again changes nothing); appended as a new group when there was none.
    Returns the groups and how many of ours were there."""
    kept: list[Any] = []
    found = 0
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            kept.append(group)
            continue
        entries: list[Any] = []
        for entry in group["hooks"]:
            if isinstance(entry, dict) and is_ours("session-end", entry.get("command")):
                found += 1
                if wanted is not None and found == 1:
                    entries.append(wanted)
                continue
            entries.append(entry)
        if entries or set(group) - {"hooks", "matcher"}:
            kept.append({**group, "hooks": entries})  # an emptied group with settings of its own stays
    if wanted is not None and not found:
        kept.append({"hooks": [wanted]})
    return kept, found


def apply(
    settings: dict[str, Any],
    *,
    statusline: str | None,
    session_end: str | None,
    uninstall: bool = False,
    force: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """The edited settings (a new dict, keys in their places) and one line per change made."""
    out = dict(settings)
    said: list[str] = []
    if statusline is not None:
        current = out.get("statusLine")
        ours = isinstance(current, dict) and is_ours("statusline", current.get("command"))
        if uninstall:
            if ours:
                del out["statusLine"]
                said.append("removed the status line")
        else:
            wanted = {"type": "command", "command": statusline, "padding": 0}
            if current is not None and not ours and not force:
                raise UsageError(
                    "settings.json already has a status line of its own "
                    f"({json.dumps(current)[:80]}); use --force to replace it (a backup is kept)"
                )
            # Ours: keep what the user added to it (refreshInterval, padding).
            merged = (
                {**current, "type": "command", "command": statusline}
                if isinstance(current, dict) and ours
                else wanted
            )
            if current != merged:
                out["statusLine"] = merged
                said.append("status line: " + statusline)
    if session_end is not None:
        before = _hook_groups(out)
        wanted_entry = {"type": "command", "command": session_end, "timeout": HOOK_TIMEOUT_S}
        groups, _ = _edit_hooks(before, None if uninstall else wanted_entry)
        if groups != before:
            hooks = dict(out.get("hooks") or {})
            if groups:
                hooks["SessionEnd"] = groups
            else:
                hooks.pop("SessionEnd", None)
            if hooks:
                out["hooks"] = hooks
            else:
                out.pop("hooks", None)
            said.append("removed the SessionEnd hook" if uninstall else "SessionEnd hook: " + session_end)
    return out, said


def render(settings: Mapping[str, Any]) -> str:
    return json.dumps(settings, indent=2, ensure_ascii=False) + "\n"


def read_settings(path: Path) -> tuple[str, dict[str, Any]]:
    """(the text as it is, the parsed object); a missing file is an empty one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", {}
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not text.strip():
        return text, {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); fix or move it, then install again") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path} does not hold a JSON object; fix or move it, then install again")
    return text, data


def write_settings(path: Path, old_text: str, new_text: str, stamp: str) -> Path | None:
    """Back the old file up (when there is one), then replace it atomically. Returns the backup."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if old_text:
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        backup.write_text(old_text, encoding="utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, new_text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return backup
