"""Claude Code's own session transcripts (`<config>/projects/<project>/<session_id>.jsonl`).

`locate` finds them, `scan` reads one file from a byte offset (fast, ccusage-exact rules),
`packed` keeps many messages compact, `session` folds reads into a session's deduplicated
messages, `fields` turns a session into record fields (tokens and cost per model), `daily` gives
per-day totals. The interactive mode and `ledger import` share this reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .locate import config_dirs, find_transcript, project_dirs
from .scan import FileScan, scan_file
from .session import Session

__all__ = [
    "FileScan",
    "Session",
    "config_dirs",
    "find_transcript",
    "project_dirs",
    "read_session",
    "scan_file",
    "session_fields",
]


def read_session(path: Path, offset: int = 0, subagents: bool = False) -> tuple[Session, int]:
    """Fold a transcript (from `offset`) into a session; returns it and the offset read up to.

    With `subagents`, the session's subagent transcripts (`<session>/subagents/*.jsonl`, beside
    the main file) are folded in too, as sidechain messages.
    """
    owners: dict[str, str] = {}
    scan = scan_file(str(path), offset)
    session = Session(key=path.stem, project_dir=path.parent.name)
    session.fold(scan, owners)
    if subagents:
        for agent_file in sorted(path.with_suffix("").glob("subagents/*.jsonl")):
            session.fold(scan_file(str(agent_file), 0, sidechain_file=True, need_meta=False), owners)
    return session, scan.end


def session_fields(path: Path, offset: int = 0) -> dict[str, Any]:
    """Record fields for one session transcript (or the part of it after `offset`).

    From the start of the session, its subagents' transcripts count too (as sidechain tokens);
    from an offset (a resumed session) they cannot be split by run, so only the main file counts.
    """
    from .fields import session_facts, usage_fields

    session, end = read_session(path, offset, subagents=offset == 0)
    facts = session_facts(session)
    fields: dict[str, Any] = {
        "session_id": facts["session_id"],
        "claude_version": facts["claude_version"],
        **usage_fields(session),
        "transcript": {
            "first_at": session.first_ts,
            "last_at": session.last_ts,
            "offset": offset,
            "end": end,
        },
    }
    if offset == 0:  # from an offset the subagents' files cannot be split by run
        from .attribution import for_transcript

        attributed = for_transcript(path, fields)
        if attributed is not None:
            fields["attribution"] = attributed
    return fields
