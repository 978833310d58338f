"""`ledger import --execution-file`: claude-code-action's runs into the ledger, one record per session.

Flow: expand the paths -> read and fold every file (one malformed file stops the import before
anything is written) -> one record per session, its usage fields built exactly as a tracked run's
(`usage.usage_record_fields`) -> under the ledger's lock, leave out the sessions the ledger already
has, then append the rest in one write.

Which sessions are already there (so a re-import writes nothing):
- a session that a claude-run run or the telemetry service recorded (`record.claimed_session`): the
  fold would not count an import of it anyway;
- a session imported from an execution file before with the same usage (tokens per model, cost,
  turns): the same run, whichever copy of the file it came from. A different usage under the same
  session id is another process resuming that session (its `result` covers that process only), so it
  is recorded beside the first, as two tracked runs would be.
An earlier import of the session from Claude's transcripts (`ledger import`, source `import`) is
replaced: the new record names it in `supersedes`, and the result event's figures win.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import UsageError
from ..record.schema import IMPORTED
from .execution_file import ExecutionFile, ExecutionSession, file_times, read_execution_file
from .importer import EXECUTION_FILE_SOURCE as SOURCE

TRANSCRIPT_SOURCE = "import"
_GLOB_CHARS = frozenset("*?[")


@dataclass
class ExecImportResult:
    records: list[dict[str, Any]] = field(default_factory=list)  # written (dry run: would be)
    files: int = 0
    sessions: int = 0
    already_imported: list[str] = field(default_factory=list)
    already_tracked: list[str] = field(default_factory=list)


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Each argument is a file or a glob (`**` allowed); every one must name at least one file."""
    out: list[Path] = []
    seen: set[str] = set()
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            matches = sorted(m for m in glob.glob(pattern, recursive=True) if os.path.isfile(m))
            if not matches:
                raise UsageError(f"no execution file matches {pattern!r}")
        elif os.path.isfile(pattern):
            matches = [pattern]
        else:
            raise UsageError(f"no such execution file: {pattern}")
        for m in matches:
            key = os.path.realpath(m)
            if key not in seen:
                seen.add(key)
                out.append(Path(m))
    return out


def usage_key(rec: Mapping[str, Any]) -> bytes:
    """What makes two records of one session the same run: its usage, not when or where it was read."""
    return orjson.dumps(
        {
            "session_id": rec.get("session_id"),
            "tokens": rec.get("tokens"),
            "models": rec.get("models"),
            "cost_usd": rec.get("cost_usd"),
            "num_turns": rec.get("num_turns"),
        },
        option=orjson.OPT_SORT_KEYS,
    )


def context_fields(cwd: str, env: Mapping[str, str]) -> dict[str, Any] | None:
    """Inside CI, where the import runs is where the run ran (the job after claude-code-action's step)."""
    from ..context import ci

    if ci.detect(env) is None:
        return None
    from ..context.collect import collect

    return collect(cwd, env)


def build_record(
    ef: ExecutionFile,
    session: ExecutionSession,
    context: Mapping[str, Any] | None,
    tags: Mapping[str, str],
    now_ms: int,
) -> dict[str, Any]:
    from ..context.collect import project_name
    from ..record.build import build_record as new_record
    from ..record.build import cwd_hash
    from ..stream.usage import result_status, usage_record_fields

    fields, notes = usage_record_fields(session.folder)
    started, ended, from_mtime = file_times(session, ef.mtime)
    if from_mtime:
        notes.append("no message timestamps: times from the execution file's modification time")
    fields["wall_ms"] = None
    # Quota and context use, as a run records them (no telemetry here: compactions from messages).
    rate_limits = session.folder.rate_limits.field()
    if rate_limits is not None:
        fields["rate_limits"] = rate_limits
    context_use = session.folder.context_field()
    if context_use is not None:
        fields["context"] = context_use
    if context is not None:
        fields.update(context)
    else:
        cwd = session.cwd
        fields.update(
            {
                "project": project_name(cwd, None, None) if cwd else None,
                "cwd_sha256": cwd_hash(cwd),
                "git": {"branch": None, "commit": None, "remote": None},
                "ci": None,
            }
        )
    fields["task_sha256"] = None
    record = new_record(
        now_ms=now_ms,
        started_at=started,
        ended_at=ended,
        mode=IMPORTED,
        source=SOURCE,
        status=result_status(session.folder.result),
        exit_code=None,
        fields=fields,
        tags=tags,
        supersedes=None,
        notes=notes,
    )
    return dict(record)


@dataclass
class _Known:
    claimed: set[str] = field(default_factory=set)
    keys: set[bytes] = field(default_factory=set)
    transcript_latest: dict[str, str] = field(default_factory=dict)


def _known(records: Iterable[Mapping[str, Any]]) -> _Known:
    from ..record.schema import claimed_session

    known = _Known()
    for rec in records:
        sid = claimed_session(rec)
        if sid is not None:
            known.claimed.add(sid)
            continue
        session_id, rid = rec.get("session_id"), rec.get("id")
        if not isinstance(session_id, str):
            continue
        if rec.get("source") == SOURCE:
            known.keys.add(usage_key(rec))
        elif rec.get("source") == TRANSCRIPT_SOURCE and isinstance(rid, str):
            known.transcript_latest[session_id] = rid
    return known


def import_execution_files(
    ledger: Path,
    paths: list[Path],
    *,
    tags: Mapping[str, str] | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> ExecImportResult:
    from ..ledger.store import append_locked, encode, iter_records, locked

    env = os.environ if env is None else env
    # Every file is read before anything is written: a bad one leaves the ledger as it was.
    files = [read_execution_file(p) for p in paths]
    result = ExecImportResult(files=len(files))
    context = context_fields(cwd or os.getcwd(), env)
    now_ms = int(time.time() * 1000)
    candidates = [build_record(ef, s, context, tags or {}, now_ms) for ef in files for s in ef.sessions]
    result.sessions = len(candidates)

    def select(known: _Known) -> list[dict[str, Any]]:
        keep: list[dict[str, Any]] = []
        for rec in candidates:
            sid = rec["session_id"]
            if sid in known.claimed:
                result.already_tracked.append(sid)
                continue
            key = usage_key(rec)
            if key in known.keys:
                result.already_imported.append(sid)
                continue
            known.keys.add(key)  # the same run twice in one batch (two copies of a file) counts once
            rec["supersedes"] = known.transcript_latest.pop(sid, None)
            keep.append(rec)
        return keep

    if dry_run:
        existing = iter_records(ledger) if ledger.exists() else iter(())
        result.records = select(_known(existing))
        return result
    with locked(ledger):
        # Under the writers' lock: two imports of the same file at once still write it once.
        result.records = select(_known(iter_records(ledger, lock=False)))
        append_locked(ledger, b"".join(encode(r) for r in result.records))
    return result
