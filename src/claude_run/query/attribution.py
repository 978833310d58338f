"""`ledger summary --by agent|tool|mcp-server`: the records' `attribution`, grouped.

Rules (docs/reports.md, "Where the money went"):
- agent: per main agent / subagent type, the requests, tokens and cost the records attribute to
  it, summed over counted records. A record without attribution (written before it existed, or
  imported) is one `(not attributed)` row with its own totals, so the totals equal `--by day`'s.
  Costs marked `estimate` (transcripts or the stream, list prices) are flagged.
- tool: calls, failures and, where telemetry measured them, durations. No dollars: a tool call's
  tokens are spent in the next request together with everything else in the context.
- mcp-server: the MCP tools' calls per server, plus the requests, tokens and cost Claude's
  telemetry attributed to the server (`mcp_server.name`), where it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .engine import Engine, using
from .filters import Filters
from .schema import _cost, _str
from .summary import _order, dim_sql, where_sql
from .timeparse import resolve_tz, tz_key

ATTRIBUTION_DIMS = ("agent", "tool", "mcp-server")
UNATTRIBUTED = "(not attributed)"
_KINDS = ("input", "output", "cache_read", "cache_creation")


@dataclass
class AttributionRow:
    key: tuple[str, ...]
    runs: int = 0
    requests: int | None = None
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    cost: Decimal | None = None
    estimated: int = 0  # entries whose cost is a list-price estimate
    unpriced: int = 0  # entries with tokens and no price
    calls: int | None = None
    failures: int | None = None
    duration_ms: int | None = None  # summed over the calls telemetry timed
    timed_calls: int = 0


@dataclass
class AttributionReport:
    kind: str  # agent | tool | mcp-server
    group_by: tuple[str, ...]
    rows: list[AttributionRow]
    total: AttributionRow
    unattributed_runs: int
    tz: str
    warnings: list[str] = field(default_factory=list)


def attribution_report(
    ledger: Path | Engine,
    group_by: tuple[str, ...],
    filters: Filters | None = None,
    tz: tzinfo | None = None,
    *,
    persist: bool = True,
) -> AttributionReport:
    filters = filters or Filters()
    tz = tz or resolve_tz(None)
    kinds = [g for g in group_by if g in ATTRIBUTION_DIMS]
    if len(kinds) != 1:
        raise UsageError("--by takes one of agent, tool or mcp-server at a time")
    if "model" in group_by or filters.model is not None:
        raise UsageError(
            f"--by {kinds[0]} cannot be split or narrowed by model (records attribute per agent)"
        )
    with using(ledger, persist=persist) as eng:
        return _report(eng, kinds[0], group_by, filters, tz)


def _report(eng: Engine, kind: str, group_by: tuple[str, ...], f: Filters, tz: tzinfo) -> AttributionReport:
    where, params = where_sql(f, tz, False, rec="l")
    dims = [("e.key" if g == kind else dim_sql(g, tz, False, rec="l")) for g in group_by]
    column = {"agent": "agents", "tool": "tools", "mcp-server": "mcp_servers"}[kind]
    entries = f"""
        SELECT l.rid, l.started_at, l.project, l.branch, l.status, l.mode, l.ci_job, l.session_id,
               l.tags, unnest(map_entries(l.{column})) AS e
        FROM _lines l WHERE {where} AND cardinality(l.{column}) > 0"""
    keys = ", ".join(f"{d} AS k{i}" for i, d in enumerate(dims))
    k_names = ", ".join(f"k{i}" for i in range(len(dims)))
    source = _str("e.value.cost_source")
    priced = f"(coalesce({source}, 'claude') <> 'unpriced' AND {_cost('e.value.cost_usd')} IS NOT NULL)"
    if kind == "tool":
        figures = (
            "NULL, 0, 0, 0, 0, NULL::DECIMAL(38,12), 0, 0,"
            " e.value.calls, e.value.failures, e.value.duration_ms"
        )
    else:
        calls = (
            "e.value.calls, e.value.failures, e.value.duration_ms"
            if kind == "mcp-server"
            else "NULL, NULL, NULL"
        )
        figures = (
            "e.value.requests, "
            + ", ".join(f"coalesce(e.value.{k}, 0)" for k in _KINDS)
            + f", CASE WHEN {priced} THEN {_cost('e.value.cost_usd')} END,"
            " (e.value.cost_source = 'estimate')::INT,"
            f" (NOT {priced} AND coalesce(e.value.input, 0) + coalesce(e.value.output, 0) > 0)::INT, {calls}"
        )
    rows_sql = f"SELECT {keys}, l.rid, {figures} FROM ({entries}) l"
    if kind == "agent":
        # Records without attribution: one row with their own totals, so totals agree with --by day.
        plain = [(f"'{UNATTRIBUTED}'" if g == kind else dim_sql(g, tz, False, rec="l")) for g in group_by]
        rows_sql += f"""
        UNION ALL
        SELECT {", ".join(f"{d} AS k{i}" for i, d in enumerate(plain))}, l.rid, NULL,
               {", ".join(f"l.{k}" for k in _KINDS)}, CASE WHEN l.priced THEN l.cost_usd END,
               0, (NOT l.priced AND l.input + l.output > 0)::INT, NULL, NULL, NULL
        FROM _lines l WHERE {where} AND (l.agents IS NULL OR cardinality(l.agents) = 0)"""
        params = params + params
    cols = "rid, requests, i, o, cr, cc, cost, est, unp, calls, failures, dur"
    sets = f"GROUPING SETS (({k_names}), ())"
    result = eng.con.execute(
        f"""WITH x({k_names}, {cols}) AS ({rows_sql})
            SELECT {k_names}, grouping({k_names}) > 0, count(DISTINCT rid), sum(requests), sum(i), sum(o),
                   sum(cr), sum(cc), sum(cost), sum(est), sum(unp), sum(calls), sum(failures), sum(dur),
                   sum(calls) FILTER (WHERE dur IS NOT NULL)
            FROM x GROUP BY {sets}""",
        params,
    ).fetchall()
    n = len(dims)
    rows: list[AttributionRow] = []
    total = AttributionRow(())
    for r in result:
        i, o, cr, cc = (int(v or 0) for v in r[n + 3 : n + 7])
        row = AttributionRow(
            key=tuple(str(v) for v in r[:n]),
            runs=int(r[n + 1] or 0),
            requests=_opt(r[n + 2]),
            input=i,
            output=o,
            cache_read=cr,
            cache_creation=cc,
            cost=r[n + 7],
            estimated=int(r[n + 8] or 0),
            unpriced=int(r[n + 9] or 0),
            calls=_opt(r[n + 10]),
            failures=_opt(r[n + 11]),
            duration_ms=_opt(r[n + 12]),
            timed_calls=int(r[n + 13] or 0),
        )
        if r[n]:
            row.key = ()
            total = row
        else:
            rows.append(row)
    order = _order(group_by)
    rows.sort(key=lambda r: order(r.key))
    missing = eng.con.execute(
        f"SELECT count(*) FROM _lines l WHERE {where} AND (l.agents IS NULL OR cardinality(l.agents) = 0)",
        where_sql(f, tz, False, rec="l")[1],
    ).fetchone()
    return AttributionReport(
        kind, group_by, rows, total, int(missing[0] or 0) if missing else 0, tz_key(tz), list(eng.warnings)
    )


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)
