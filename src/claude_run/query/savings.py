"""`ledger savings`: what the counted runs cost against what they would have cost on one model.

How the figures are derived (docs/reports.md, "Savings"):
- the units are the model parts of counted records (`_units`, as `ledger summary` counts them);
- actual: a part's own cost (Claude's, or the record's estimate); a part without a price is shown
  apart (its tokens and its baseline cost, never an actual of $0);
- baseline: the part's tokens at MODEL's list prices (genai-prices), per kind: input, output,
  cache read, cache write 5 min and 1 h (the record's per-model 1 h split, else the record's);
- long-context tiers: a request whose prompt (input + cache read + cache write) is over 200k tokens
  pays the tier price for all its tokens. A record whose attribution knew every request
  (`attribution.long_context`) has those requests' tokens per model, priced at MODEL's tier; a
  record with totals only is priced at MODEL's base prices (counted in `totals_only_runs`).
Money is exact: token counts times prices per million tokens summed as decimals in SQL, divided
by a million here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal
from pathlib import Path

from ..errors import UsageError
from .engine import Engine, using
from .filters import Filters
from .summary import _order, dim_sql, where_sql
from .timeparse import resolve_tz, tz_key
from .totals import ZERO

MILLION = Decimal(1_000_000)
#: The price kinds, with the SQL of a part's tokens of that kind over the part `u` (c1h: its
#: one-hour cache writes) and of its long-context share `lc` (a struct, or NULL).
_TOKENS = {
    "input": ("u.input", "lc.input"),
    "output": ("u.output", "lc.output"),
    "cache_read": ("u.cache_read", "lc.cache_read"),
    "cache_write_5m": ("(u.cache_creation - c1h)", "(lc.cache_creation - lc1h)"),
    "cache_write_1h": ("c1h", "lc1h"),
}


@dataclass
class SavingsRow:
    key: tuple[str, ...]
    runs: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    actual: Decimal | None = ZERO  # None for unpriced usage
    baseline: Decimal = ZERO
    long_requests: int = 0  # requests priced at the baseline's long-context tier

    @property
    def saved(self) -> Decimal | None:
        return None if self.actual is None else self.baseline - self.actual

    @property
    def saved_pct(self) -> float | None:
        saved = self.saved
        if saved is None or not self.baseline:
            return None
        return float(saved / self.baseline * 100)


@dataclass
class SavingsReport:
    model: str
    group_by: tuple[str, ...]
    rows: list[SavingsRow]
    total: SavingsRow
    unpriced_rows: list[SavingsRow]
    unpriced_total: SavingsRow
    prices: dict[str, Decimal]  # the baseline's base prices per MTok
    tier: dict[str, Decimal] | None  # its long-context prices per MTok (None: it has no tier)
    per_request_runs: int = 0
    totals_only_runs: int = 0
    tz: str = "UTC"
    warnings: list[str] = field(default_factory=list)


def baseline_prices(model: str) -> tuple[dict[str, Decimal], dict[str, Decimal] | None, list[str]]:
    """MODEL's base prices, its long-context tier prices, and warnings; a UsageError (exit 2) when
    genai-prices has no price for it."""
    from ..pricing import price_table
    from ..stream.attribution import LONG_CONTEXT_OVER

    table = price_table(model)
    if table is None:
        raise UsageError(f"no list price known for {model!r}: the baseline must be a priced model")
    warnings: list[str] = []
    tier = next((p for start, p in table.tiers if start == LONG_CONTEXT_OVER), None)
    others = [start for start, _ in table.tiers if start != LONG_CONTEXT_OVER]
    if others:
        warnings.append(
            f"{model} has price tiers at {', '.join(map(str, others))} prompt tokens: records know"
            f" requests over {LONG_CONTEXT_OVER:,} only, so those tiers are not applied"
        )
    return table.base, tier, warnings


def savings(
    ledger: Path | Engine,
    model: str,
    group_by: tuple[str, ...] = (),
    filters: Filters | None = None,
    tz: tzinfo | None = None,
    *,
    persist: bool = True,
) -> SavingsReport:
    """Actual cost against `model`'s list prices, per group and in total."""
    filters = filters or Filters()
    tz = tz or resolve_tz(None)
    base, tier, warnings = baseline_prices(model)
    with using(ledger, persist=persist) as eng:
        return _savings(eng, model, group_by, filters, tz, base, tier, warnings)


def _price_sql(prices: dict[str, Decimal], long: bool) -> str:
    """Σ tokens x price per MTok over the kinds, as an exact DECIMAL (divided by a million later)."""
    terms = []
    for kind, (tokens, long_tokens) in _TOKENS.items():
        price = f"{prices[kind]}::DECIMAL(18,6)"
        if long:
            terms.append(f"coalesce({long_tokens}, 0) * {price}")
        else:
            terms.append(f"({tokens} - coalesce({long_tokens}, 0)) * {price}")
    return " + ".join(terms)


def _savings(
    eng: Engine,
    model: str,
    group_by: tuple[str, ...],
    f: Filters,
    tz: tzinfo,
    base: dict[str, Decimal],
    tier: dict[str, Decimal] | None,
    warnings: list[str],
) -> SavingsReport:
    where, params = where_sql(f, tz, True, rec="u", part="u", fold=False, dated=False)
    keys = [dim_sql(g, tz, True, rec="u", part="u") for g in group_by]
    key_cols = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    k_names = ", ".join(f"k{i}" for i in range(len(keys)))
    # One row per part: its one-hour cache writes (the record's per-model split, else the record's
    # own, at most its cache writes) and its long-context share (NULL: the record has totals only).
    eng.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _sv AS
            WITH p AS (
                SELECT u.*, l.long_context IS NOT NULL AS known,
                       greatest(least(coalesce(CASE WHEN l.cache_1h_by_model IS NOT NULL
                                                    THEN l.cache_1h_by_model[u.model]
                                                    ELSE l.cache_creation_1h END, 0), u.cache_creation), 0)
                           AS c1h,
                       l.long_context[u.model] AS lc
                FROM _units u JOIN _lines l USING (rid) WHERE {where}
            )
            SELECT {key_cols}u.rid, u.part_priced AS pr, u.known, u.input, u.output, u.cache_read,
                   u.cache_creation, u.cost,
                   coalesce(u.lc.requests, 0) AS long_requests,
                   ({_price_sql(base, False)}) + ({_price_sql(tier or base, True)}) AS base_mtok
            FROM (SELECT p.*, greatest(least(coalesce(p.lc.cache_creation_1h, 0),
                                             coalesce(p.lc.cache_creation, 0)), 0) AS lc1h
                  FROM p) u""",
        params,
    )
    group = f"GROUPING SETS (({k_names}, pr), (pr))" if keys else "GROUPING SETS ((pr))"
    is_total = f"grouping({k_names}) > 0" if keys else "true"
    rows = eng.con.execute(
        f"""SELECT {k_names + ", " if keys else ""}pr, {is_total}, count(DISTINCT rid),
                   sum(input), sum(output), sum(cache_read), sum(cache_creation), sum(cost),
                   sum(base_mtok), sum(long_requests)
            FROM _sv GROUP BY {group}"""
    ).fetchall()
    n = len(keys)
    priced: dict[tuple[str, ...], SavingsRow] = {}
    unpriced: dict[tuple[str, ...], SavingsRow] = {}
    totals = {True: SavingsRow(()), False: SavingsRow((), actual=None)}
    for row in rows:
        pr = bool(row[n])
        key = tuple(str(v) for v in row[:n])
        r = SavingsRow(
            key,
            int(row[n + 2] or 0),
            int(row[n + 3] or 0),
            int(row[n + 4] or 0),
            int(row[n + 5] or 0),
            int(row[n + 6] or 0),
            (row[n + 7] or ZERO) if pr else None,
            Decimal(row[n + 8] or 0) / MILLION,
            int(row[n + 9] or 0),
        )
        if row[n + 1]:
            r.key = ()
            totals[pr] = r
        else:
            (priced if pr else unpriced)[key] = r
    basis = eng.con.execute(
        "SELECT count(DISTINCT rid) FILTER (WHERE known),"
        " count(DISTINCT rid) FILTER (WHERE NOT known) FROM _sv"
    ).fetchone()
    order = _order(group_by)
    return SavingsReport(
        model,
        group_by,
        [priced[k] for k in sorted(priced, key=order)],
        totals[True],
        [unpriced[k] for k in sorted(unpriced, key=order)],
        totals[False],
        base,
        tier,
        int(basis[0] or 0) if basis else 0,
        int(basis[1] or 0) if basis else 0,
        tz_key(tz),
        [*eng.warnings, *warnings],
    )
