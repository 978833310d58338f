"""The rollup: a derived, rebuildable summary of the ledger, kept beside it, never trusted blindly.

Directory `<ledger>.index/`, one rollup per time zone (days depend on it). `<tz>.current` names the
live meta file `<tz>.<token>.meta.json`, which lists the files it uses:

- layers of cuboids (see `cuboids`): one JSON file per cuboid per layer. The cold build writes one
  layer per byte range, straight from the worker that parsed it (no process ever holds them all);
  a long tail or a change of the fold adds a layer; many layers are compacted one cuboid at a time.
  A warm report reads only the cuboid it needs from each layer;
- side: records the fold may drop (imports, superseding records and their targets), kept
  whole; the cuboids include those the fold counts (`counted`), so only a change of the fold needs them;
- sessions: 64-bit hashes of tracked runs' session ids (imports of those sessions don't count);
- the meta file itself: per segment name, device, inode, bytes and lines covered, and hashes of the first and
  last 4 KiB covered; the ledger's generation (when the store provides one); byte blocks with the
  min/max start time of their summed records (to re-read only the edge days of a query whose bounds
  fall inside a day); read statistics for the warnings.

On every use the marks are checked against the files. The same files that only grew → read just the
new tail (a short tail is folded in memory; a longer one, or one that changes the fold, is merged and
saved). Anything else (rewritten, truncated, replaced, rotated, generation changed, unreadable or
corrupt rollup) → rebuild from the ledger. The ledger stays the only source of truth. Files are
never modified once written: a new meta is published by renaming the `.current` pointer, so readers
see the old or the new rollup, never a mix; files no meta names are swept a minute later.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
from array import array
from dataclasses import dataclass, field
from datetime import tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from ..errors import LedgerError
from ..fold import named_target
from ..ledger import store
from . import cuboids, scan
from .cuboids import NONE_CUBE, CubeKey
from .ingest import TAG_CAP, IngestPart, SideEntry, ingest_chunk
from .timeparse import DayMapper, day_start, parse_ts, tz_key
from .units import Row, is_side, record_units, session_hash

ROLLUP_VERSION = 3  # 3: session_hash reads only hex digits (odd ids hash differently)
EDGE = 4096
# A tail up to this size is folded in memory on each run (one process, no save); a longer one is
# merged into the rollup and saved, so warm runs stay bounded however the ledger grows.
RAW_TAIL_MAX = 4 << 20


class StaleRollup(Exception):
    """A rollup file vanished or is corrupt after the rollup was loaded: rebuild and try again."""


@dataclass
class Mark:
    name: str
    dev: int
    ino: int
    covered: int
    lines: int
    head: str
    tail: str


def _side_key(e: SideEntry) -> str:
    return f"{e.seg}:{e.offset}"


@dataclass
class State:
    tz: str
    generation: str | None = None
    marks: list[Mark] = field(default_factory=list)
    blocks: list[list[Any]] = field(default_factory=list)
    layers: list[dict[str, str]] = field(default_factory=list)  # cuboid name → file, per layer on disk
    mem_layers: list[dict[CubeKey, int]] = field(default_factory=list)  # layers not on disk (yet)
    delta: dict[CubeKey, int] = field(default_factory=dict)  # this run's fold changes
    side_file: str | None = None
    # Raw units of the side records the fold counts, one file per month: edge days read only theirs.
    counted_files: dict[str, str] = field(default_factory=dict)
    sessions_file: str | None = None
    counted: set[str] = field(default_factory=set)  # side entries (seg:offset) summed into the cuboids
    imported_hashes: set[int] = field(default_factory=set)
    hits: set[int] = field(default_factory=set)  # imported session hashes a tracked run also has
    absent: set[str] = field(default_factory=set)  # supersede targets not in the ledger (searched)
    moved: set[str] = field(default_factory=set)  # summed records later found superseded
    tag_values: dict[str, set[str]] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    records: int = 0
    bad: int = 0
    bad_lines: list[tuple[str, int]] = field(default_factory=list)
    future: int = 0
    undated: int = 0
    partial_tail: bool = False
    source: str = "rollup"  # rollup (warm), rollup+tail, rebuilt
    segment_paths: list[Path] = field(default_factory=list)
    root: Path | None = None  # the index directory (None: nothing on disk)
    _side: list[SideEntry] | None = None
    _sessions: array[int] | None = None
    tail_units: list[Row] = field(default_factory=list)  # raw units of a short unsaved tail

    def _read(self, name: str | None) -> bytes:
        if name is None or self.root is None:
            raise StaleRollup("no such rollup file")
        try:
            return (self.root / name).read_bytes()
        except OSError as exc:
            raise StaleRollup(str(exc)) from exc

    # -- lazily loaded parts ------------------------------------------------------------------
    def side(self) -> list[SideEntry]:
        if self._side is None:
            self._side = []
            if self.side_file is not None:
                try:
                    self._side = [SideEntry.from_json(e) for e in orjson.loads(self._read(self.side_file))]
                except (ValueError, TypeError, IndexError) as exc:
                    raise StaleRollup(str(exc)) from exc
        return self._side

    def sessions(self) -> array[int]:
        if self._sessions is None:
            self._sessions = array("Q")
            if self.sessions_file is not None:
                try:
                    self._sessions.frombytes(self._read(self.sessions_file))
                except ValueError as exc:
                    raise StaleRollup(str(exc)) from exc
        return self._sessions

    def cube_rows(self, name: str) -> list[list[Any]]:
        """One cuboid's rows from every layer (the layers add up)."""
        rows: list[list[Any]] = []
        for layer in self.layers:
            fname = layer.get(name)
            if fname is not None:
                try:
                    rows += orjson.loads(self._read(fname))
                except (ValueError, TypeError) as exc:
                    raise StaleRollup(str(exc)) from exc
        for mem in [*self.mem_layers, self.delta]:
            rows += [
                [k[1], k[2], k[3], k[4], k[5], *cuboids.unpack(v)] for k, v in mem.items() if k[0] == name
            ]
        return rows

    def cube_units(self, name: str, day_lo: int | None = None, day_hi: int | None = None) -> list[Row]:
        """One cuboid as unit rows, only the days in [day_lo, day_hi) when given."""
        rows = self.cube_rows(name)
        if day_lo is not None and day_hi is not None:
            rows = [r for r in rows if day_lo <= r[0] < day_hi]
        return cuboids.as_units(name, rows)

    def cube_names(self) -> set[str]:
        names = {n for layer in self.layers for n in layer}
        for mem in [*self.mem_layers, self.delta]:
            names |= {k[0] for k in mem}
        return names

    # -- the fold -----------------------------------------------------------------------------
    def counted_side(self) -> list[SideEntry]:
        """Latest of each supersede chain, minus imports of sessions a tracked run also has."""
        side = self.side()
        first: dict[str, tuple[int, int]] = {}
        for e in side:
            first.setdefault(e.id, (e.seg, e.offset))
        superseded: set[str] = set()
        for e in side:
            target = e.supersedes
            # Only a later record replaces an earlier one: a cycle keeps its last member.
            if target and target != e.id and target in first and first[target] < (e.seg, e.offset):
                superseded.add(target)
        return [
            e
            for e in side
            if e.id not in superseded
            and not (e.imported and e.session and session_hash(e.session) in self.hits)
        ]

    def excluded_ids(self) -> set[str]:
        counted = {_side_key(e) for e in self.counted_side()}
        return {e.id for e in self.side() if _side_key(e) not in counted}

    def side_ids(self) -> set[str]:
        return {e.id for e in self.side()}

    def warnings(self) -> list[str]:
        stats = store.ReadStats()
        stats.bad_lines = [(Path(name), n) for name, n in self.bad_lines]
        stats.bad_count = max(self.bad, len(self.bad_lines))
        stats.future_version = self.future
        out = stats.warnings()
        if self.undated:
            out.append(f"ignored {self.undated} record(s) without a readable started_at")
        if self.partial_tail:
            out.append("the ledger ends in an incomplete line (a write in progress, or a killed writer)")
        return out


# -- files ------------------------------------------------------------------------------------
def index_dir(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".index")


def _pointer(ledger: Path, tz: tzinfo) -> Path:
    return index_dir(ledger) / f"{tz_key(tz)}.current"


def _generation(ledger: Path) -> str | None:
    fn = getattr(store, "generation", None)
    if fn is None:
        return None
    try:
        return str(fn(ledger))
    except (OSError, LedgerError):
        return None


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _edges(path: Path, covered: int) -> tuple[str, str]:
    with open(path, "rb") as fh:
        head = fh.read(min(EDGE, covered))
        fh.seek(max(0, covered - EDGE))
        tail = fh.read(covered - max(0, covered - EDGE))
    return _digest(head), _digest(tail)


def _still_valid(mark: Mark, path: Path) -> bool:
    if path.name != mark.name:
        return False
    try:
        st = os.stat(path, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != (mark.dev, mark.ino) or st.st_size < mark.covered:
            return False
        return _edges(path, mark.covered) == (mark.head, mark.tail)
    except OSError:
        return False


def load(ledger: Path, tz: tzinfo) -> State | None:
    root = index_dir(ledger)
    try:
        token = _pointer(ledger, tz).read_text().strip()
        raw = orjson.loads((root / f"{tz_key(tz)}.{token}.meta.json").read_bytes())
        if raw.get("version") != ROLLUP_VERSION or raw.get("tz") != tz_key(tz):
            return None
        s = raw["stats"]
        return State(
            tz=raw["tz"],
            generation=raw.get("generation"),
            marks=[Mark(*m) for m in raw["marks"]],
            blocks=raw["blocks"],
            layers=raw["layers"],
            side_file=raw["side_file"],
            counted_files=raw["counted_files"],
            sessions_file=raw["sessions_file"],
            counted=set(raw["counted"]),
            imported_hashes=set(raw["imported_hashes"]),
            hits=set(raw["hits"]),
            absent=set(raw["absent"]),
            moved=set(raw["moved"]),
            tag_values={k: set(v) for k, v in raw["tag_values"].items()},
            dropped=set(raw["dropped"]),
            records=s["records"],
            bad=s["bad"],
            bad_lines=[(a, b) for a, b in s["bad_lines"]],
            future=s["future"],
            undated=s["undated"],
            root=root,
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        # Missing, unreadable or corrupt: the rollup is only a cache, so rebuild it.
        return None


def writable_root(ledger: Path) -> Path | None:
    """The index directory, created 0700 beside the ledger; None when it cannot be used."""
    root = index_dir(ledger)
    try:
        if root.is_symlink() or not ledger.parent.is_dir():
            return None
        root.mkdir(mode=store.DIR_MODE, exist_ok=True)
        return root if os.access(root, os.W_OK) else None
    except OSError:
        return None


def write_file(root: Path, name: str, data: bytes) -> None:
    fd = os.open(
        root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), store.FILE_MODE
    )
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_layer(root: Path, prefix: str, cubes: dict[CubeKey, int]) -> dict[str, str]:
    """Write cuboids as one layer (a file per cuboid); returns cuboid name → file name."""
    files: dict[str, str] = {}
    for i, (name, rows) in enumerate(sorted(cuboids.to_rows(cubes).items())):
        files[name] = f"{prefix}-{i}.json"
        write_file(root, files[name], orjson.dumps(rows))
    return files


MAX_LAYERS = 32


def save(ledger: Path, tz: tzinfo, state: State) -> None:
    """Write what is new (layers, side, sessions, meta), then publish it by renaming the pointer."""
    root = writable_root(ledger)
    if root is None:
        return  # a read-only ledger directory still gets correct reports, just not faster ones
    key = tz_key(tz)
    token = secrets.token_hex(6)
    state.root = root
    try:
        for i, mem in enumerate([*state.mem_layers, state.delta]):
            if mem:
                state.layers.append(write_layer(root, f"{key}.layer-{token}-m{i}", mem))
        state.mem_layers, state.delta = [], {}
        if len(state.layers) > MAX_LAYERS:
            state.layers = [_compact(root, f"{key}.layer-{token}-c", state)]
        side = state.side()
        state.side_file = f"{key}.{token}.side.json"
        # Costs as text: fixed-point integers are wider than JSON parsers accept.
        write_file(
            root,
            state.side_file,
            orjson.dumps(
                [[*e.to_json()[:6], [[*u[:16], str(u[16]), *u[17:]] for u in e.units]] for e in side]
            ),
        )
        by_month: dict[str, list[list[Any]]] = {}
        for e in state.counted_side():
            for u in e.units:
                by_month.setdefault(_month(u[0]), []).append([*u[:16], str(u[16]), *u[17:]])
        state.counted_files = {}
        for month, units in by_month.items():
            state.counted_files[month] = f"{key}.{token}.counted-{month}.json"
            write_file(root, state.counted_files[month], orjson.dumps(units))
        sessions = state.sessions().tobytes()
        state.sessions_file = f"{key}.{token}.sessions.bin"
        write_file(root, state.sessions_file, sessions)
        meta = {
            "version": ROLLUP_VERSION,
            "tz": state.tz,
            "generation": state.generation,
            "marks": [[m.name, m.dev, m.ino, m.covered, m.lines, m.head, m.tail] for m in state.marks],
            "blocks": state.blocks,
            "layers": state.layers,
            "side_file": state.side_file,
            "counted_files": state.counted_files,
            "sessions_file": state.sessions_file,
            "counted": sorted(state.counted),
            "imported_hashes": sorted(state.imported_hashes),
            "hits": sorted(state.hits),
            "absent": sorted(state.absent),
            "moved": sorted(state.moved),
            "tag_values": {k: sorted(v) for k, v in state.tag_values.items()},
            "dropped": sorted(state.dropped),
            "stats": {
                "records": state.records,
                "bad": state.bad,
                "future": state.future,
                "undated": state.undated,
                "bad_lines": state.bad_lines,
            },
        }
        write_file(root, f"{key}.{token}.meta.json", orjson.dumps(meta))
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".pointer-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
        os.replace(tmp, _pointer(ledger, tz))
        state.root = root
        keep = {f for layer in state.layers for f in layer.values()}
        keep |= {state.side_file, state.sessions_file, f"{key}.{token}.meta.json", f"{key}.current"}
        keep |= set(state.counted_files.values())
        _sweep(root, key, keep)
    except OSError:
        return


def _compact(root: Path, prefix: str, state: State) -> dict[str, str]:
    """All layers into one, a cuboid at a time (memory: the largest cuboid, not the rollup)."""
    files: dict[str, str] = {}
    for i, name in enumerate(sorted(state.cube_names())):
        merged: dict[CubeKey, int] = {}
        cuboids.from_rows(name, state.cube_rows(name), merged, add=True)
        rows = cuboids.to_rows(merged).get(name, [])
        files[name] = f"{prefix}-{i}.json"
        write_file(root, files[name], orjson.dumps(rows))
    return files


def _sweep(root: Path, key: str, keep: set[str]) -> None:
    """Remove this zone's files that the published meta does not name, once an hour old (a reader
    of the previous meta, or a concurrent build, may still be using them)."""
    import time

    now = time.time()
    for entry in root.iterdir():
        name = entry.name
        if name.startswith(key + ".") and name not in keep:
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > 3600:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()


# -- bringing the rollup up to date ---------------------------------------------------------------
def ensure(ledger: Path, tz: tzinfo, *, save_rollup: bool = True, force: bool = False) -> State:
    """The rollup brought up to date with the ledger: loaded (plus the new tail), or rebuilt
    (always, with `force`)."""
    if force or not save_rollup:
        return _ensure(ledger, tz, save_rollup=save_rollup, force=True)
    try:
        return _ensure(ledger, tz, save_rollup=save_rollup, force=False)
    except StaleRollup:
        return _ensure(ledger, tz, save_rollup=save_rollup, force=True)


def _ensure(ledger: Path, tz: tzinfo, *, save_rollup: bool, force: bool) -> State:
    segs = store.segments(ledger)
    for seg in segs:
        if seg.is_symlink():
            raise LedgerError(f"refusing to read ledger segment {seg}: it is a symbolic link")
    gen = _generation(ledger)
    state = None if force else load(ledger, tz)
    if state is not None:
        ok = state.generation == gen and len(state.marks) <= len(segs)
        ok = ok and all(_still_valid(m, p) for m, p in zip(state.marks, segs, strict=False))
        if not ok:
            state = None
    cold = state is None
    if state is None:
        state = State(tz=tz_key(tz), generation=gen, source="rebuilt")
    state.segment_paths = segs
    chunks: list[scan.Chunk] = []
    new_marks: list[Mark] = []
    line_base: dict[int, int] = {}
    for i, seg in enumerate(segs):
        try:
            st = os.stat(seg, follow_symlinks=False)
        except FileNotFoundError:
            new_marks.append(Mark(seg.name, 0, 0, 0, 0, _digest(b""), _digest(b"")))
            continue
        except OSError as exc:
            raise LedgerError(f"cannot read ledger {seg}: {exc.strerror or exc}") from exc
        old = state.marks[i] if i < len(state.marks) else None
        covered = old.covered if old else 0
        end = scan.last_newline_end(seg, st.st_size)
        state.partial_tail = state.partial_tail or end < st.st_size
        chunks += scan.split(i, seg, covered, end, scan.cpu_count(), scan.CHUNK_BYTES)
        line_base[i] = old.lines if old else 0
        new_marks.append(Mark(seg.name, st.st_dev, st.st_ino, end, 0, *_edges(seg, end)))
    if not chunks:
        state.marks = new_marks if cold else state.marks
        if cold and save_rollup:
            for i, m in enumerate(new_marks):
                m.lines = line_base.get(i, 0)
            state.marks = new_marks
            save(ledger, tz, state)
        return state
    tail_bytes = sum(c.end - c.start for c in chunks)
    if not cold and tail_bytes <= RAW_TAIL_MAX:
        parts = [ingest_chunk(c, tz, frozenset(state.absent), frozenset(state.dropped), True) for c in chunks]
        fresh = {h for p in parts for h in p.sessions}
        simple = not any(p.side or p.dropped - state.dropped for p in parts)
        simple = simple and not (fresh & state.imported_hashes)
        simple = simple and all(
            len(state.tag_values.get(k, set()) | v) <= TAG_CAP for p in parts for k, v in p.tag_values.items()
        )
        if simple:
            # Folded in memory only: the rollup on disk stays valid for the part it covers.
            for p in parts:
                state.tail_units.extend(p.units)
                _count(state, p, segs, line_base)
            state.source = "rollup+tail"
            return state
    state.side()
    state.sessions()
    root = writable_root(ledger) if save_rollup else None
    # Workers write their cuboids as layer files themselves: no process ever holds them all.
    prefix = f"{tz_key(tz)}.layer-{secrets.token_hex(6)}"
    parts = scan.run_chunks(
        ingest_chunk, chunks, tz, frozenset(state.absent), frozenset(state.dropped), False,
        str(root) if root else None, prefix,
    )  # fmt: skip
    for p in parts:
        _count(state, p, segs, line_base)
    for i, m in enumerate(new_marks):
        m.lines = line_base.get(i, 0)
    _absorb(state, parts)
    _refold(state, tz)
    state.marks = new_marks
    if not cold:
        state.source = "rollup+tail"
    if save_rollup:
        save(ledger, tz, state)
    return state


def _count(state: State, p: IngestPart, segs: list[Path], line_base: dict[int, int]) -> None:
    seg_i = p.chunk.seg
    for n in p.bad_lines:
        if len(state.bad_lines) < 100:
            state.bad_lines.append((str(segs[seg_i]), line_base[seg_i] + n))
    line_base[seg_i] += p.lines
    state.records += p.records
    state.bad += p.bad
    state.future += p.future
    state.undated += p.undated


def _absorb(state: State, parts: list[IngestPart]) -> None:
    dropped = set(state.dropped)
    for p in parts:
        dropped |= p.dropped
        for k, vals in p.tag_values.items():
            if k not in dropped:
                state.tag_values.setdefault(k, set()).update(vals)
    # Cuboids of dropped tag keys stay in old layers but are never read (queries on them scan).
    dropped |= {k for k, v in state.tag_values.items() if len(v) > TAG_CAP}
    for k in dropped - state.dropped:
        state.tag_values.pop(k, None)
    state.dropped = dropped
    for p in parts:
        state.blocks.extend(p.blocks)
        if p.layer:
            state.layers.append(p.layer)
        elif p.cubes:
            state.mem_layers.append(p.cubes)
    new_side = [e for p in parts for e in p.side]
    side = state.side()
    side.extend(new_side)
    # The workers summed their side records into the cuboids (see ingest): `_refold` takes out those
    # the fold does not count.
    state.counted |= {_side_key(e) for e in new_side}
    # A plain record kept on the side (it arrived after the record superseding it): the block
    # re-reads for edge days must skip it, like the summed records moved to the side.
    state.moved |= {e.id for e in new_side if not e.imported and not e.supersedes}
    # Imports of sessions a tracked run already recorded are not counted (see docs/reports.md).
    state.imported_hashes |= {session_hash(e.session) for e in new_side if e.imported and e.session}
    fresh = array("Q")
    for p in parts:
        fresh.extend(p.sessions)
    fresh.extend(session_hash(e.session) for e in new_side if not e.imported and e.session)
    imported = state.imported_hashes
    if imported:
        state.hits |= {h for h in fresh if h in imported}
        new_imported = {session_hash(e.session) for e in new_side if e.imported and e.session}
        if new_imported:
            state.hits |= {h for h in state.sessions() if h in new_imported}
    state.sessions().extend(fresh)


def _refold(state: State, tz: tzinfo) -> None:
    """Find summed records that a side record supersedes (move them to the side), then bring the
    cuboids in line with the fold (through the delta layer): add side records it now counts,
    remove those it no longer does."""
    side = state.side()
    targets = {e.supersedes for e in side if e.supersedes} - {e.id for e in side} - state.absent
    if targets:
        found = _search_ids(state.segment_paths, targets)
        mapper = DayMapper(tz)
        for target, (seg_i, off, rec) in found.items():
            ts = parse_ts(rec.get("started_at"))
            if ts is None:
                continue
            day = mapper.day(ts)
            sid = rec.get("session_id")
            entry = SideEntry(
                seg_i, off, target, named_target(rec),
                sid if isinstance(sid, str) and sid else None,
                rec.get("mode") == "imported", record_units(rec, day, (), ts),
            )  # fmt: skip
            side.append(entry)
            # Its units are in the cuboids: marked counted, the loop below takes them out.
            state.counted.add(_side_key(entry))
            state.moved.add(target)
        state.absent |= targets - set(found)
    now = {_side_key(e) for e in state.counted_side()}
    for e in side:
        key = _side_key(e)
        was = key in state.counted
        if was != (key in now):
            for unit in e.units:
                cuboids.add_unit(state.delta, unit, state.dropped, 1 if not was else -1)
    state.counted = now


def _search_ids(segs: list[Path], ids: set[str]) -> dict[str, tuple[int, int, dict[str, Any]]]:
    """Find the lines holding records with these ids (a byte search, then a parse to confirm)."""
    found: dict[str, tuple[int, int, dict[str, Any]]] = {}
    needles = {i: (f'"id":"{i}"'.encode(), f'"id": "{i}"'.encode()) for i in ids}
    for seg_i, seg in enumerate(segs):
        for off, line in scan.iter_range(str(seg), 0, 1 << 62):
            hit = next((i for i, ns in needles.items() if ns[0] in line or ns[1] in line), None)
            if hit is None or hit in found:
                continue
            rec = store.parse_line(line)
            if rec is not None and rec.get("id") == hit:
                found[hit] = (seg_i, off, dict(rec))
    return found


def edge_units(state: State, days: set[int], tz: tzinfo) -> list[Row]:
    """Raw units of the records the cuboids hold for these local days: summed records re-read from
    the blocks that hold them, and the side records the fold counts."""
    if not days:
        return []
    spans = [(day_start(d, tz), day_start(d + 1, tz)) for d in days]
    skip = state.moved
    out: list[Row] = []
    mapper = DayMapper(tz)
    for seg_i, start, end, lo, hi in state.blocks:
        if lo is None or hi is None:  # a block of side records only (its ±inf bounds saved as null)
            continue
        if seg_i >= len(state.segment_paths) or not any(lo < b and hi >= a for a, b in spans):
            continue
        for _off, line in scan.iter_range(str(state.segment_paths[seg_i]), start, end):
            rec = store.parse_line(line)
            if rec is None or rec.get("id") in skip:
                continue
            ts = parse_ts(rec.get("started_at"))
            if ts is None:
                continue
            day = mapper.day(ts)
            if day in days and not is_side(rec):
                out.extend(record_units(dict(rec), day, (), ts))
    if state.root is None or state._side is not None:  # in memory: the side list is at hand
        for e in state.counted_side():
            out.extend(u for u in e.units if u[0] in days)
        return out
    for month in sorted({_month(d) for d in days}):
        fname = state.counted_files.get(month)
        if fname is None:
            continue
        try:
            units = orjson.loads(state._read(fname))
        except ValueError as exc:
            raise StaleRollup(str(exc)) from exc
        out.extend([*u[:16], int(u[16]), *u[17:]] for u in units if u[0] in days)
    return out


@lru_cache(maxsize=4096)
def _month(day: int) -> str:
    """Called once per counted side unit on save: memoised (a year is 365 days)."""
    from datetime import date

    return date.fromordinal(day).strftime("%Y%m")


__all__ = ["NONE_CUBE", "StaleRollup", "State", "edge_units", "ensure", "index_dir"]
