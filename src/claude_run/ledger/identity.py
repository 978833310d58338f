"""Which ledger a derived file describes, and whether the ledger on disk is still that one.

Every file kept beside the ledger that is computed from it (import state, read indexes, budget or
status-line totals) stores an `Identity` taken when it was last brought up to date, and checks
`holds` before trusting itself. The ledger may have been deleted, replaced by another file,
restored from an older copy, rotated, merged into or rewritten since: then the derived file no
longer describes it and must be rebuilt, or reconciled with what the ledger actually holds.

An identity is the generation (bumped by every rewrite, see `store.generation`) plus, per segment:
its name, device, inode, size, and hashes of the first and last 4 KiB of those bytes. It still
holds when the only change is lines appended: same generation, same segments, same inodes, each at
least as long, and the bytes it covered start and end as they did. A copy restored over the same
inode, a file truncated and refilled, a rename of another file into place: all fail the check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import LedgerError
from . import store

EDGE = 4096


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _edges(fh: IO[bytes], covered: int) -> tuple[str, str]:
    fh.seek(0)
    head = fh.read(min(EDGE, covered))
    start = max(0, covered - EDGE)
    fh.seek(start)
    tail = fh.read(covered - start)
    return _digest(head), _digest(tail)


@dataclass(frozen=True)
class Mark:
    """One segment as it was: a later state of it must have the same inode and these bytes first."""

    name: str
    dev: int
    ino: int
    covered: int
    head: str
    tail: str


@dataclass(frozen=True)
class Identity:
    generation: str
    marks: tuple[Mark, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "gen": self.generation,
            "marks": [[m.name, m.dev, m.ino, m.covered, m.head, m.tail] for m in self.marks],
        }

    @classmethod
    def from_json(cls, raw: Any) -> Identity | None:
        """None for anything malformed: a derived file that cannot say what it describes is stale."""
        if not isinstance(raw, dict) or not isinstance(raw.get("gen"), str):
            return None
        try:
            marks = tuple(
                Mark(str(m[0]), int(m[1]), int(m[2]), int(m[3]), str(m[4]), str(m[5])) for m in raw["marks"]
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        return cls(raw["gen"], marks)


def mark_of(view: store.SegmentView) -> Mark:
    """One opened segment as it is now (all its bytes covered)."""
    return Mark(view.path.name, view.dev, view.ino, view.size, *_edges(view.file, view.size))


def of_snapshot(snap: store.Snapshot) -> Identity:
    """The identity of an opened snapshot (for a reader that reads that same snapshot)."""
    return Identity(snap.generation, tuple(mark_of(v) for v in snap.segments))


def current(ledger: Path, *, lock: bool = True) -> Identity:
    """The ledger's identity now (segments and generation read at one instant, under the shared lock
    unless the caller already holds the exclusive one: `lock=False`)."""
    with store.snapshot(ledger, lock=lock) as snap:
        return of_snapshot(snap)


def holds_in(identity: Identity, snap: store.Snapshot, ledger: Path) -> bool:
    """`holds`, against a snapshot the caller has open (and goes on reading)."""
    if snap.generation != identity.generation:
        return False
    views = snap.segments
    old = identity.marks
    # Only a live file that did not exist yet may have appeared (created by an append).
    extra = views[len(old) :]
    if len(views) < len(old) or (extra and (len(extra) > 1 or extra[0].path != ledger)):
        return False
    for mark, view in zip(old, views, strict=False):
        if view.path.name != mark.name or (view.dev, view.ino) != (mark.dev, mark.ino):
            return False
        if view.size < mark.covered or _edges(view.file, mark.covered) != (mark.head, mark.tail):
            return False
    return True


def holds(identity: Identity, ledger: Path) -> bool:
    """True when the ledger is the one `identity` was taken of, with at most lines appended since."""
    try:
        with store.snapshot(ledger) as snap:
            return holds_in(identity, snap, ledger)
    except (OSError, LedgerError):
        return False
