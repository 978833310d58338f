"""`ledger export`: selected records as JSON Lines, a JSON array, or flat CSV, written atomically."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import tzinfo
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import LedgerError, UsageError
from ..query.filters import Filters

EXPORT_FORMATS = ("jsonl", "json", "csv", "parquet")
CSV_COLUMNS = (
    "id", "started_at", "ended_at", "status", "mode", "project", "branch", "commit", "model",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "total_tokens",
    "cost_usd", "cost_source", "duration_ms", "num_turns", "session_id", "ci_provider", "ci_job",
    "ci_run_id", "supersedes", "user",
)  # fmt: skip


def _flat(rec: dict[str, Any]) -> dict[str, Any]:
    tokens = rec.get("tokens") or {}
    git = rec.get("git") or {}
    ci = rec.get("ci") if isinstance(rec.get("ci"), dict) else {}
    from ..record.schema import total_tokens

    cost = rec.get("cost_usd")
    return {
        "id": rec.get("id"),
        "started_at": rec.get("started_at"),
        "ended_at": rec.get("ended_at"),
        "status": rec.get("status"),
        "mode": rec.get("mode"),
        "project": rec.get("project"),
        "branch": git.get("branch"),
        "commit": git.get("commit"),
        "model": rec.get("model"),
        "input_tokens": tokens.get("input", 0),
        "output_tokens": tokens.get("output", 0),
        "cache_read_tokens": tokens.get("cache_read", 0),
        "cache_write_tokens": tokens.get("cache_creation", 0),
        "total_tokens": total_tokens(tokens),
        "cost_usd": repr(cost) if isinstance(cost, float) else cost,
        "cost_source": rec.get("cost_source"),
        "duration_ms": rec.get("duration_ms"),
        "num_turns": rec.get("num_turns"),
        "session_id": rec.get("session_id"),
        "ci_provider": (ci or {}).get("provider"),
        "ci_job": (ci or {}).get("job"),
        "ci_run_id": (ci or {}).get("run_id"),
        "supersedes": rec.get("supersedes"),
        "user": rec.get("user"),
    }


def _write(records: Iterator[Any], fmt: str, fh: IO[bytes]) -> int:
    n = 0
    if fmt == "jsonl":
        for rec in records:
            fh.write(orjson.dumps(rec) + b"\n")
            n += 1
        return n
    if fmt == "json":
        fh.write(b"[")
        for rec in records:
            fh.write((b",\n" if n else b"\n") + orjson.dumps(rec))
            n += 1
        fh.write(b"\n]\n" if n else b"]\n")
        return n
    # CSV: the tag keys become columns, so collect them first (records are held as flat dicts only).
    rows = []
    tag_keys: set[str] = set()
    for rec in records:
        flat = _flat(rec)
        tags = rec.get("tags") if isinstance(rec.get("tags"), dict) else {}
        for k, v in tags.items():
            flat["tag:" + k] = v
            tag_keys.add("tag:" + k)
        rows.append(flat)
    text = io.StringIO()
    w = csv.DictWriter(text, [*CSV_COLUMNS, *sorted(tag_keys)], lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    fh.write(text.getvalue().encode())
    return len(rows)


def export_records(
    ledger: Path, filters: Filters, tz: tzinfo, fmt: str, output: Path | None, *, fold: bool = True
) -> int:
    """Write the records; to `output` via a temp file renamed into place (no half-written export)."""
    from ..query.records import export_parquet, iter_selected

    if fmt == "parquet":
        if output is None:
            raise UsageError("--format parquet needs --output FILE")
        try:
            return export_parquet(ledger, filters, tz, output.expanduser(), fold=fold)
        except OSError as exc:
            raise LedgerError(f"cannot write {output}: {exc.strerror or exc}") from exc
    records = iter_selected(ledger, filters, tz, fold=fold)
    if output is None:
        n = _write(records, fmt, sys.stdout.buffer)
        sys.stdout.flush()
        return n
    target = output.expanduser()
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise LedgerError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            n = _write(records, fmt, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise LedgerError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise
    return n
