"""Reading byte ranges of ledger segments, in parallel when it pays.

The ledger is split at line boundaries into one range per core and each range is parsed in its own
process (orjson releases no GIL, so threads would not help). Ranges end at the last newline: a line
still being written is never folded into a rollup.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import LedgerError

READ_BLOCK = 8 << 20
# Below this many bytes a second process costs more (fork, pickling results) than it saves.
PARALLEL_MIN_BYTES = 24 << 20
# Ranges of a cold build are at most this long, so each worker's cuboids stay small in memory.
CHUNK_BYTES = 128 << 20

T = TypeVar("T")


@dataclass(frozen=True)
class Chunk:
    seg: int  # index of the segment in the ledger's segment list
    path: str
    start: int
    end: int


def last_newline_end(path: Path, size: int) -> int:
    """Offset just past the last newline at or before `size` (0 if none): complete lines end there."""
    if size <= 0:
        return 0
    try:
        with open(path, "rb") as fh:
            pos = size
            step = 64 << 10
            while pos > 0:
                start = max(0, pos - step)
                fh.seek(start)
                data = fh.read(pos - start)
                idx = data.rfind(b"\n")
                if idx >= 0:
                    return start + idx + 1
                pos = start
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror or exc}") from exc
    return 0


def split(seg: int, path: Path, start: int, end: int, pieces: int, max_bytes: int = 0) -> list[Chunk]:
    """At least `pieces` ranges (more if needed to keep each under `max_bytes`) of about equal size,
    each starting at a line start."""
    if end <= start:
        return []
    if max_bytes:
        pieces = max(pieces, -(-(end - start) // max_bytes))
    if pieces <= 1 or end - start < PARALLEL_MIN_BYTES:
        return [Chunk(seg, str(path), start, end)]
    cuts = [start]
    with open(path, "rb") as fh:
        for i in range(1, pieces):
            target = start + (end - start) * i // pieces
            if target <= cuts[-1]:
                continue
            fh.seek(target)
            fh.readline()
            pos = fh.tell()
            if cuts[-1] < pos < end:
                cuts.append(pos)
    cuts.append(end)
    return [Chunk(seg, str(path), a, b) for a, b in itertools.pairwise(cuts) if b > a]


def iter_blocks(path: str, start: int, end: int) -> Iterator[tuple[int, list[bytes]]]:
    """(offset of the first line, lines without newlines) for every block of lines in [start, end),
    read in large blocks: a hot loop walks the lists itself, with no generator step per line."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in finally; generator
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror or exc}") from exc
    try:
        fh.seek(start)
        pos = start
        carry = b""
        while pos < end:
            data = fh.read(min(READ_BLOCK, end - pos))
            if not data:
                break
            pos += len(data)
            if carry:
                data = carry + data
            lines = data.split(b"\n")
            carry = lines.pop()
            if lines:
                yield pos - len(data), lines
        if carry:
            yield pos - len(carry), [carry]
    finally:
        fh.close()


def iter_range(path: str, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line without newline) for every line in [start, end), read in large blocks."""
    for offset, lines in iter_blocks(path, start, end):
        for line in lines:
            yield offset, line
            offset += len(line) + 1


def cpu_count() -> int:
    env = os.environ.get("CLAUDE_RUN_REPORT_WORKERS")
    if env and env.isdigit():
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


def run_chunks(fn: Callable[..., T], chunks: Sequence[Chunk], *args: Any) -> list[T]:
    """`fn(chunk, *args)` for every chunk, in worker processes when there is enough to do."""
    total = sum(c.end - c.start for c in chunks)
    workers = min(cpu_count(), len(chunks))
    if workers <= 1 or total < PARALLEL_MIN_BYTES:
        return [fn(c, *args) for c in chunks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork shares the already-imported modules: a spawned worker would re-import for ~0.2 s.
    method = "fork" if sys.platform.startswith("linux") else None
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(fn, c, *args) for c in chunks]
        return [f.result() for f in futures]
