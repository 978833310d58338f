"""One pass over a byte range: records → rollup rows, side records, session hashes, time blocks.

This runs in worker processes (see `scan.run_chunks`), so it returns plain picklable data. The loop
is the cold path's hot loop: one orjson parse, a handful of dict reads and one dict update per model
used; everything else (fold, savings, formatting) happens later on far fewer rows.
"""

from __future__ import annotations

import gc
from array import array
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import orjson

from ..fold import named_target
from ..record import SCHEMA_VERSION
from . import fastrec
from .cuboids import NONE_CUBE, CubeKey, add_unit, pack_parts
from .scan import Chunk, iter_blocks
from .timeparse import DayMapper, parse_ts
from .timeparse import _hour_epoch as hour_epoch
from .units import Row, is_side, record_dims, record_parts, record_units, session_hash

BLOCK_BYTES = 1 << 20
# "MM:SS" → seconds and "mmm" → milliseconds / 1000, for our own timestamps (`…T12:34:56.789Z`).
MINUTE_SECOND = {f"{m:02d}:{sec:02d}": m * 60 + sec for m in range(60) for sec in range(60)}
MILLIS = {f"{ms:03d}": ms / 1000 for ms in range(1000)}
# A tag key with more distinct values than this is left out of the rollup rows (it would multiply
# them); queries on it scan the ledger instead, so they stay exact.
TAG_CAP = 256


@dataclass
class SideEntry:
    """A record the fold may drop: kept whole (its raw units), ordered by where it sits in the ledger."""

    seg: int
    offset: int
    id: str
    supersedes: str | None
    session: str | None
    imported: bool
    units: list[Row]

    def to_json(self) -> list[Any]:
        return [self.seg, self.offset, self.id, self.supersedes, self.session, self.imported, self.units]

    @classmethod
    def from_json(cls, raw: list[Any]) -> SideEntry:
        units = [[*u[:16], int(u[16]), *u[17:]] for u in raw[6]]
        return cls(raw[0], raw[1], raw[2], raw[3], raw[4], bool(raw[5]), units)


@dataclass
class IngestPart:
    chunk: Chunk
    cubes: dict[CubeKey, int] = field(default_factory=dict)  # cube mode: summed into cuboids
    layer: dict[str, str] = field(default_factory=dict)  # …or written as a layer: cuboid → file
    units: list[Row] = field(default_factory=list)  # raw mode: raw units of summed records
    side: list[SideEntry] = field(default_factory=list)
    sessions: array[int] = field(default_factory=lambda: array("Q"))
    # [seg, start, end, min_ts, max_ts] of summed (non-side) records: edge days re-scan only these
    blocks: list[list[Any]] = field(default_factory=list)
    lines: int = 0
    records: int = 0
    bad: int = 0
    bad_lines: list[int] = field(default_factory=list)  # line numbers within the chunk, 1-based
    future: int = 0
    undated: int = 0
    tag_values: dict[str, set[str]] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)


def _see_tag(tag_values: dict[str, set[str]], dropped: set[str], key: str, value: str) -> bool:
    """Note a tag value; True when that drops the key (more than TAG_CAP values)."""
    if key in dropped:
        return False
    seen = tag_values.get(key)
    if seen is None:
        seen = tag_values[key] = set()
    elif value in seen:
        return False
    seen.add(value)
    if len(seen) > TAG_CAP:
        dropped.add(key)
        return True
    return False


def ingest_chunk(
    chunk: Chunk,
    tz: tzinfo,
    watch: frozenset[str],
    dropped_in: frozenset[str],
    raw: bool = False,
    layer_dir: str | None = None,
    layer_prefix: str = "",
) -> IngestPart:
    """Parse one range. `raw`: keep raw units (a short tail folded in memory) instead of cuboids.
    `layer_dir`: write the cuboids there as a layer (files `<layer_prefix>-<chunk>-<n>.json`)."""
    # The loop allocates millions of objects and keeps few: the cyclic collector would rescan the
    # growing cuboid dict again and again for nothing (~10% of the time).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        part = _ingest(chunk, tz, watch, dropped_in, raw)
        if layer_dir is not None and part.cubes:
            from pathlib import Path

            from .rollup import write_layer

            try:
                name = f"{layer_prefix}-{chunk.seg}-{chunk.start}"
                part.layer = write_layer(Path(layer_dir), name, part.cubes)
                part.cubes = {}
            except OSError:
                part.layer = {}  # not writable after all: hand the cuboids back in memory
        return part
    finally:
        if was_enabled:
            gc.enable()


def _ingest(
    chunk: Chunk,
    tz: tzinfo,
    watch: frozenset[str],
    dropped_in: frozenset[str],
    raw: bool,
    fast: bool = True,
) -> IngestPart:
    """`fast`: try the typed decoder first (False: the general path for every line, as the tests'
    reference)."""
    part = IngestPart(chunk)
    cubes = part.cubes
    get = cubes.get
    few: dict[tuple[Any, ...], int] = {}
    few_get = few.get
    ptags: dict[tuple[Any, ...], int] = {}
    ptags_get = ptags.get
    units = part.units
    side = part.side
    sessions = part.sessions
    tag_values = part.tag_values
    dropped = set(dropped_in)
    frozen_dropped = frozenset(dropped)
    mapper = DayMapper(tz)
    hours: dict[str, tuple[float, int]] = {}
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    fast = fast and not raw  # raw units carry the whole record's fields: the general path only
    decode = fastrec.decoder.decode
    fast_error = fastrec.DecodeError
    tags_of = fastrec.tags_of
    packed_parts = fastrec.packed_parts
    tag_memo: dict[bytes, tuple[tuple[str, str], ...]] = {}
    block_start = chunk.start
    block_end = block_start + BLOCK_BYTES
    bmin = float("inf")
    bmax = float("-inf")
    lineno = 0
    for next_off, lines in iter_blocks(chunk.path, chunk.start, chunk.end):
        for line in lines:
            off = next_off
            next_off += len(line) + 1
            lineno += 1
            if off >= block_end:
                part.blocks.append([chunk.seg, block_start, off, bmin, bmax])
                block_start, block_end = off, off + BLOCK_BYTES
                bmin, bmax = float("inf"), float("-inf")
            if not line or line.isspace():
                continue
            # The fast path (see fastrec.py) reads the usual record; anything it does not decode, and
            # records the fold may drop, are read whole by the general path below.
            r = None
            if fast and line.isascii():  # non-ASCII: msgspec does not check UTF-8 in fields it skips
                try:
                    r = decode(line)
                except fast_error:
                    pass
                else:
                    if r.supersedes or r.mode == "imported" or r.id in watch:
                        r = None
            rec: Any = None
            if r is not None:
                part.records += 1
                if r.v > SCHEMA_VERSION:
                    part.future += 1
                started: Any = r.started_at
            else:
                try:
                    rec = loads(line)
                except decode_error:
                    rec = None
                rid = rec.get("id") if type(rec) is dict else None
                if type(rid) is not str or type(rec.get("v")) is not int:
                    part.bad += 1
                    if len(part.bad_lines) < 100:
                        part.bad_lines.append(lineno)
                    continue
                assert isinstance(rec, dict) and isinstance(rid, str)
                part.records += 1
                if rec["v"] > SCHEMA_VERSION:
                    part.future += 1
                started = rec.get("started_at")
            # Our own timestamps (…Z with milliseconds) map hour by hour: one dict hit per record.
            hour_day = hours.get(started[:13]) if type(started) is str and len(started) == 24 else None
            ts: float | None = None
            if hour_day is not None and started[-1] == "Z" and started[13] == ":" and started[19] == ".":
                # Exactly what parse_ts and DayMapper would give (same sums, same order), without their
                # calls; anything odd (not two-digit fields, past the memoised hour) takes their path.
                whole = MINUTE_SECOND.get(started[14:19])
                milli = MILLIS.get(started[20:23])
                if whole is not None and milli is not None:
                    ts = hour_day[0] + whole + milli
                    day = hour_day[1]
            if ts is None:
                ts = parse_ts(started)
                if ts is None:
                    part.undated += 1
                    continue
                day = mapper.day(ts)
                if type(started) is str and len(started) == 24 and started[-1] == "Z":
                    hour0 = hour_epoch(started[:13])
                    # Only hours that do not straddle a local midnight (half-hour zones) are memoised.
                    if hour0 is not None and mapper.day(hour0) == mapper.day(hour0 + 3599.999) == day:
                        hours[started[:13]] = (hour0, day)
            if rec is None:
                assert r is not None
                raw_tags = bytes(r.tags)
                tag_items = tag_memo.get(raw_tags)
                if tag_items is None:
                    tag_items = tags_of(raw_tags, tag_memo, frozen_dropped)
                if tag_items is None:  # tags the general rules must read
                    rec = loads(line)
                    rid = r.id
            if rec is None:
                assert r is not None
                sid: Any = r.session_id
            else:
                if rid in watch or is_side(rec):
                    sid = rec.get("session_id")
                    entry = SideEntry(
                        chunk.seg,
                        off,
                        rec["id"],
                        named_target(rec),
                        sid if type(sid) is str and sid else None,
                        rec.get("mode") == "imported",
                        record_units(rec, day, (), ts),
                    )
                    side.append(entry)
                    if not raw:
                        # Summed as if the fold counts it (most side records do): the rollup's refold
                        # then takes out the few it does not, instead of adding all of them itself,
                        # one process after the parallel scan.
                        for unit in entry.units:
                            add_unit(cubes, unit, dropped)
                    continue
                sid = rec.get("session_id")
            if ts < bmin:
                bmin = ts
            if ts > bmax:
                bmax = ts
            if type(sid) is str and sid:
                sessions.append(session_hash(sid))
            if rec is None:
                assert r is not None
                g = r.git
                c = r.ci
                project = r.project or None
                branch = (g.branch or None) if g is not None else None
                status = r.status or None
                mode = r.mode or None
                job = (c.job or None) if c is not None else None
                parts = packed_parts(r)
                assert tag_items is not None
            elif raw:
                tags = rec.get("tags")
                if tags and type(tags) is dict:
                    for tag_key, v in tags.items():
                        if tag_key not in dropped:
                            _see_tag(tag_values, dropped, tag_key, v if type(v) is str else str(v))
                units.extend(record_units(rec, day, (), ts))
                continue
            else:
                project, branch, status, mode, job, tag_items = record_dims(rec, frozen_dropped)
                parts = pack_parts(record_parts(rec))
            # add_unit, inlined: this runs once per model part of every record on a cold build. Most
            # dimensions take few values per day, so instead of one update per cuboid, one update on the
            # combination of status, mode and CI job (`few`) and one on project and tags (`ptags`) stand
            # for them all but branch; the cuboids are summed out of these at the end of the range (see
            # docs/reports.md: both tables stay a fraction of the record count).
            for m, rp, pp, packed in parts:
                fk = (day, m, rp, pp, status, mode, job)
                few[fk] = few_get(fk, 0) + packed
                pk = (day, m, rp, pp, project, tag_items)
                had = ptags_get(pk)
                if had is None:
                    ptags[pk] = packed
                    # The distinct values of each tag key (to drop keys with too many): a record
                    # can only bring a new one when its combination is new.
                    for tk, tv in tag_items:
                        if _see_tag(tag_values, dropped, tk, tv):
                            frozen_dropped = frozenset(dropped)
                            tag_memo.clear()  # its tuples still hold the dropped key
                else:
                    ptags[pk] = had + packed
                k: CubeKey = ("branch", day, m, branch, rp, pp)
                cubes[k] = get(k, 0) + packed
    for (day, m, rp, pp, status, mode, job), packed in few.items():
        for k in (
            (NONE_CUBE, day, m, None, rp, pp),
            ("status", day, m, status, rp, pp),
            ("mode", day, m, mode, rp, pp),
            ("ci-job", day, m, job, rp, pp),
        ):
            cubes[k] = get(k, 0) + packed
    for (day, m, rp, pp, project, tag_items), packed in ptags.items():
        k = ("project", day, m, project, rp, pp)
        cubes[k] = get(k, 0) + packed
        for tk, tv in tag_items:
            if tk not in dropped:  # dropped after this combination was first seen
                k = ("tag:" + tk, day, m, tv, rp, pp)
                cubes[k] = get(k, 0) + packed
    part.blocks.append([chunk.seg, block_start, chunk.end, bmin, bmax])
    part.lines = lineno
    part.dropped = dropped
    for name in dropped:
        part.tag_values.pop(name, None)
    return part
