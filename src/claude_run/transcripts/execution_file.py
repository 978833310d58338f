"""claude-code-action's execution file: the run's stream-json messages, saved as one JSON array.

claude-code-action (and its base action) writes `$RUNNER_TEMP/claude-execution-output.json` (newer
releases: `$RUNNER_TEMP/claude-execution-<uuid>/claude-execution-output.json`, the path is its
`execution_file` output) once the run ends: `JSON.stringify(messages, null, 2)` of every message
the Agent SDK yielded — the objects `claude -p --output-format stream-json --verbose` prints, one
array element per line of that stream. So a file is read by typing each element as a stream event
and folding them with the tracked run's own `UsageFolder`: same rules, same figures.

A file is taken whole or not at all: anything but a JSON array of message objects (a truncated
upload, some other JSON) raises `BadInputFile`, so an import never writes half of what it read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import BadInputFile
from ..record.schema import iso_utc, parse_iso
from ..stream.events import InitEvent, from_dict
from ..stream.usage import UsageFolder

# Far above any real run (a long agentic session is a few MB): a bound on memory, not a format rule.
MAX_BYTES = 512 << 20


@dataclass
class ExecutionSession:
    """The messages of one session in one execution file, folded."""

    session_id: str
    folder: UsageFolder = field(default_factory=UsageFolder)
    cwd: str | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    messages: int = 0


@dataclass
class ExecutionFile:
    path: Path
    mtime: float
    sessions: list[ExecutionSession]


def read_execution_file(path: Path) -> ExecutionFile:
    """Parse and fold one execution file; `BadInputFile` (one line, names the file) if it is not one."""
    try:
        st = path.stat()
        if st.st_size > MAX_BYTES:
            raise BadInputFile(f"cannot import {path}: {st.st_size} bytes, over {MAX_BYTES >> 20} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputFile(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadInputFile(f"cannot import {path}: not valid JSON, truncated? ({exc})") from exc
    if not isinstance(raw, list):
        raise BadInputFile(
            f"cannot import {path}: expected a JSON array of Claude Code messages, got a {_kind(raw)}"
        )
    sessions = fold_messages(raw, str(path), st.st_mtime)
    return ExecutionFile(path, st.st_mtime, sessions)


def fold_messages(messages: list[Any], where: str, mtime: float) -> list[ExecutionSession]:
    """Group the messages by `session_id` (in order of first appearance) and fold each group."""
    by_id: dict[str, ExecutionSession] = {}
    current: ExecutionSession | None = None
    # A tracked run stamps a rate_limit_event with the time it arrived; here, with the time of the
    # latest timestamped message before it (the file's mtime before any).
    latest = [mtime]

    def clock() -> float:
        return latest[0]

    for index, raw in enumerate(messages):
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise BadInputFile(
                f"cannot import {where}: element {index} is not a Claude Code message (an object with a type)"
            )
        sid = raw.get("session_id")
        if isinstance(sid, str) and sid:
            current = by_id.get(sid)
            if current is None:
                current = by_id[sid] = ExecutionSession(sid, UsageFolder(clock))
        if current is None:
            continue  # before any session id (none in practice): nothing to attribute it to
        ts = _timestamp(raw.get("timestamp"))
        if ts is not None:
            latest[0] = parse_iso(ts).timestamp()
        event = from_dict(raw)
        current.folder.feed(event)
        current.messages += 1
        if isinstance(event, InitEvent) and current.cwd is None:
            current.cwd = event.cwd
        if ts is not None:
            if current.first_ts is None or ts < current.first_ts:
                current.first_ts = ts
            if current.last_ts is None or ts > current.last_ts:
                current.last_ts = ts
    if messages and not by_id:
        raise BadInputFile(f"cannot import {where}: no message carries a session_id")
    return list(by_id.values())


def _timestamp(value: object) -> str | None:
    """Our own UTC format (sortable as text), or None for anything unparsable."""
    if not isinstance(value, str):
        return None
    try:
        return iso_utc(parse_iso(value).timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def _kind(value: object) -> str:
    return {dict: "JSON object", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def file_times(session: ExecutionSession, mtime: float) -> tuple[str, str, bool]:
    """(started_at, ended_at, from_mtime): the messages' own timestamps, else the file's mtime.

    The file is written when the run ends, so its mtime is the end; the start is the end less
    Claude's `duration_ms` when there is a result.
    """
    if session.first_ts is not None and session.last_ts is not None:
        return session.first_ts, session.last_ts, False
    result = session.folder.result
    duration = (result.duration_ms or 0) if result is not None else 0
    return iso_utc(mtime - duration / 1000), iso_utc(mtime), True
