"""The one builder of ledger records.

Every writer makes its record here: a tracked run (`run/runner.py`), an import of a transcript
(`transcripts/importer.py`) or of a claude-code-action execution file
(`transcripts/execution_import.py`), the SessionEnd hook (`sessions/hook.py`) and the telemetry
service (`telemetry/inbound/sessions.py`). So the schema version, the id, who ran it, which
claude-run wrote it and the order of the fields are decided once; a writer brings only what it knows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .schema import SCHEMA_VERSION, Record, new_id, user_hash

_UNSET: Any = object()


def build_record(
    *,
    mode: str,
    source: str,
    status: str,
    started_at: str | None,
    ended_at: str | None,
    exit_code: int | None,
    fields: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    record_id: str | None = None,
    now_ms: int | None = None,
    supersedes: str | None = _UNSET,
    notes: Sequence[str] = (),
    user: str | None = _UNSET,
) -> Record:
    """A ledger record: the header fields, then the writer's `fields` (usage, context, ...) in their
    order, then tags, who, where from and which version. `supersedes` is written when given (None
    included: an import says it replaces nothing); `notes` only when there are some."""
    from .. import __version__

    rec: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "id": record_id if record_id is not None else new_id(now_ms),
        "started_at": started_at,
        "ended_at": ended_at,
        "mode": mode,
        "status": status,
        "exit_code": exit_code,
    }
    rec.update(fields)
    rec["tags"] = dict(tags or {})
    rec["user"] = user_hash() if user is _UNSET else user
    rec["source"] = source
    if supersedes is not _UNSET:
        rec["supersedes"] = supersedes
    rec["claude_run_version"] = __version__
    if notes:
        rec["notes"] = list(notes)
    return rec  # type: ignore[return-value]


def cwd_hash(cwd: str | None) -> str | None:
    """The working directory's fingerprint (16 hex of the SHA-256 of its real path): the same for a
    run, a hook's record and an import of a session made in that directory, without storing the path."""
    if not cwd:
        return None
    import hashlib
    import os

    return hashlib.sha256(os.path.realpath(cwd).encode()).hexdigest()[:16]


def main_model(tokens_by_model: Mapping[str, tuple[int, int]]) -> str | None:
    """The model that did most of the work: most output tokens, then most tokens, then by name (so
    the answer never depends on the order the models were seen). `tokens_by_model`: name ->
    (output tokens, all tokens)."""
    if not tokens_by_model:
        return None
    return max(tokens_by_model.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]))[0]
