"""The ledger file: locked appends of whole lines, and streaming reads that never crash.

Layout: `ledger.jsonl` (the live segment), rotated segments `ledger.<stamp>.jsonl` beside it, and a
lock file `ledger.jsonl.lock`. The lock lives in its own file because repair and rotation replace the
ledger by rename: a lock held on the old inode would not exclude writers of the new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import LedgerError
from ..record import SCHEMA_VERSION, Record, is_record, upgrade

FILE_MODE = 0o600
DIR_MODE = 0o700
_SEGMENT_RE = re.compile(r"\.(\d{8}T\d{6}(?:\d{3})?Z?(?:-\d+)?)\.jsonl$")


def lock_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".lock")


def _refuse_symlink(path: Path) -> None:
    # A ledger path that is a symlink could be pointed at another user's file or a system file.
    if path.is_symlink():
        raise LedgerError(f"refusing to use ledger {path}: it is a symbolic link")


def ensure_dir(ledger: Path) -> None:
    parent = ledger.parent
    _refuse_symlink(ledger)
    if not parent.exists():
        try:
            parent.mkdir(parents=True, mode=DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create ledger directory {parent}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def locked(ledger: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold the ledger's lock (exclusive for writers, shared for readers that must see a stable file)."""
    ensure_dir(ledger)
    lp = lock_path(ledger)
    _refuse_symlink(lp)
    try:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    except OSError as exc:
        raise LedgerError(f"cannot open ledger lock {lp}: {exc.strerror or exc}") from exc
    try:
        _lock_fd(fd, shared)
        yield
    finally:
        with contextlib.suppress(OSError):
            _unlock_fd(fd)
        os.close(fd)


def _lock_fd(fd: int, shared: bool) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


def _unlock_fd(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def encode(record: Record | dict[str, Any]) -> bytes:
    """One compact JSON line. orjson never emits a raw newline inside a value, so a line is a record."""
    return orjson.dumps(record) + b"\n"


def open_for_append(ledger: Path) -> int:
    _refuse_symlink(ledger)
    # O_RDWR, not O_WRONLY: _needs_newline preads the last byte.
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(ledger, flags, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LedgerError(f"refusing to use ledger {ledger}: it is a symbolic link") from exc
        raise LedgerError(f"cannot open ledger {ledger}: {exc.strerror or exc}") from exc


def _needs_newline(fd: int) -> bool:
    """True when the file ends mid-line: a writer was killed during its write.

    Appending straight after a torn tail would glue our record onto it and lose both; a newline
    first turns the fragment into one bad line that readers skip and `verify` reports.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return False
    # O_APPEND does not stop pread from reading anywhere.
    return os.pread(fd, 1, size - 1) != b"\n"


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def append_lines(ledger: Path, lines: list[bytes], *, fsync: bool = True) -> None:
    """Append whole lines under the exclusive lock, as one write, then make them durable."""
    if not lines:
        return
    data = b"".join(lines)
    with locked(ledger):
        fd = open_for_append(ledger)
        try:
            if _needs_newline(fd):
                data = b"\n" + data
            write_all(fd, data)
            if fsync:
                os.fsync(fd)
        except OSError as exc:
            raise LedgerError(f"cannot write ledger {ledger}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)


def append(ledger: Path, record: Record | dict[str, Any]) -> None:
    append_lines(ledger, [encode(record)])


def segments(ledger: Path) -> list[Path]:
    """All files of one ledger, oldest first: rotated segments by their stamp, then the live file."""
    parent = ledger.parent
    stem = ledger.name[: -len(".jsonl")] if ledger.name.endswith(".jsonl") else ledger.name
    rotated: list[tuple[str, Path]] = []
    if parent.is_dir():
        for entry in parent.iterdir():
            name = entry.name
            if not name.startswith(stem + ".") or entry == ledger:
                continue
            match = _SEGMENT_RE.search(name)
            if match and name == f"{stem}.{match.group(1)}.jsonl":
                rotated.append((match.group(1), entry))
    rotated.sort()
    out = [p for _, p in rotated]
    if ledger.exists() or not out:
        out.append(ledger)
    return out


@dataclass
class ReadStats:
    """What a read skipped: readers warn once instead of crashing on a bad line."""

    lines: int = 0
    records: int = 0
    bad_lines: list[tuple[Path, int]] = field(default_factory=list)
    future_version: int = 0

    def warnings(self) -> list[str]:
        out = []
        if self.bad_lines:
            path, lineno = self.bad_lines[0]
            more = f" (and {len(self.bad_lines) - 1} more)" if len(self.bad_lines) > 1 else ""
            out.append(
                f"skipped {len(self.bad_lines)} unreadable ledger line(s), first at {path}:{lineno}{more};"
                " run `claude-run ledger verify`"
            )
        if self.future_version:
            out.append(
                f"{self.future_version} record(s) come from a newer claude-run (schema > v{SCHEMA_VERSION});"
                " reading the fields this version knows"
            )
        return out


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line without newline) for every line, streaming, any line length."""
    try:
        fh: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed below, generator-friendly
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror or exc}") from exc
    with fh:
        for lineno, line in enumerate(fh, 1):
            yield lineno, line.rstrip(b"\r\n")


def parse_line(line: bytes) -> Record | None:
    """A record, or None for a blank, torn or foreign line."""
    if not line.strip():
        return None
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not is_record(raw):
        return None
    return upgrade(raw)


def iter_records(ledger: Path, stats: ReadStats | None = None) -> Iterator[Record]:
    """Every record of every segment, oldest segment first, skipping (and counting) bad lines."""
    stats = stats if stats is not None else ReadStats()
    for seg in segments(ledger):
        if seg.is_symlink():
            raise LedgerError(f"refusing to read ledger segment {seg}: it is a symbolic link")
        for lineno, line in iter_lines(seg):
            stats.lines += 1
            if not line.strip():
                continue
            rec = parse_line(line)
            if rec is None:
                stats.bad_lines.append((seg, lineno))
                continue
            if rec.get("v", 0) > SCHEMA_VERSION:
                stats.future_version += 1
            stats.records += 1
            yield rec
