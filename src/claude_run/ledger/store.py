"""The ledger file: locked appends of whole lines, and streaming reads that never crash.

Layout (see docs/ledger.md): `ledger.jsonl` (the live segment), rotated segments
`ledger.<stamp>.jsonl` beside it, a lock file `ledger.jsonl.lock` and a generation file
`ledger.jsonl.gen`. The lock lives in its own file because repair, prune and rotation replace or
rename the ledger: a lock held on the old inode would not exclude writers of the new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from ..errors import LedgerError
from ..record.schema import SCHEMA_VERSION, Record, is_record, upgrade

if TYPE_CHECKING:
    from .rotation import RotationPolicy

FILE_MODE = 0o600
DIR_MODE = 0o700
_SEGMENT_RE = re.compile(r"\.(\d{8}T\d{6}(?:\d{3})?Z?)(?:-(\d+))?\.jsonl$")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CHUNK = 1 << 20


def lock_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".lock")


def generation_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".gen")


def ledger_stem(ledger: Path) -> str:
    return ledger.name[: -len(".jsonl")] if ledger.name.endswith(".jsonl") else ledger.name


def segment_path(ledger: Path, stamp: str) -> Path:
    return ledger.with_name(f"{ledger_stem(ledger)}.{stamp}.jsonl")


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
    """Hold the ledger's lock (exclusive for writers, shared for readers that must see a stable file).

    flock locks belong to an open file description: a process that already holds the lock must not
    take it again (it would wait for itself). Code running under the lock uses the `*_locked`
    functions and `iter_records(..., lock=False)`.
    """
    ensure_dir(ledger)
    lp = lock_path(ledger)
    _refuse_symlink(lp)
    try:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT | _NOFOLLOW, FILE_MODE)
    except OSError as exc:
        raise LedgerError(f"cannot open ledger lock {lp}: {exc.strerror or exc}") from exc
    try:
        _lock_fd(fd, shared)
        yield
    finally:
        with contextlib.suppress(OSError):
            _unlock_fd(fd)
        os.close(fd)


@contextlib.contextmanager
def _reader_lock(ledger: Path) -> Iterator[None]:
    """A shared lock when one can be had: reading must work in a read-only directory (a CI artifact)."""
    if not ledger.parent.is_dir():
        yield
        return
    lp = lock_path(ledger)
    _refuse_symlink(lp)
    fd = -1
    # A reader never creates the lock of a ledger that does not exist (a mistyped path stays unlittered).
    create = os.path.lexists(ledger)
    for flags in (os.O_RDONLY | _NOFOLLOW, os.O_RDWR | os.O_CREAT | _NOFOLLOW)[: 2 if create else 1]:
        try:
            fd = os.open(lp, flags, FILE_MODE)
            break
        except OSError:
            continue
    if fd < 0:
        yield
        return
    try:
        _lock_fd(fd, True)
        yield
    finally:
        with contextlib.suppress(OSError):
            _unlock_fd(fd)
        os.close(fd)


reader_lock = _reader_lock
refuse_symlink = _refuse_symlink


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


# --- generation: how derived files (the index, day totals) know the ledger was rewritten -------------------


def generation(ledger: Path) -> str:
    """An opaque token that changes on every rewrite (repair, prune, reset, rotation, merge).

    Plain appends do not change it: an index detects those by the live file growing. "0" means the
    ledger was never rewritten. Compare for equality only.
    """
    path = generation_path(ledger)
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return "0"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LedgerError(f"refusing to use {path}: it is a symbolic link") from exc
        raise LedgerError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        text = fh.read(256).decode("ascii", "replace").strip()
    return text or "0"


def bump_generation_locked(ledger: Path) -> str:
    """Give the ledger a new generation. The caller holds the exclusive lock and has finished rewriting."""
    from .atomic import atomic_write

    old = generation(ledger)
    head = old.split(".", 1)[0]
    counter = int(head) + 1 if head.isdigit() else 1
    # The random part keeps tokens distinct even if the file is deleted and the counter restarts.
    new = f"{counter}.{secrets.token_hex(6)}"
    atomic_write(generation_path(ledger), [new.encode("ascii") + b"\n"])
    return new


# --- appending -------------------------------------------------------------------------------------


def encode(record: Record | dict[str, Any]) -> bytes:
    """One compact JSON line. orjson never emits a raw newline inside a value, so a line is a record."""
    return orjson.dumps(record) + b"\n"


def open_for_append(ledger: Path) -> int:
    _refuse_symlink(ledger)
    # O_RDWR, not O_WRONLY: `_needs_newline` preads the last byte (EBADF on a write-only fd).
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | _NOFOLLOW
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


def write_lines_locked(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Append whole lines to one file whose lock the caller holds.

    Never glued to a torn tail, and never leaves one of its own: a write that fails part-way (disk
    full) is cut back to where it started, which only the lock holder may do.
    """
    fd = open_for_append(path)
    try:
        start = os.fstat(fd).st_size
        if _needs_newline(fd):
            data = b"\n" + data
        try:
            write_all(fd, data)
            if fsync:
                os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    except OSError as exc:
        raise LedgerError(f"cannot write ledger {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def append_locked(
    ledger: Path, data: bytes, *, fsync: bool = True, policy: RotationPolicy | None = None
) -> None:
    """Append already-encoded lines; the caller holds the exclusive lock. Rotates first when due."""
    if not data:
        return
    from .rotation import RotationPolicy, maybe_rotate_locked

    maybe_rotate_locked(ledger, len(data), policy if policy is not None else RotationPolicy.from_env())
    write_lines_locked(ledger, data, fsync=fsync)


def spool_waiting(ledger: Path) -> bool:
    """Records that could not be appended earlier wait in the spool (one stat; see `ledger.spool`)."""
    from ..paths import spool_file

    try:
        return os.stat(spool_file(ledger)).st_size > 0
    except OSError:
        return False


def append_lines(
    ledger: Path, lines: list[bytes], *, fsync: bool = True, policy: RotationPolicy | None = None
) -> None:
    """Append whole lines under the exclusive lock, as one write, then make them durable.

    Records spooled by an earlier failed append go first, so the ledger keeps their order.
    """
    if not lines:
        return
    data = b"".join(lines)
    with locked(ledger):
        if spool_waiting(ledger):
            from .spool import flush_locked

            with contextlib.suppress(LedgerError):  # still failing: they keep waiting, in order
                flush_locked(ledger)
        append_locked(ledger, data, fsync=fsync, policy=policy)


def append(ledger: Path, record: Record | dict[str, Any], *, policy: RotationPolicy | None = None) -> None:
    append_lines(ledger, [encode(record)], policy=policy)


# --- reading ---------------------------------------------------------------------------------------


def _segment_key(match: re.Match[str]) -> tuple[str, int]:
    return match.group(1), int(match.group(2) or 0)


def rotated_segments(ledger: Path) -> list[Path]:
    """Rotated segments of a ledger, oldest first (by the stamp in their name, then the tie-break)."""
    parent = ledger.parent
    stem = ledger_stem(ledger)
    rotated: list[tuple[tuple[str, int], Path]] = []
    if parent.is_dir():
        for entry in parent.iterdir():
            name = entry.name
            if not name.startswith(stem + ".") or entry == ledger:
                continue
            match = _SEGMENT_RE.search(name)
            if match and name == f"{stem}{match.group(0)}":
                rotated.append((_segment_key(match), entry))
    rotated.sort()
    return [p for _, p in rotated]


def segment_stamp(segment: Path) -> str | None:
    match = _SEGMENT_RE.search(segment.name)
    return match.group(1) if match else None


def segments(ledger: Path) -> list[Path]:
    """All files of one ledger, oldest first: rotated segments by their stamp, then the live file."""
    out = rotated_segments(ledger)
    if ledger.exists() or ledger.is_symlink() or not out:
        out.append(ledger)
    return out


@dataclass
class SegmentView:
    """One segment opened for a consistent read: read at most `size` bytes from `file`."""

    path: Path
    file: IO[bytes]
    size: int
    dev: int
    ino: int


@dataclass
class Snapshot:
    """The ledger as it was when the snapshot was taken (files opened under the shared lock).

    Rotation renames and rewrites replace directory entries, not the inodes we hold open, so a
    snapshot stays whole while writers carry on. Appends made later lie past `size` and are ignored.
    """

    generation: str
    segments: list[SegmentView]


def _open_segment(path: Path) -> SegmentView | None:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LedgerError(f"refusing to read ledger {path}: it is a symbolic link") from exc
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror or exc}") from exc
    st = os.fstat(fd)
    return SegmentView(path, os.fdopen(fd, "rb", buffering=0), st.st_size, st.st_dev, st.st_ino)


def open_snapshot(ledger: Path, *, lock: bool = True) -> Snapshot:
    """Open every segment (and read the generation) at one instant; close with `close_snapshot`."""
    views: list[SegmentView] = []
    try:
        with _reader_lock(ledger) if lock else contextlib.nullcontext():
            gen = generation(ledger)
            for path in segments(ledger):
                view = _open_segment(path)
                if view is not None:
                    views.append(view)
    except BaseException:
        for view in views:
            view.file.close()
        raise
    return Snapshot(gen, views)


def close_snapshot(snap: Snapshot) -> None:
    for view in snap.segments:
        view.file.close()


@contextlib.contextmanager
def snapshot(ledger: Path, *, lock: bool = True) -> Iterator[Snapshot]:
    snap = open_snapshot(ledger, lock=lock)
    try:
        yield snap
    finally:
        close_snapshot(snap)


def iter_raw(fh: IO[bytes], limit: int | None = None, start: int = 0) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, line without its newline, ended by a newline) for every line, streaming.

    Reads fixed-size chunks, so memory stays flat whatever the ledger size; a long line costs its
    own length and no more. Stops at `limit` bytes so a snapshot never sees a concurrent append.
    """
    fh.seek(start)
    remaining = -1 if limit is None else max(0, limit - start)
    offset = start  # where the next line starts
    pending: list[bytes] = []
    while remaining != 0:
        chunk = fh.read(_CHUNK if remaining < 0 else min(_CHUNK, remaining))
        if not chunk:
            break
        if remaining > 0:
            remaining -= len(chunk)
        parts = chunk.split(b"\n")
        tail = parts.pop()  # what follows the chunk's last newline: the start of an unfinished line
        if parts:
            if pending:
                pending.append(parts[0])
                parts[0] = b"".join(pending)
                pending = []
            for line in parts:
                yield offset, line, True
                offset += len(line) + 1
        if tail:
            pending.append(tail)
    if pending:
        yield offset, b"".join(pending), False


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line without newline) for every line of one file, streaming, any length."""
    view = _open_segment(path)
    if view is None:
        return
    with view.file:
        for lineno, (_, line, _) in enumerate(iter_raw(view.file, view.size), 1):
            yield lineno, line.rstrip(b"\r")


def parse_record(line: bytes) -> Record | None:
    """A record, or None for a blank, torn or foreign line. Never raises, whatever the bytes."""
    if not line.strip():
        return None
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not is_record(raw) or not raw["id"]:
        return None
    return upgrade(raw)


MAX_LISTED_BAD = 1000


@dataclass
class ReadStats:
    """What a read skipped: readers warn once instead of crashing on a bad line.

    `bad_lines` lists the first `MAX_LISTED_BAD` bad lines (a file of binary garbage has millions,
    and a list of all of them would make memory grow with the ledger); `bad_count` counts them all.
    """

    lines: int = 0
    records: int = 0
    bad_lines: list[tuple[Path, int]] = field(default_factory=list)
    bad_count: int = 0
    future_version: int = 0
    generation: str = ""

    def bad(self, path: Path, lineno: int) -> None:
        self.bad_count += 1
        if len(self.bad_lines) < MAX_LISTED_BAD:
            self.bad_lines.append((path, lineno))

    def warnings(self) -> list[str]:
        out = []
        if self.bad_lines:
            path, lineno = self.bad_lines[0]
            more = f" (and {self.bad_count - 1} more)" if self.bad_count > 1 else ""
            out.append(
                f"skipped {self.bad_count} unreadable ledger line(s), first at {path}:{lineno}{more};"
                " run `claude-run ledger verify`"
            )
        if self.future_version:
            out.append(
                f"{self.future_version} record(s) come from a newer claude-run (schema > v{SCHEMA_VERSION});"
                " reading the fields this version knows"
            )
        return out


def iter_view(view: SegmentView, stats: ReadStats) -> Iterator[Record]:
    """The records of one opened segment, counting what is skipped."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    lineno = 0
    for _, line, _ in iter_raw(view.file, view.size):
        lineno += 1
        stats.lines += 1
        # Hot loop (every report): parse first, look at blank lines only when parsing fails.
        try:
            raw = loads(line)
        except decode_error:
            if line.strip():
                stats.bad(view.path, lineno)
            continue
        if not is_record(raw) or not raw["id"]:
            stats.bad(view.path, lineno)
            continue
        if raw["v"] > SCHEMA_VERSION:
            stats.future_version += 1
        stats.records += 1
        yield upgrade(raw)


def iter_records(
    ledger: Path, stats: ReadStats | None = None, *, lock: bool = True
) -> Generator[Record, None, None]:
    """Every record of every segment, oldest segment first, skipping (and counting) bad lines.

    `lock=False` is for callers that already hold the exclusive lock.
    """
    stats = stats if stats is not None else ReadStats()
    with snapshot(ledger, lock=lock) as snap:
        stats.generation = snap.generation
        for view in snap.segments:
            yield from iter_view(view, stats)


def iter_file_records(path: Path, stats: ReadStats | None = None) -> Iterator[Record]:
    """The records of one file read on its own (a segment, or a ledger copied from elsewhere)."""
    stats = stats if stats is not None else ReadStats()
    view = _open_segment(path)
    if view is None:
        return
    with view.file:
        yield from iter_view(view, stats)
