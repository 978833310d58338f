"""Records that could not be appended (disk full, read-only file system, permissions) wait here.

One private append-only file per ledger, `paths.spool_file(ledger)` (0600 in a 0700 directory under
the user's state directory, or `$CLAUDE_RUN_SPOOL_DIR`). Each line is one JSON object: `ledger`
(absolute path), `spooled_at`, `reason`, `record`. Imported only when an append fails or a
spooled record is to be delivered: never on a plain run's path.

Delivery (`flush_locked`, under the ledger's exclusive lock, then the spool's): the spooled records
the ledger does not hold yet are appended in spool order as one write, then the spool file is
removed. A crash between the two leaves records in both places; the next delivery finds their ids
in the ledger and skips them, so each record lands exactly once.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import LedgerError
from ..paths import spool_file
from ..record.schema import is_record
from . import store


@dataclass
class Spooled:
    ledger: str
    record: dict[str, Any]
    raw: dict[str, Any]  # the whole entry, kept as it was when the spool is rewritten

    @property
    def id(self) -> str:
        return str(self.record["id"])


@dataclass
class Delivery:
    spool: Path
    appended: list[str] = field(default_factory=list)  # ids appended now
    already: list[str] = field(default_factory=list)  # ids the ledger held (a crash after an append)
    unreadable: int = 0  # spool lines that were not entries (a torn last line)


def spool(ledger: Path, records: list[dict[str, Any]], reason: str) -> Path:
    """Keep records that could not be appended to `ledger`; returns where they wait.

    Raises LedgerError when the spool cannot be written either (the caller then shows the record).
    """
    import time

    from ..record.schema import iso_utc

    path = spool_file(ledger)
    _private_dir(path.parent)
    now = iso_utc(time.time())
    target = os.path.abspath(ledger)
    data = b"".join(
        orjson.dumps({"ledger": target, "spooled_at": now, "reason": reason, "record": rec}) + b"\n"
        for rec in records
    )
    with store.locked(path):
        store.write_lines_locked(path, data)
    return path


def _private_dir(directory: Path) -> None:
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=store.DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise LedgerError(f"cannot create spool directory {directory}: {exc.strerror or exc}") from exc
    if directory.is_symlink():
        raise LedgerError(f"refusing to use spool directory {directory}: it is a symbolic link")


def read(path: Path) -> tuple[list[Spooled], int]:
    """The entries of one spool file in order, and how many lines were not entries."""
    entries: list[Spooled] = []
    bad = 0
    for _, line in store.iter_lines(path):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError:
            bad += 1
            continue
        rec = raw.get("record") if isinstance(raw, dict) else None
        if not isinstance(rec, dict) or not isinstance(raw.get("ledger"), str):
            bad += 1
            continue
        if not (is_record(rec) and rec["id"]):
            bad += 1
            continue
        entries.append(Spooled(raw["ledger"], rec, raw))
    return entries, bad


def waiting(ledger: Path) -> list[Spooled]:
    path = spool_file(ledger)
    if not path.exists():
        return []
    with store.locked(path):
        return read(path)[0]


def spool_files() -> list[Path]:
    """Every spool file of this user (for `flush-spool --all`)."""
    directory = spool_file(Path("x")).parent
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == ".jsonl" and not p.is_symlink())
    except OSError:
        return []


def flush_locked(ledger: Path) -> Delivery:
    """Deliver `ledger`'s spooled records; the caller holds the ledger's exclusive lock.

    Raises LedgerError when the ledger still cannot be written: the spool is then left as it was.
    """
    path = spool_file(ledger)
    result = Delivery(path)
    if not path.exists():
        return result
    with store.locked(path):
        entries, result.unreadable = read(path)
        target = os.path.abspath(ledger)
        mine: dict[str, Spooled] = {}
        for e in entries:
            if e.ledger == target:
                mine.setdefault(e.id, e)  # a record spooled twice still lands once
        present = ids_present(ledger, set(mine))
        fresh = [e for i, e in mine.items() if i not in present]
        result.already = [i for i in mine if i in present]
        store.append_locked(ledger, b"".join(store.encode(e.record) for e in fresh))
        result.appended = [e.id for e in fresh]
        _after_append()
        others = [e for e in entries if e.ledger != target]
        if others:
            from .atomic import atomic_write

            atomic_write(path, (_entry_line(e) for e in others))
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return result


def _after_append() -> None:
    """Where a crash between delivering and clearing the spool would strike (tests interpose here)."""


def _entry_line(e: Spooled) -> bytes:
    return orjson.dumps(e.raw) + b"\n"


def flush(ledger: Path) -> Delivery:
    with store.locked(ledger):
        return flush_locked(ledger)


def ids_present(ledger: Path, ids: set[str]) -> set[str]:
    """Which of `ids` the ledger holds as whole records (a torn fragment holding an id does not count).

    A byte search per id over each segment, parsing only the lines it hits: delivery is rare and
    the ids few, so this beats parsing a large ledger line by line.
    """
    found: set[str] = set()
    if not ids:
        return found
    for seg in store.segments(ledger):
        for line in _lines_naming(seg, ids - found):
            rec = store.parse_record(line)
            if rec is not None and rec["id"] in ids:
                found.add(rec["id"])
    return found


def _lines_naming(path: Path, ids: set[str]) -> Iterator[bytes]:
    if not ids:
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, mmap needs the descriptor open
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror or exc}") from exc
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as mm:
            for rid in ids:
                needle = orjson.dumps(rid)
                pos = mm.find(needle)
                while pos >= 0:
                    start = mm.rfind(b"\n", 0, pos) + 1
                    end = mm.find(b"\n", pos)
                    if end < 0:
                        break  # an unfinished last line is no record
                    yield mm[start:end]
                    pos = mm.find(needle, end)
