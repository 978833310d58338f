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
from pathlib import Path
from typing import Any

from ..reports.filters import Filters
from ..reports.timeparse import resolve_tz, tz_key
from ..reports.totals import ZERO, SavingsRates, Totals
from .engine import Engine, opened
from .index import index_dir

NONE = "(none)"
TIME_DIMS = ("day", "week", "month")


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


def dim_sql(dim: str, tz: tzinfo, model_view: bool) -> str:
    """The SQL label of one `--by` dimension (labels are text; time labels sort)."""
    local = local_time_sql(tz)
    if dim == "day":
        return f"strftime({local}, '%Y-%m-%d')"
    if dim == "week":
        return f"strftime(date_trunc('week', {local}), '%Y-%m-%d')"
    if dim == "month":
        return f"strftime({local}, '%Y-%m')"
    if dim == "model":
        return "p.model" if model_view else "l.model"
    if dim.startswith("tag:"):
        return f"coalesce(l.tags[{_quote(dim[4:])}], '{NONE}')"
    column = {
        "project": "project",
        "branch": "branch",
        "status": "status",
        "mode": "mode",
        "ci-job": "ci_job",
        "session": "session_id",
    }[dim]
    return f"coalesce(l.{column}, '{NONE}')"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def where_sql(f: Filters, tz: tzinfo, model_view: bool) -> tuple[str, list[Any]]:
    """The WHERE clause (over `l` = _lines, `p` = _parts in a model view) and its parameters."""
    clauses = ["l.counted", "l.started_at IS NOT NULL"]
    params: list[Any] = []
    if f.since is not None:
        clauses.append("l.started_at >= to_timestamp(?)")
        params.append(f.since.ts(tz))
    if f.until is not None:
        clauses.append("l.started_at < to_timestamp(?)")
        params.append(f.until.ts(tz))
    if f.projects:
        clauses.append(f"l.project IN ({', '.join('?' * len(f.projects))})")
        params += list(f.projects)
    if f.statuses:
        clauses.append(f"l.status IN ({', '.join('?' * len(f.statuses))})")
        params += list(f.statuses)
    for key, values in sorted(f.tag_map().items()):
        clauses.append(f"l.tags[?] IN ({', '.join('?' * len(values))})")
        params += [key, *sorted(values)]
    if f.model is not None:
        clauses.append("contains(lower(p.model), ?)" if model_view else "true")
        if model_view:
            params.append(f.model)
    return " AND ".join(clauses), params


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
    if isinstance(ledger, Engine):
        return _aggregate(ledger, group_by, filters, tz, None)
    model_view = "model" in group_by or filters.model is not None
    columns = _columns(group_by, filters, model_view)
    with opened(ledger, persist=persist, columns=columns) as eng:
        return _aggregate(eng, group_by, filters, tz, index_dir(ledger) if persist else None)


def _columns(group_by: tuple[str, ...], f: Filters, model_view: bool) -> tuple[str, ...]:
    """What a lean read needs for this report."""
    cols = ["priced", "cost_usd", "input", "output", "cache_read", "cache_creation", "model", "models"]
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
    model_view = "model" in group_by or f.model is not None
    keys = [dim_sql(g, tz, model_view) for g in group_by]
    where, params = where_sql(f, tz, model_view)
    g_cols = ", ".join(f"{k} AS g{i}" for i, k in enumerate(keys))
    sel = f"{g_cols}, " if keys else ""
    g_names = ", ".join(f"g{i}" for i in range(len(keys)))
    if model_view:
        # Rows count parts; the totals count runs (the main part), or matching parts under --model.
        source = "_lines l JOIN _parts p USING (rid)"
        priced = "p.part_priced"
        figures = "p.input, p.output, p.cache_read, p.cache_creation, p.cost, p.is_main"
        total_runs = "count(*)" if f.model is not None else "count(*) FILTER (WHERE is_main)"
    else:
        source = "_lines l"
        priced = "l.priced"
        figures = "l.input, l.output, l.cache_read, l.cache_creation, l.cost_usd AS cost, true AS is_main"
        total_runs = "count(*)"
    sets = f"(({g_names}, pr), (pr))" if keys else "((pr))"
    sql = f"""
        WITH sel AS (SELECT {sel}{priced} AS pr, {figures} FROM {source} WHERE {where})
        SELECT {g_names + ", " if keys else ""}pr, grouping({g_names or "pr"}) > 0 AS is_total,
               CASE WHEN grouping({g_names or "pr"}) > 0 THEN {total_runs} ELSE count(*) END,
               sum(input), sum(output), sum(cache_read), sum(cache_creation), sum(CASE WHEN pr THEN cost END)
        FROM sel GROUP BY GROUPING SETS {sets}
    """
    if not keys:
        sql = sql.replace("grouping(pr) > 0", "true")
    groups: dict[tuple[str, ...], list[Totals]] = {}
    total = [Totals(), Totals()]  # unpriced, priced
    n = len(keys)
    for row in eng.con.execute(sql, params).fetchall():
        key = tuple(str(v) for v in row[:n])
        pr, is_total = bool(row[n]), bool(row[n + 1])
        t = _totals(row[n + 2 : n + 8])
        if is_total:
            total[int(pr)] = t
        else:
            groups.setdefault(key, [Totals(), Totals()])[int(pr)] = t
    _savings(eng, keys, g_names, where, params, model_view, groups, total, cache_dir)
    rows = [ReportRow(k, v[1], v[0]) for k, v in sorted(groups.items())]
    return Report(group_by, rows, total[1], total[0], tz_key(tz), list(eng.warnings), eng.source)


def _savings(
    eng: Engine,
    keys: list[str],
    g_names: str,
    where: str,
    params: list[Any],
    model_view: bool,
    groups: dict[tuple[str, ...], list[Totals]],
    total: list[Totals],
    cache_dir: Path | None,
) -> None:
    """Cache savings per group: cache reads of priced usage per model, times the model's rate."""
    priced = "p.part_priced" if model_view else "l.priced"
    g_cols = ", ".join(f"{k} AS g{i}" for i, k in enumerate(keys))
    sel = f"{g_cols}, " if keys else ""
    sets = f"(({g_names}, model), (model))" if keys else "((model))"
    sql = f"""
        WITH sel AS (SELECT {sel}p.model AS model, p.cache_read FROM _lines l JOIN _parts p USING (rid)
                     WHERE {where} AND {priced} AND p.cache_read <> 0)
        SELECT {g_names + ", " if keys else ""}model, {"grouping(" + g_names + ") > 0" if keys else "true"},
               sum(cache_read)
        FROM sel GROUP BY GROUPING SETS {sets}
    """
    rates = SavingsRates(cache_dir if cache_dir is not None and cache_dir.is_dir() else None)
    n = len(keys)
    acc: dict[tuple[str, ...] | None, list[Any]] = {}
    for row in eng.con.execute(sql, params).fetchall():
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
