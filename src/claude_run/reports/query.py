"""The aggregation API (stable; the CLI and the dashboard use it).

    from claude_run.reports.query import Filters, aggregate, latest, find, iter_selected

    report = aggregate(ledger, ("day", "model"), Filters(projects=("api",)), tz)
    for row in report.rows:  # ReportRow(key=("2025-03-01", "claude-sonnet-4-5"), priced=..., unpriced=...)
        ...
    report.total, report.unpriced_total

Rules (docs/reports.md has the long form):
- A record counts once, as a whole, in every grouping but `model`; `--by model` (and `--model`) split a
  multi-model record by its `models` map. In a by-model report a run that used two models counts in
  both rows, and once in the totals row.
- Priced and unpriced usage are kept apart: a unit is unpriced when its cost is unknown (cost_usd null
  or cost_source `unpriced`). `priced` totals never include it; `unpriced` totals carry its runs and
  tokens, never a $0 cost.
- The fold: a record named by a later record's `supersedes` is not counted (only the latest of a chain
  is); an `imported` record whose session_id is also a tracked run's session_id is not counted.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from ..errors import ClaudeRunError, LedgerError, UsageError
from ..fold import named_target
from ..ledger import store
from ..record import Record
from . import rollup, scan
from .filters import Filters, build_filters, record_matches
from .grouping import key_function
from .timeparse import day_of, resolve_tz, tz_key
from .totals import ZERO, SavingsRates, Totals
from .units import RAW_LEN, Row, is_side, record_units, to_usd

# Exact decimal sums: costs have ≤17 significant digits; 60 leaves room for any realistic total.
_EXACT = decimal.Context(prec=60)


def model_matcher(model: str | None) -> Callable[[object], bool] | None:
    """`--model` as a case-insensitive substring test, memoised per model name (rows repeat them)."""
    if model is None:
        return None
    seen: dict[object, bool] = {}

    def matches(name: object) -> bool:
        ok = seen.get(name)
        if ok is None:
            ok = seen[name] = model in str(name).lower()
        return ok

    return matches


class RecordNotFound(ClaudeRunError):
    exit_code = 1


@dataclass
class ReportRow:
    key: tuple[str, ...]
    priced: Totals
    unpriced: Totals


@dataclass
class Report:
    group_by: tuple[str, ...]
    rows: list[ReportRow]
    total: Totals
    unpriced_total: Totals
    tz: str
    warnings: list[str] = field(default_factory=list)
    source: str = "rollup"  # how it was answered: rollup, rollup+tail, rebuilt, scan

    @property
    def priced_rows(self) -> list[ReportRow]:
        return [r for r in self.rows if r.priced.runs or r.priced.total_tokens or r.priced.cost]

    @property
    def unpriced_rows(self) -> list[ReportRow]:
        return [r for r in self.rows if r.unpriced.runs or r.unpriced.total_tokens]


@dataclass(frozen=True)
class Spec:
    """A query in the numeric form the accumulator tests rows against (picklable, for workers)."""

    group_by: tuple[str, ...]
    filters: Filters
    day_lo: int
    day_hi: int
    ts_lo: float | None
    ts_hi: float | None
    edge_days: frozenset[int]
    model_view: bool


def make_spec(group_by: tuple[str, ...], f: Filters, tz: tzinfo) -> Spec:
    day_lo, day_hi = -(1 << 40), 1 << 40
    edges: set[int] = set()
    ts_lo = f.since.ts(tz) if f.since else None
    ts_hi = f.until.ts(tz) if f.until else None
    if f.since:
        if f.since.day is not None:
            day_lo = f.since.day
        else:
            day_lo = day_of(f.since.instant or 0.0, tz)
            edges.add(day_lo)
    if f.until:
        if f.until.day is not None:
            day_hi = f.until.day
        else:
            last = day_of(f.until.instant or 0.0, tz)
            day_hi = last + 1
            edges.add(last)
    return Spec(
        group_by, f, day_lo, day_hi, ts_lo, ts_hi, frozenset(edges), "model" in group_by or bool(f.model)
    )


def _cube_model(row: list[Any]) -> str:
    return str(row[1])


def _cube_untagged(row: list[Any]) -> str:
    return "(none)"


def _cube_value(row: list[Any]) -> str:
    return "(none)" if row[2] is None else str(row[2])


class Acc:
    """Sums unit rows into groups: [unpriced values, priced values] per group key, plus cache reads
    per (group, model) for the savings. Rollup rows (17 fields) are tested by day; raw units (19
    fields) by their exact start time."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.groups: dict[tuple[str, ...], list[list[Any]]] = {}
        self.cache_reads: dict[tuple[tuple[str, ...], str], int] = {}

    def add_rows(self, rows: list[Row]) -> None:
        spec = self.spec
        f = spec.filters
        keyfns = [key_function(d) for d in spec.group_by]
        projects = set(f.projects)
        statuses = set(f.statuses)
        tag_map = f.tag_map()
        model = f.model
        day_lo, day_hi, edges = spec.day_lo, spec.day_hi, spec.edge_days
        ts_lo, ts_hi = spec.ts_lo, spec.ts_hi
        flag = 9 if spec.model_view else 8
        groups = self.groups
        cache_reads = self.cache_reads
        matches = model_matcher(model)
        with decimal.localcontext(_EXACT):
            for row in rows:
                d = row[0]
                if len(row) >= RAW_LEN:
                    ts = row[17]
                    if (ts_lo is not None and ts < ts_lo) or (ts_hi is not None and ts >= ts_hi):
                        continue
                elif d < day_lo or d >= day_hi or d in edges:
                    continue
                if projects and row[2] not in projects:
                    continue
                if statuses and row[4] not in statuses:
                    continue
                if matches is not None and not matches(row[1]):
                    continue
                if tag_map:
                    td = dict(row[7])
                    if any(td.get(k) not in vals for k, vals in tag_map.items()):
                        continue
                gkey = tuple(fn(row) for fn in keyfns)
                slot = groups.get(gkey)
                if slot is None:
                    slot = groups[gkey] = [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]
                priced = row[flag]
                acc = slot[priced]
                acc[0] += row[10]
                acc[1] += row[11]
                acc[2] += row[12]
                acc[3] += row[13]
                acc[4] += row[14]
                acc[5] += row[15]
                acc[6] += row[16]
                if priced and row[14]:
                    ck = (gkey, row[1])
                    cache_reads[ck] = cache_reads.get(ck, 0) + row[14]

    def add_cube_rows(self, dim: str, rows: list[list[Any]], sign: int = 1, untagged: bool = False) -> None:
        """Rows of the cuboid of `dim` ([day, model, value, rec priced, part priced, runs, parts,
        input, output, cache_read, cache_creation, cost text]) straight, without building units: the
        query touches no dimension but time, model and `dim`. `untagged`: count them as `(none)`."""
        spec = self.spec
        f = spec.filters
        if dim == "project":
            allowed: frozenset[str] | None = frozenset(f.projects) if f.projects else None
        elif dim == "status":
            allowed = frozenset(f.statuses) if f.statuses else None
        elif dim.startswith("tag:"):
            allowed = f.tag_map().get(dim[4:])
        else:
            allowed = None
        time_fns: list[Callable[[list[Any]], str]] = []
        for g in spec.group_by:
            if g in ("day", "week", "month"):
                time_fns.append(key_function(g))  # reads row[0], the day, in both layouts
            elif g == "model":
                time_fns.append(_cube_model)
            elif untagged:
                time_fns.append(_cube_untagged)
            else:
                time_fns.append(_cube_value)
        model = f.model
        day_lo, day_hi, edges = spec.day_lo, spec.day_hi, spec.edge_days
        flag = 4 if spec.model_view else 3
        groups = self.groups
        cache_reads = self.cache_reads
        matches = model_matcher(model)
        for row in rows:
            d = row[0]
            if d < day_lo or d >= day_hi or d in edges:
                continue
            if allowed is not None and (row[2] if not untagged else None) not in allowed:
                continue
            if matches is not None and not matches(row[1]):
                continue
            gkey = tuple(fn(row) for fn in time_fns)
            slot = groups.get(gkey)
            if slot is None:
                slot = groups[gkey] = [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]
            priced = row[flag]
            acc = slot[priced]
            acc[0] += sign * row[5]
            acc[1] += sign * row[6]
            acc[2] += sign * row[7]
            acc[3] += sign * row[8]
            acc[4] += sign * row[9]
            acc[5] += sign * row[10]
            acc[6] += sign * int(row[11])
            if priced and row[9]:
                ck = (gkey, row[1])
                cache_reads[ck] = cache_reads.get(ck, 0) + sign * row[9]

    def merge(self, other: Acc) -> None:
        with decimal.localcontext(_EXACT):
            for gkey, (u, p) in other.groups.items():
                slot = self.groups.get(gkey)
                if slot is None:
                    self.groups[gkey] = [u, p]
                    continue
                for mine, theirs in zip(slot, (u, p), strict=False):
                    for i in range(7):
                        mine[i] += theirs[i]
        for k, v in other.cache_reads.items():
            self.cache_reads[k] = self.cache_reads.get(k, 0) + v

    def report(self, tz: str, rates: SavingsRates, warnings: list[str], source: str) -> Report:
        spec = self.spec
        runs_i = 1 if spec.model_view else 0
        total_runs_i = 1 if spec.filters.model else 0
        savings: dict[tuple[str, ...], list[Any]] = {}
        with decimal.localcontext(_EXACT):
            for (gkey, model), tokens in self.cache_reads.items():
                s = savings.setdefault(gkey, [None, 0])
                delta = rates.get(model)
                if delta is None:
                    s[1] += tokens
                else:
                    s[0] = (s[0] or ZERO) + delta * tokens
        rates.save()

        def totals(v: list[Any], runs_index: int) -> Totals:
            return Totals(v[runs_index], v[2], v[3], v[4], v[5], to_usd(v[6]))

        rows: list[ReportRow] = []
        grand = [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]
        grand_sav: list[Any] = [None, 0]
        with decimal.localcontext(_EXACT):
            for gkey in sorted(self.groups):
                u, p = self.groups[gkey]
                priced = totals(p, runs_i)
                sav = savings.get(gkey)
                if sav is not None:
                    priced.savings, priced.savings_unpriced_tokens = sav[0], sav[1]
                    if sav[0] is not None:
                        grand_sav[0] = (grand_sav[0] or ZERO) + sav[0]
                    grand_sav[1] += sav[1]
                elif priced.cache_read == 0:
                    priced.savings = ZERO
                rows.append(ReportRow(gkey, priced, totals(u, runs_i)))
                for g, v in zip(grand, (u, p), strict=False):
                    for i in range(7):
                        g[i] += v[i]
        total = totals(grand[1], total_runs_i)
        total.savings = grand_sav[0] if grand_sav[0] is not None or total.cache_read else ZERO
        total.savings_unpriced_tokens = grand_sav[1]
        return Report(spec.group_by, rows, total, totals(grand[0], total_runs_i), tz, warnings, source)


def _scan_chunk(chunk: scan.Chunk, spec: Spec, tz: tzinfo, skip: frozenset[str]) -> Acc:
    """Worker: raw units of every summed record in the chunk (for queries the rollup cannot answer)."""
    from .timeparse import DayMapper, parse_ts

    acc = Acc(spec)
    mapper = DayMapper(tz)
    batch: list[Row] = []
    for _off, line in scan.iter_range(chunk.path, chunk.start, chunk.end):
        rec = store.parse_line(line)
        if rec is None or rec["id"] in skip or is_side(dict(rec)):
            continue
        ts = parse_ts(rec.get("started_at"))
        if ts is None:
            continue
        batch.extend(record_units(dict(rec), mapper.day(ts), (), ts))
        if len(batch) >= 4096:
            acc.add_rows(batch)
            batch = []
    acc.add_rows(batch)
    return acc


def needed_dims(group_by: tuple[str, ...], f: Filters) -> list[str]:
    """Non-time, non-model dimensions a query touches (grouping or filtering)."""
    dims = [g for g in group_by if g not in ("day", "week", "month", "model")]
    if f.projects:
        dims.append("project")
    if f.statuses:
        dims.append("status")
    dims += ["tag:" + k for k in sorted(f.tag_keys())]
    return list(dict.fromkeys(dims))


def aggregate(
    ledger: Path,
    group_by: tuple[str, ...] = ("day",),
    filters: Filters | None = None,
    tz: tzinfo | None = None,
    *,
    save_rollup: bool = True,
) -> Report:
    """Totals per group (see the module docstring).

    Answered from one rollup cuboid (plus the ledger's new tail) when the query touches at most one
    dimension besides time and model; otherwise (two dimensions, `session`, very varied tag keys) by
    scanning the ledger, which is exact but slower. `save_rollup=False` never reads or writes the
    rollup (everything from the ledger, in memory)."""
    filters = filters or Filters()
    tz = tz or resolve_tz(None)
    try:
        return _aggregate(
            rollup.ensure(ledger, tz, save_rollup=save_rollup), ledger, group_by, filters, tz, save_rollup
        )
    except rollup.StaleRollup:  # a rollup file went missing under us (a concurrent rebuild): once more
        return _aggregate(
            rollup.ensure(ledger, tz, save_rollup=save_rollup, force=True),
            ledger,
            group_by,
            filters,
            tz,
            save_rollup,
        )


def _aggregate(
    state: rollup.State,
    ledger: Path,
    group_by: tuple[str, ...],
    filters: Filters,
    tz: tzinfo,
    save_rollup: bool,
) -> Report:
    spec = make_spec(group_by, filters, tz)
    acc = Acc(spec)
    dims = needed_dims(group_by, filters)
    source = state.source
    if (
        len(dims) > 1
        or "session" in dims
        or any(d[4:] in state.dropped for d in dims if d.startswith("tag:"))
    ):
        chunks: list[scan.Chunk] = []
        for i, (seg, mark) in enumerate(zip(state.segment_paths, state.marks, strict=False)):
            chunks += scan.split(i, seg, 0, mark.covered, scan.cpu_count())
        skip = frozenset(state.side_ids())
        for part in scan.run_chunks(_scan_chunk, chunks, spec, tz, skip):
            acc.merge(part)
        for entry in state.counted_side():
            acc.add_rows(entry.units)
        source = "scan"
    else:
        cube = dims[0] if dims else rollup.NONE_CUBE
        rows = state.cube_rows(cube)
        acc.add_cube_rows(cube, rows)
        if cube.startswith("tag:") and cube in group_by:
            # Runs without the tag: everything (the plain cuboid) minus the runs with it.
            acc.add_cube_rows(cube, state.cube_rows(rollup.NONE_CUBE), untagged=True)
            acc.add_cube_rows(cube, rows, sign=-1, untagged=True)
        acc.add_rows(rollup.edge_units(state, set(spec.edge_days), tz))
    acc.add_rows(state.tail_units)
    rates = SavingsRates(rollup.index_dir(ledger) if save_rollup else None)
    return acc.report(tz_key(tz), rates, state.warnings(), source)


def iter_selected(
    ledger: Path, filters: Filters | None = None, tz: tzinfo | None = None, *, fold: bool = True
) -> Iterator[Record]:
    """Records matching the filters, in ledger order; with `fold`, minus those the fold drops."""
    filters = filters or Filters()
    tz = tz or resolve_tz(None)
    excluded: set[str] = set()
    if fold:
        try:
            excluded = rollup.ensure(ledger, tz).excluded_ids()
        except rollup.StaleRollup:
            excluded = rollup.ensure(ledger, tz, force=True).excluded_ids()
    for rec in store.iter_records(ledger):
        if rec.get("id") in excluded:
            continue
        if record_matches(dict(rec), filters, tz):
            yield rec


def _reverse_lines(path: Path, block: int = 1 << 20) -> Iterator[bytes]:
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with fh:
        pos = fh.seek(0, 2)
        carry = b""
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            data = fh.read(pos - start) + carry
            pos = start
            lines = data.split(b"\n")
            carry = lines[0] if pos > 0 else b""
            for line in reversed(lines if pos == 0 else lines[1:]):
                if line.strip():
                    yield line
        if carry.strip():
            yield carry


def latest(
    ledger: Path, n: int = 20, filters: Filters | None = None, tz: tzinfo | None = None
) -> list[Record]:
    """The last `n` records (in ledger order, newest last) matching the filters, reading from the end.

    Records replaced by a later record's `supersedes` are left out; the rest of the fold (imports of
    tracked sessions) needs the whole ledger and is not applied here.
    """
    if n <= 0:
        return []
    filters = filters or Filters()
    tz = tz or resolve_tz(None)
    out: list[Record] = []
    replaced: set[str] = set()
    for seg in reversed(store.segments(ledger)):
        if seg.is_symlink():
            raise LedgerError(f"refusing to read ledger segment {seg}: it is a symbolic link")
        for line in _reverse_lines(seg):
            rec = store.parse_line(line)
            if rec is None:
                continue
            if rec["id"] in replaced:
                continue
            target = named_target(rec)
            if target is not None:
                replaced.add(target)
            if record_matches(dict(rec), filters, tz):
                out.append(rec)
                if len(out) >= n:
                    return out[::-1]
    return out[::-1]


def find(ledger: Path, prefix: str) -> Record:
    """The record whose id starts with `prefix` (case-insensitive). RecordNotFound (exit 1) when none,
    UsageError (exit 2) when the prefix names several records."""
    want = prefix.strip().upper()
    if not want or not all(c.isalnum() or c in "-_" for c in want):
        raise UsageError(f"bad record id {prefix!r}")
    needle = want.encode()
    matches: dict[str, Record] = {}
    for seg in store.segments(ledger):
        for _off, line in scan.iter_range(str(seg), 0, 1 << 62):
            if needle not in line:  # ids are upper-case ULIDs; the parse below confirms
                continue
            rec = store.parse_line(line)
            if rec is not None and rec["id"].upper().startswith(want):
                matches[rec["id"]] = rec  # the same id twice (a merged copy): the last wins
    if not matches:
        raise RecordNotFound(f"no record with an id starting with {prefix!r}")
    if len(matches) > 1:
        shown = ", ".join(sorted(matches)[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise UsageError(f"id prefix {prefix!r} is ambiguous: {shown}{more}")
    return next(iter(matches.values()))


__all__ = [
    "Acc",
    "Filters",
    "RecordNotFound",
    "Report",
    "ReportRow",
    "Totals",
    "aggregate",
    "build_filters",
    "find",
    "iter_selected",
    "latest",
    "make_spec",
]
