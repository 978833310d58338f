"""Totals per group: `ledger summary`, `compare`, the HTML report and the dashboard's figures.

Rules (docs/reports.md has the long form):
- A record counts once, as a whole, in every grouping but `model`; `--by model` (and `--model`)
  split a multi-model record into its model parts (`parts`, the residual on the main part). In a
  by-model report a run that used two models counts in both rows, and once in the totals row;
  under `--model` the totals count the matching parts.
- Priced and unpriced usage are kept apart: unpriced usage carries its runs and tokens, never a $0
  cost. Whole records are priced or not by their own cost; parts by theirs.
- Savings: cache reads x (input - cache-read list price) per model, over priced usage.
- Records without a readable `started_at` have no day and are in no report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from pathlib import Path
from typing import Any

from .engine import Engine, using
from .filters import Filters
from .grouping import NONE, TIME_DIMS
from .index import index_dir
from .timeparse import resolve_tz, tz_key
from .totals import ZERO, SavingsRates, Totals


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
    source: str = "index"

    @property
    def priced_rows(self) -> list[ReportRow]:
        return [r for r in self.rows if r.priced.runs or r.priced.total_tokens or r.priced.cost]

    @property
    def unpriced_rows(self) -> list[ReportRow]:
        return [r for r in self.rows if r.unpriced.runs or r.unpriced.total_tokens]


def local_time_sql(tz: tzinfo, column: str = "l.started_at") -> str:
    """SQL for the local wall-clock time of a TIMESTAMPTZ column in `tz`."""
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return f"timezone('{key}', {column})"
    if tz is timezone.utc:
        return f"timezone('UTC', {column})"
    # A nameless fixed-offset zone (a local zone without tzdata): shift by its offset.
    off = datetime.now(tz).utcoffset() or timedelta(0)
    return f"timezone('UTC', {column} + INTERVAL ({int(off.total_seconds())}) SECOND)"


def _offset(tz: tzinfo, ts: int) -> int:
    off = datetime.fromtimestamp(ts, timezone.utc).astimezone(tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def offsets(tz: tzinfo, lo: int, hi: int) -> list[tuple[int, int]]:
    """The zone's UTC offset over [lo, hi] epoch seconds: [(from, offset)], found by sampling each
    day and bisecting each change to the second (zoneinfo has no public list of transitions)."""
    out = [(lo, _offset(tz, lo))]
    day = lo
    while day < hi:
        nxt = min(day + 86400, hi)
        if _offset(tz, nxt) != out[-1][1]:
            a, b = day, nxt  # the change lies in (a, b]
            while b - a > 1:
                mid = (a + b) // 2
                a, b = (mid, b) if _offset(tz, mid) == out[-1][1] else (a, mid)
            out.append((b, _offset(tz, b)))
        day = nxt
    return out


def local_day_sql(tz: tzinfo, epoch: str, lo: int, hi: int) -> str:
    """SQL for the local day number (days since 1970-01-01 in `tz`) of an epoch-seconds expression,
    for instants in [lo, hi]: a few integer comparisons per row instead of a time-zone conversion."""
    changes = offsets(tz, lo, hi)
    if len(changes) == 1:
        return f"(({epoch} + {changes[0][1]}) // 86400)"
    case = " ".join(f"WHEN {epoch} < {start} THEN {prev[1]}" for prev, (start, _) in pairwise(changes))
    return f"(({epoch} + CASE {case} ELSE {changes[-1][1]} END) // 86400)"


def dim_sql(dim: str, tz: tzinfo, model_view: bool, *, rec: str = "l", part: str = "p") -> str:
    """The SQL label of one `--by` dimension (labels are text; time labels sort), over the record
    row `rec` and, in a model view, the part row `part`."""
    local = local_time_sql(tz, f"{rec}.started_at")
    if dim == "day":
        return f"strftime({local}, '%Y-%m-%d')"
    if dim == "week":
        return f"strftime(date_trunc('week', {local}), '%Y-%m-%d')"
    if dim == "month":
        return f"strftime({local}, '%Y-%m')"
    if dim == "model":
        return f"{part}.model" if model_view else f"{rec}.model"
    if dim.startswith("tag:"):
        return f"coalesce({rec}.tags[{_quote(dim[4:])}], '{NONE}')"
    column = {
        "project": "project",
        "branch": "branch",
        "status": "status",
        "mode": "mode",
        "ci-job": "ci_job",
        "session": "session_id",
    }[dim]
    return f"coalesce({rec}.{column}, '{NONE}')"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def where_sql(
    f: Filters,
    tz: tzinfo,
    model_view: bool,
    *,
    rec: str = "l",
    part: str = "p",
    fold: bool = True,
    dated: bool = True,
) -> tuple[str, list[Any]]:
    """The WHERE clause over the record row `rec` (`_lines`) and, in a model view, the part row
    `part` (`_parts`), and its parameters. `fold`: only counted records; `dated`: only records with
    a start (reports bucket by time). `_units` rows are both already: pass False for them."""
    clauses = [f"{rec}.counted"] if fold else []
    if dated:
        clauses.append(f"{rec}.started_at IS NOT NULL")
    params: list[Any] = []
    if f.since is not None:
        clauses.append(f"{rec}.started_at >= to_timestamp(?)")
        params.append(f.since.ts(tz))
    if f.until is not None:
        clauses.append(f"{rec}.started_at < to_timestamp(?)")
        params.append(f.until.ts(tz))
    if f.projects:
        clauses.append(f"{rec}.project IN ({', '.join('?' * len(f.projects))})")
        params += list(f.projects)
    if f.statuses:
        clauses.append(f"{rec}.status IN ({', '.join('?' * len(f.statuses))})")
        params += list(f.statuses)
    for key, values in sorted(f.tag_map().items()):
        clauses.append(f"{rec}.tags[?] IN ({', '.join('?' * len(values))})")
        params += [key, *sorted(values)]
    if f.model is not None and model_view:
        clauses.append(f"contains(lower({part}.model), ?)")
        params.append(f.model)
    return " AND ".join(clauses) or "true", params


def _totals(vals: tuple[Any, ...]) -> Totals:
    runs, i, o, cr, cc, cost = vals
    return Totals(int(runs or 0), int(i or 0), int(o or 0), int(cr or 0), int(cc or 0), cost or ZERO)


def aggregate(
    ledger: Path | Engine,
    group_by: tuple[str, ...] = ("day",),
    filters: Filters | None = None,
    tz: tzinfo | None = None,
    *,
    persist: bool = True,
) -> Report:
    """Totals per group (see the module docstring), from an open Engine or a ledger path."""
    filters = filters or Filters()
    tz = tz or resolve_tz(None)
    index = index_dir(ledger) if persist and not isinstance(ledger, Engine) else None
    columns = _columns(group_by, filters, "model" in group_by or filters.model is not None)
    with using(ledger, persist=persist, columns=columns) as eng:
        return _aggregate(eng, group_by, filters, tz, index)


def _columns(group_by: tuple[str, ...], f: Filters, model_view: bool) -> tuple[str, ...]:
    """What a lean read needs for this report."""
    cols = ["priced", "cost_usd", "input", "output", "cache_read", "cache_creation", "model"]
    # By model: every part's figures. Otherwise a record counts whole, and only the savings look
    # into its parts (their names and cache reads): a much lighter read.
    cols += ["models"] if model_view else ["m_names", "m_cache_read"]
    dims = {"project": "project", "branch": "branch", "status": "status", "ci-job": "ci_job"}
    for g in group_by:
        if g in dims:
            cols.append(dims[g])
        elif g.startswith("tag:"):
            cols.append("tags")
    if f.projects:
        cols.append("project")
    if f.statuses:
        cols.append("status")
    if f.tags:
        cols.append("tags")
    return tuple(dict.fromkeys(cols))


def _aggregate(
    eng: Engine, group_by: tuple[str, ...], f: Filters, tz: tzinfo, cache_dir: Path | None
) -> Report:
    """Two steps: sum the units (`_units`: model parts of counted records with their record's
    dimensions) by local day number and the other keys (and, for the savings, the model of priced
    cache reads), then label the few days as days, weeks or months and sum again, with the totals
    as a grouping set."""
    model_view = "model" in group_by or f.model is not None
    # `_units` rows are counted and dated parts carrying their record's dimensions.
    where, params = where_sql(f, tz, model_view, rec="u", part="u", fold=False, dated=False)
    pr = "u.part_priced" if model_view else "u.priced"
    span = eng.con.execute("SELECT min(q), max(q) FROM _units").fetchone()
    lo, hi = (int(span[0]) * 900, int(span[1]) * 900 + 900) if span and span[0] is not None else (0, 0)
    keys = [
        local_day_sql(tz, "u.q * 900", lo, hi)
        if g in TIME_DIMS
        else dim_sql(g, tz, model_view, rec="u", part="u")
        for g in group_by
    ]
    key_cols = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    eng.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _agg AS
            SELECT {key_cols}{pr} AS pr, CASE WHEN {pr} AND u.cache_read <> 0 THEN u.model END AS m,
                   count(*) AS parts, count(*) FILTER (WHERE u.is_main) AS mains,
                   sum(u.input) AS i, sum(u.output) AS o, sum(u.cache_read) AS cr,
                   sum(u.cache_creation) AS cc, sum(u.cost) AS c
            FROM _units u WHERE {where} GROUP BY ALL""",
        params,
    )
    day = "(DATE '1970-01-01' + INTERVAL (a.k{i}) DAY)"
    labels = {
        "day": f"strftime({day}, '%Y-%m-%d')",
        "week": f"strftime(date_trunc('week', {day}), '%Y-%m-%d')",
        "month": f"strftime({day}, '%Y-%m')",
    }
    outer = [labels[g].format(i=i) if g in TIME_DIMS else f"a.k{i}" for i, g in enumerate(group_by)]
    g_cols = "".join(f"{k} AS g{i}, " for i, k in enumerate(outer))
    g_names = ", ".join(f"g{i}" for i in range(len(outer)))
    eng.con.execute(f"CREATE OR REPLACE TEMP VIEW _lab AS SELECT {g_cols}a.* FROM _agg a")
    row_runs = "sum(parts)" if model_view else "sum(mains)"
    total_runs = "sum(parts)" if f.model is not None else "sum(mains)"
    is_total = f"grouping({g_names}) > 0" if outer else "true"
    sets = f"(({g_names}, pr), (pr))" if outer else "((pr))"
    groups: dict[tuple[str, ...], list[Totals]] = {}
    total = [Totals(), Totals()]  # unpriced, priced
    n = len(outer)
    rows = eng.con.execute(
        f"""SELECT {g_names + ", " if outer else ""}pr, {is_total} AS is_total,
                   CASE WHEN {is_total} THEN {total_runs} ELSE {row_runs} END,
                   sum(i), sum(o), sum(cr), sum(cc), sum(c) FILTER (WHERE pr)
            FROM _lab GROUP BY GROUPING SETS {sets}"""
    ).fetchall()
    for row in rows:
        key = tuple(str(v) for v in row[:n])
        t = _totals(row[n + 2 : n + 8])
        if row[n + 1]:
            total[int(bool(row[n]))] = t
        else:
            groups.setdefault(key, [Totals(), Totals()])[int(bool(row[n]))] = t
    savings_sets = f"(({g_names}, m), (m))" if outer else "((m))"
    cache_reads = eng.con.execute(
        f"""SELECT {g_names + ", " if outer else ""}m, {is_total}, sum(cr)
            FROM _lab WHERE m IS NOT NULL GROUP BY GROUPING SETS {savings_sets}"""
    ).fetchall()
    _savings(cache_reads, n, groups, total, cache_dir)
    order = _order(group_by)
    out = [ReportRow(k, v[1], v[0]) for k, v in sorted(groups.items(), key=lambda kv: order(kv[0]))]
    return Report(group_by, out, total[1], total[0], tz_key(tz), list(eng.warnings), eng.source)


def _order(group_by: tuple[str, ...]) -> Any:
    """Row order: labels as text, except tag values that are numbers (`--by tag:pr`), which sort
    as numbers (PR 9 before PR 10), ahead of the text ones."""

    def key(labels: tuple[str, ...]) -> tuple[tuple[int, float, str], ...]:
        out = []
        for dim, label in zip(group_by, labels, strict=True):
            number = _number(label) if dim.startswith("tag:") else None
            out.append((0, number, "") if number is not None else (1, 0.0, label))
        return tuple(out)

    return key


def _number(label: str) -> float | None:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _savings(
    cache_reads: list[tuple[Any, ...]],
    n: int,
    groups: dict[tuple[str, ...], list[Totals]],
    total: list[Totals],
    cache_dir: Path | None,
) -> None:
    """Cache savings per group: cache reads of priced usage per model, times the model's rate."""
    rates = SavingsRates(cache_dir if cache_dir is not None and cache_dir.is_dir() else None)
    acc: dict[tuple[str, ...] | None, list[Any]] = {}
    for row in cache_reads:
        key = None if row[n + 1] else tuple(str(v) for v in row[:n])
        model, tokens = str(row[n]), int(row[n + 2])
        s = acc.setdefault(key, [None, 0])
        delta = rates.get(model)
        if delta is None:
            s[1] += tokens
        else:
            s[0] = (s[0] or ZERO) + delta * tokens
    rates.save()
    for key, v in groups.items():
        priced_t = v[1]
        got = acc.get(key)
        if got is not None:
            priced_t.savings, priced_t.savings_unpriced_tokens = got[0], got[1]
        elif priced_t.cache_read == 0:
            priced_t.savings = ZERO
    grand = acc.get(None, [None, 0])
    t = total[1]
    t.savings = grand[0] if grand[0] is not None or t.cache_read else ZERO
    t.savings_unpriced_tokens = grand[1]
