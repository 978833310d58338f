"""Merge, prune and reset: the ledger rewrites, each under the exclusive lock, each file replaced atomically.

Superseding records (`supersedes`: the id of the record a newer one replaces, written by `import`)
constrain what may be removed. Reports hide a superseded record whenever its successor is present,
so removing a successor while keeping what it superseded would bring a stale record back to life.
The rule everywhere (prune, retention): when a record is removed, the records it supersedes,
transitively, are removed with it. Keeping a successor whose predecessor is gone is harmless (its
`supersedes` then names nothing, and reports simply count it). Merge only adds records, so every
supersede link that held in either ledger still holds in the union.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from ..errors import LedgerError
from ..record.schema import Record, is_record, named_target, parse_iso, upgrade
from .atomic import atomic_write, fsync_dir, stale_temps
from .store import (
    ReadStats,
    append_locked,
    bump_generation_locked,
    encode,
    generation_path,
    iter_file_records,
    iter_raw,
    iter_records,
    ledger_stem,
    locked,
    parse_record,
    rotated_segments,
    segment_stamp,
    segments,
)

if TYPE_CHECKING:
    from .rotation import RotationPolicy


def remove_stale_temps_locked(ledger: Path) -> list[Path]:
    """Delete the temp files of rewrites that were killed; the caller holds the exclusive lock.

    Every rewrite of a ledger file happens under that lock, so while we hold it any temp file of a
    ledger file is an orphan. Readers never look at them (the leading dot keeps them out of the
    segment list); this only reclaims space.
    """

    def is_ours(target: str) -> bool:
        if target in (ledger.name, generation_path(ledger).name):
            return True
        candidate = ledger.with_name(target)
        return segment_stamp(candidate) is not None and candidate.name.startswith(ledger_stem(ledger) + ".")

    removed = []
    for tmp in stale_temps(ledger.parent, is_ours):
        try:
            tmp.unlink()
        except OSError:
            continue
        removed.append(tmp)
    return removed


def record_time(rec: Record) -> datetime | None:
    """When a run happened: its start, else its end; None when neither parses (such records are kept)."""
    for key in ("started_at", "ended_at"):
        value = rec.get(key)
        if isinstance(value, str):
            try:
                return parse_iso(value)
            except ValueError:
                continue
    return None


@dataclass
class DropResult:
    examined: int = 0
    dropped: int = 0
    dropped_superseded: int = 0
    kept: int = 0
    kept_unreadable: int = 0
    files_rewritten: list[Path] = field(default_factory=list)
    files_removed: list[Path] = field(default_factory=list)


def _closure(edges: dict[str, str], start: set[str]) -> set[str]:
    """Every id reachable from `start` by following `supersedes` links."""
    out: set[str] = set()
    frontier = list(start)
    while frontier:
        rid = frontier.pop()
        if rid in out:
            continue
        out.add(rid)
        nxt = edges.get(rid)
        if nxt is not None and nxt not in out:
            frontier.append(nxt)
    return out


def _file_records(path: Path) -> Iterator[Record]:
    return iter_file_records(path, ReadStats())


def drop_records_locked(
    ledger: Path,
    initial: Callable[[Path, Record], bool],
    *,
    whole_files: frozenset[Path] = frozenset(),
    dry_run: bool = False,
) -> DropResult:
    """Remove the records `initial` selects, plus everything they supersede; the caller holds the lock.

    `whole_files` are rotated segments removed outright (retention). Two passes, memory bounded by
    the number of superseding records rather than the ledger size: the first finds what goes (and
    the supersede links), the second rewrites only the files that change (a file is touched only
    when it holds a record to remove, so every rewrite removes something). Unreadable lines are not
    ours to judge here: they are kept verbatim for `verify --repair`.
    """
    result = DropResult()
    if not dry_run:
        remove_stale_temps_locked(ledger)
    files = segments(ledger)
    for extra in whole_files:
        if extra not in files:
            files.append(extra)
    edges: dict[str, str] = {}  # superseding id -> superseded id
    removed_ids: set[str] = set()  # ids of superseding records that are removed (closure seeds)
    touched: set[Path] = set()
    per_file: dict[Path, int] = {}
    for path in files:
        whole = path in whole_files
        per_file[path] = 0
        for rec in _file_records(path):
            result.examined += 1
            per_file[path] += 1
            rid = rec["id"]
            target = named_target(rec)
            if target is not None:
                edges[rid] = target
            if whole or initial(path, rec):
                touched.add(path)
                if target is not None:
                    removed_ids.add(rid)
    seeds = {edges[rid] for rid in removed_ids}
    superseded = _closure(edges, seeds)
    if superseded:
        # The records these ids name may sit in any file: look for them where nothing else changes.
        for path in files:
            if (
                path not in touched
                and path not in whole_files
                and any(rec["id"] in superseded for rec in _file_records(path))
            ):
                touched.add(path)

    for path in files:
        if path in whole_files:
            result.dropped += per_file[path]
            result.files_removed.append(path)
            if not dry_run:
                _unlink(path)
            continue
        if path not in touched:
            result.kept += per_file[path]
            continue
        counts = {"dropped": 0, "superseded": 0, "kept": 0, "bad": 0}
        kept = _kept_lines(path, initial, superseded, counts)
        if dry_run:
            for _ in kept:
                pass
        else:
            atomic_write(path, kept)
        result.dropped += counts["dropped"] + counts["superseded"]
        result.dropped_superseded += counts["superseded"]
        result.kept += counts["kept"]
        result.kept_unreadable += counts["bad"]
        if path != ledger and counts["kept"] + counts["bad"] == 0:
            result.files_removed.append(path)
            if not dry_run:
                _unlink(path)  # a rotated segment left empty has no reason to exist
        else:
            result.files_rewritten.append(path)
    if not dry_run and (result.files_rewritten or result.files_removed):
        bump_generation_locked(ledger)
    return result


def _kept_lines(
    path: Path, initial: Callable[[Path, Record], bool], superseded: set[str], counts: dict[str, int]
) -> Iterator[bytes]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in finally, generator-friendly
    except FileNotFoundError:
        return
    try:
        for _, line, _ in iter_raw(fh):
            if not line.strip():
                continue
            rec = parse_record(line)
            if rec is None:
                counts["bad"] += 1
                yield line + b"\n"
            elif rec["id"] in superseded:
                counts["superseded"] += 1
            elif initial(path, rec):
                counts["dropped"] += 1
            else:
                counts["kept"] += 1
                yield line + b"\n"
    finally:
        fh.close()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LedgerError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    fsync_dir(path.parent)


def prune(ledger: Path, before: datetime, *, dry_run: bool = False) -> DropResult:
    """Remove records that ran before `before` (an aware datetime), and what they supersede."""

    utc = before.astimezone(timezone.utc)
    cutoff = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    exact = utc.microsecond % 1000 == 0

    def is_old(_path: Path, rec: Record) -> bool:
        value = rec.get("started_at")
        # Fast path: the form claude-run writes (UTC, milliseconds, Z) sorts as text.
        if exact and isinstance(value, str) and len(value) == 24 and value[10] == "T" and value[23] == "Z":
            return value < cutoff
        when = record_time(rec)
        return when is not None and when < before

    with locked(ledger):
        result = drop_records_locked(ledger, is_old, dry_run=dry_run)
        if not dry_run:
            note_pruned_locked(ledger, utc)
        return result


def pruned_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".pruned")


def note_pruned_locked(ledger: Path, before: datetime) -> None:
    """Remember that records started before `before` were removed on purpose (prune, retention).

    Derived state that rebuilds from other sources (`ledger import` from Claude's transcripts) reads
    it so as not to bring back what was deliberately removed. Only ever moves forward.
    """
    earlier = pruned_before(ledger)
    if earlier is not None and earlier >= before:
        return
    stamp = before.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    atomic_write(pruned_path(ledger), [orjson.dumps({"before": stamp}) + b"\n"])


def pruned_before(ledger: Path) -> datetime | None:
    """Records that started before this were removed on purpose; None: nothing was."""
    try:
        raw = orjson.loads(pruned_path(ledger).read_bytes())
        return parse_iso(raw["before"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


@dataclass
class ResetResult:
    records: int = 0
    files: list[Path] = field(default_factory=list)


def count_records(ledger: Path) -> int:
    return sum(1 for _ in iter_records(ledger, ReadStats()))


def reset(ledger: Path) -> ResetResult:
    """Remove every record: rotated segments are deleted, the live ledger replaced by an empty file.

    Each step is atomic and all happen under the lock, so no locked reader sees a half-reset ledger;
    a crash part-way leaves some older segments, and running reset again finishes the job. The
    quarantine file is left alone: it holds evidence, not records.
    """
    result = ResetResult()
    with locked(ledger):
        result.records = sum(1 for _ in iter_records(ledger, ReadStats(), lock=False))
        remove_stale_temps_locked(ledger)
        for seg in rotated_segments(ledger):
            _unlink(seg)
            result.files.append(seg)
        if ledger.exists() or ledger.is_symlink():
            atomic_write(ledger, [])
            result.files.append(ledger)
        bump_generation_locked(ledger)
    return result


@dataclass
class MergeResult:
    files: int = 0
    seen: int = 0
    added: int = 0
    already_present: int = 0
    duplicates_in_sources: int = 0
    conflicts: int = 0
    invalid: list[tuple[Path, int]] = field(default_factory=list)


def _read_source(path: Path, incoming: dict[str, bytes], result: MergeResult) -> None:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with fh:
        if not os.path.isfile(path):
            raise LedgerError(f"cannot merge {path}: not a regular file")
        for lineno, (_, line, _) in enumerate(iter_raw(fh), 1):
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError:
                raw = None
            if not is_record(raw):
                result.invalid.append((path, lineno))
                continue
            result.seen += 1
            rid = raw["id"]
            if rid in incoming:
                result.duplicates_in_sources += 1
                continue
            # Re-encoded compactly: the ledger's one-record-one-line form, whatever the source's spacing.
            incoming[rid] = encode(raw)


def merge(
    ledger: Path, sources: Sequence[Path], *, dry_run: bool = False, policy: RotationPolicy | None = None
) -> MergeResult:
    """Append the records of `sources` whose ids the ledger lacks. Merging the same files twice adds nothing.

    Sources are held in memory (CI artifacts are small); the ledger is streamed. When an id is on
    both sides with different contents the ledger's copy wins and the conflict is counted.
    """
    result = MergeResult(files=len(sources))
    incoming: dict[str, bytes] = {}
    for src in sources:
        _read_source(src, incoming, result)
    with locked(ledger):
        records = iter_records(ledger, ReadStats(), lock=False)
        with contextlib.closing(records):
            for rec in records:
                line = incoming.pop(rec["id"], None)
                if line is None:
                    continue
                result.already_present += 1
                if upgrade(orjson.loads(line)) != rec:
                    result.conflicts += 1
                if not incoming:
                    break
        result.added = len(incoming)
        if incoming and not dry_run:
            append_locked(ledger, b"".join(incoming.values()), policy=policy)
            bump_generation_locked(ledger)
    return result
