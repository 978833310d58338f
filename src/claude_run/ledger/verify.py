"""Verify every line of every segment; repair by moving bad lines to a quarantine file beside the ledger.

A bad line is one readers skip: a torn tail (a writer killed mid-write), bytes that are not JSON,
or JSON that is not a record (needs an integer `v` and a string `id`). Blank lines are not bad.

A suspect record is well-formed but cannot be true: an id seen before (ledgers joined with `cat`),
or a negative, non-finite or absurd cost or token count (`record.implausible`). Verify lists
them with their line numbers; repair leaves them alone (which copy is right needs a person).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import LedgerError
from ..record.schema import SCHEMA_VERSION, implausible, is_record, iso_utc
from .atomic import atomic_write
from .store import (
    FILE_MODE,
    MAX_LISTED_BAD,
    SegmentView,
    bump_generation_locked,
    iter_raw,
    locked,
    snapshot,
)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def quarantine_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".quarantine")


@dataclass(frozen=True)
class BadLine:
    path: Path
    lineno: int
    offset: int
    length: int
    reason: str


@dataclass
class VerifyResult:
    files: list[Path] = field(default_factory=list)
    lines: int = 0
    records: int = 0
    future_version: int = 0
    bad: list[BadLine] = field(default_factory=list)  # the first MAX_LISTED_BAD of them
    bad_count: int = 0
    quarantined: int = 0
    quarantine: Path | None = None
    removed_temps: list[Path] = field(default_factory=list)
    suspect: list[BadLine] = field(default_factory=list)  # the first MAX_LISTED_BAD of them
    suspect_count: int = 0
    first_seen: dict[str, tuple[str, int]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.bad_count == 0 and self.suspect_count == 0

    def check(self, raw: dict[str, Any], path: Path, lineno: int, offset: int, length: int) -> None:
        """Note a well-formed record that cannot be true (a repeated id, an impossible figure)."""
        # A newer schema may give a field another shape: only the id is checked for those.
        reason = implausible(raw) if raw["v"] <= SCHEMA_VERSION else None
        seen = self.first_seen.get(raw["id"])
        if seen is not None:
            where = f"line {seen[1]}" if seen[0] == path.name else f"{seen[0]}:{seen[1]}"
            reason = f"duplicate id {raw['id']} (first at {where})" + (f"; {reason}" if reason else "")
        else:
            self.first_seen[raw["id"]] = (path.name, lineno)
        if reason is None:
            return
        self.suspect_count += 1
        if len(self.suspect) < MAX_LISTED_BAD:
            self.suspect.append(BadLine(path, lineno, offset, length, reason))


def classify(line: bytes, terminated: bool) -> tuple[str | None, Any]:
    """(why the line is bad or None, the parsed object). Never raises."""
    if not terminated:
        return "torn: no newline at end of file (a writer was interrupted)", None
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not valid JSON", None
    if not is_record(raw):
        return 'JSON but not a record (needs an integer "v" and a string "id")', None
    if not raw["id"]:
        return "record with an empty id", None
    return None, raw


def _scan_view(view: SegmentView, result: VerifyResult) -> Iterator[tuple[BadLine | None, bytes]]:
    for lineno, (offset, line, terminated) in enumerate(iter_raw(view.file, view.size), 1):
        result.lines += 1
        if not line.strip():
            if not terminated:  # whitespace after the last newline is a harmless leftover
                continue
            yield None, b""
            continue
        reason, raw = classify(line, terminated)
        if reason is not None:
            bad = BadLine(view.path, lineno, offset, len(line), reason)
            result.bad_count += 1
            if len(result.bad) < MAX_LISTED_BAD:
                result.bad.append(bad)
            yield bad, line
            continue
        result.records += 1
        result.check(raw, view.path, lineno, offset, len(line))
        if raw["v"] > SCHEMA_VERSION:
            result.future_version += 1
        yield None, line


def verify(ledger: Path) -> VerifyResult:
    """Read every line of every segment (a consistent snapshot) and list the bad ones."""
    result = VerifyResult()
    with snapshot(ledger) as snap:
        for view in snap.segments:
            result.files.append(view.path)
            for _ in _scan_view(view, result):
                pass
    return result


def _quarantine_entry(bad: BadLine, line: bytes, at: str) -> bytes:
    entry: dict[str, Any] = {
        "quarantined_at": at,
        "file": bad.path.name,
        "line": bad.lineno,
        "offset": bad.offset,
        "reason": bad.reason,
        "bytes": len(line),
        "text": line.decode("utf-8", "replace"),
    }
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        entry["base64"] = base64.b64encode(line).decode("ascii")  # the exact bytes, for forensics
    return orjson.dumps(entry) + b"\n"


def _open_quarantine(path: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, FILE_MODE)
    except OSError as exc:
        raise LedgerError(f"cannot open quarantine file {path}: {exc.strerror or exc}") from exc


def _good_lines(view: SegmentView, result: VerifyResult, qfd: int, at: str) -> Iterator[bytes]:
    for bad, line in _scan_view(view, result):
        if bad is None:
            if line:
                yield line + b"\n"
            continue
        data = _quarantine_entry(bad, line, at)
        view_ = memoryview(data)
        while view_:
            view_ = view_[os.write(qfd, view_) :]
        result.quarantined += 1


def repair(ledger: Path) -> VerifyResult:
    """Move bad lines to `<ledger>.quarantine` and rewrite each affected segment atomically.

    Under the exclusive lock. The quarantine is fsynced before a segment is replaced, so a crash can
    leave a bad line in both places (repair again quarantines it twice) but never in neither.
    """
    result = VerifyResult()
    qpath = quarantine_path(ledger)
    at = iso_utc(time.time())
    from .maintenance import remove_stale_temps_locked

    with locked(ledger):
        result.removed_temps = remove_stale_temps_locked(ledger)
        with snapshot(ledger, lock=False) as snap:
            bad_files: list[SegmentView] = []
            for view in snap.segments:
                result.files.append(view.path)
                before = result.bad_count
                for _ in _scan_view(view, result):
                    pass
                if result.bad_count > before:
                    bad_files.append(view)
            if not bad_files:
                return result
            qfd = _open_quarantine(qpath)
            try:
                for view in bad_files:
                    # Counted again on the rewrite pass; keep the first pass's figures.
                    scratch = VerifyResult()
                    atomic_write(
                        view.path,
                        _good_lines(view, scratch, qfd, at),
                        before_replace=lambda: os.fsync(qfd),
                    )
                    result.quarantined += scratch.quarantined
            finally:
                os.close(qfd)
        result.quarantine = qpath
        bump_generation_locked(ledger)
    return result


def describe(bad: BadLine) -> str:
    return f"{bad.path}:{bad.lineno}: {bad.reason} ({bad.length} bytes at offset {bad.offset})"


def read_quarantine(path: Path) -> Iterator[dict[str, Any]]:
    """The quarantined entries (for tests and forensics)."""
    try:
        fh: IO[bytes] = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with fh:
        for _, line, _ in iter_raw(fh):
            if line.strip():
                yield orjson.loads(line)
