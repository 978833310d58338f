"""How a ledger line becomes a typed row: the one reading of the record schema for every reader.

DuckDB's `read_json` reads the JSON-Lines segments with explicit column types (what reports use;
unknown fields are skipped). Wrong-typed fields never fail a read; they are read leniently, as
DuckDB's JSON conversion does: a count or version written as a string or a fractional number is
read as that number (rounded), a label that is not a string is shown as its JSON text, and what
cannot be converted (a list where an object belongs, text where a count belongs) reads as missing.
A cost must be a JSON number (`true`, `"0.75"` or `"abc"` is no cost, as `ledger verify` says).
A line that is not a JSON object with a whole-number `v` and a non-empty `id` is a bad line:
counted and reported, never a row.

Figures that cannot be true (a negative, non-finite or absurd cost or token count; bounds in
`record.MAX_RUN_COST_USD` / `record.MAX_RUN_TOKENS`, shared with `ledger verify`) are kept out of
every sum and counted, so readers can warn instead of printing a 300-digit total.
"""

from __future__ import annotations

from ..record.schema import MAX_RUN_COST_USD as MAX_COST_USD
from ..record.schema import MAX_RUN_TOKENS as MAX_TOKENS

UNKNOWN_MODEL = "(unknown)"

_TOKENS = (
    "input BIGINT, output BIGINT, cache_read BIGINT, cache_creation BIGINT,"
    " cache_creation_5m BIGINT, cache_creation_1h BIGINT"
)
_CI = (
    "provider VARCHAR, workflow VARCHAR, job VARCHAR, run_id VARCHAR, attempt VARCHAR, ref VARCHAR,"
    " commit VARCHAR, pr VARCHAR, url VARCHAR"
)

_USE = f"requests BIGINT, {_TOKENS}, cost_usd JSON, cost_source VARCHAR"
_CALLS = "calls BIGINT, failures BIGINT, duration_ms BIGINT"
#: The record's `attribution` (`stream/attribution.py`, `transcripts/attribution.py`).
_ATTRIBUTION = (
    f"STRUCT(source VARCHAR, complete BOOLEAN, agents MAP(VARCHAR, STRUCT({_USE})),"
    f" tools MAP(VARCHAR, STRUCT({_CALLS})), mcp_servers MAP(VARCHAR, STRUCT({_CALLS}, {_USE})),"
    f" long_context STRUCT(over BIGINT, models MAP(VARCHAR, STRUCT({_USE}))))"
)

_WINDOWS = ", ".join(f"{w} STRUCT(utilization JSON, resets_at VARCHAR)" for w in ("five_hour", "seven_day"))

#: The `columns` argument of read_json. Costs are read as JSON and typed here, so that only a number
#: is a cost (`true` or `"0.75"` is none, as `ledger verify` says).
READ_COLUMNS: dict[str, str] = {
    "v": "BIGINT",
    "id": "VARCHAR",
    "started_at": "VARCHAR",
    "ended_at": "VARCHAR",
    "mode": "VARCHAR",
    "status": "VARCHAR",
    "exit_code": "BIGINT",
    "session_id": "VARCHAR",
    "claude_version": "VARCHAR",
    "model": "VARCHAR",
    "tokens": f"STRUCT({_TOKENS})",
    "cost_usd": "JSON",
    "cost_source": "VARCHAR",
    "models": f"MAP(VARCHAR, STRUCT({_TOKENS}, cost_usd JSON, cost_source VARCHAR))",
    "duration_ms": "BIGINT",
    "duration_api_ms": "BIGINT",
    "wall_ms": "BIGINT",
    "num_turns": "BIGINT",
    "subtype": "VARCHAR",
    "is_error": "BOOLEAN",
    "project": "VARCHAR",
    "git": "STRUCT(branch VARCHAR, commit VARCHAR, remote VARCHAR)",
    "ci": f"STRUCT({_CI})",
    "tags": "MAP(VARCHAR, VARCHAR)",
    "user": "VARCHAR",
    "source": "VARCHAR",
    "supersedes": "VARCHAR",
    "claude_run_version": "VARCHAR",
    "telemetry": "STRUCT(requests STRUCT(by_model MAP(VARCHAR, BIGINT)))",
    "rate_limits": f"STRUCT(seen_at VARCHAR, windows STRUCT({_WINDOWS}))",
    "attribution": _ATTRIBUTION,
}


def read_json_sql(files_param: str, columns: dict[str, str] | None = None) -> str:
    """The table function over the files named by the SQL parameter `files_param` (a list)."""
    cols = ", ".join(f"'{k}': '{v}'" for k, v in (columns or READ_COLUMNS).items())
    # maximum_object_size bounds one line (a record is a few KiB; larger sizes slow every read).
    return (
        f"read_json({files_param}, format='newline_delimited', columns={{{cols}}},"
        " ignore_errors=true, maximum_object_size=16777216)"
    )


def _count(x: str) -> str:
    """A token count in [0, MAX_TOKENS], else 0 (an impossible one is flagged by `_bad_count`)."""
    return f"(CASE WHEN {x} BETWEEN 0 AND {MAX_TOKENS} THEN {x} ELSE 0 END)"


def _bad_count(x: str) -> str:
    return f"coalesce(NOT ({x} BETWEEN 0 AND {MAX_TOKENS}), false)"


def _num(x: str) -> str:
    """A JSON number as DOUBLE, else NULL."""
    return f"(CASE WHEN json_type({x}) IN ('DOUBLE', 'UBIGINT', 'BIGINT') THEN {x}::DOUBLE END)"


def _cost_ok(x: str) -> str:
    return f"coalesce(isfinite({_num(x)}) AND {_num(x)} BETWEEN 0 AND {MAX_COST_USD}, false)"


def _cost(x: str) -> str:
    """A plausible cost as DECIMAL(18,12) (8 bytes; sums widen to 38 digits), else NULL: the number
    as written, rounded half away from
    zero to 1e-12 USD (a millionth of a micro-dollar), so sums are exact in that unit."""
    return f"(CASE WHEN {_cost_ok(x)} THEN try_cast({x}::VARCHAR AS DECIMAL(18,12)) END)"


def _bad_cost(x: str) -> str:
    return f"({_num(x)} IS NOT NULL AND NOT {_cost_ok(x)})"


def _str(x: str) -> str:
    """A text field; '' is missing."""
    return f"nullif({x}, '')"


_label = _str


def _priced(cost: str, source: str) -> str:
    """Priced: a plausible number that is not marked `unpriced` (the README's rule)."""
    return f"({_cost_ok(cost)} AND coalesce({source}, '') <> 'unpriced')"


_KINDS = ("input", "output", "cache_read", "cache_creation")


def _parts_list(expr: str) -> str:
    """`expr` (over one model part `p`) for each entry of the record's `models`, as a list (NULL
    when it has none): compact typed lists, so the raw map is never stored."""
    return f"CASE WHEN cardinality(models) > 0 THEN list_transform(map_values(models), lambda p: {expr}) END"


_PART_COST = f"CASE WHEN {_priced('p.cost_usd', 'p.cost_source')} THEN {_cost('p.cost_usd')} ELSE 0 END"

#: The record's model parts as lists, one entry per model (read from `models`).
MODEL_LISTS: dict[str, str] = {
    "m_names": "CASE WHEN cardinality(models) > 0 THEN map_keys(models) END",
    **{f"m_{k}": _parts_list(_count(f"p.{k}")) for k in _KINDS},
    "m_priced": _parts_list(_priced("p.cost_usd", "p.cost_source")),
    "m_cost": _parts_list(_PART_COST),
    "m_bad": _parts_list(
        f"({' OR '.join(_bad_count(f'p.{k}') for k in _KINDS)} OR {_bad_cost('p.cost_usd')})"
    ),
}


def _utilization(x: str) -> str:
    """A quota window's utilization: a JSON number in [0, 100] (a fraction; above 1 happens), else NULL."""
    return f"(CASE WHEN isfinite({_num(x)}) AND {_num(x)} BETWEEN 0 AND 100 THEN {_num(x)} END)"


#: Output column → SQL over one raw read_json row: the typed row of a record line.
COLUMNS: dict[str, str] = {
    "id": _str("id"),
    "v": "v",
    "started_at": "try_cast(started_at AS TIMESTAMPTZ)",
    "ended_at": "try_cast(ended_at AS TIMESTAMPTZ)",
    "mode": _label("mode"),
    "status": _label("status"),
    "exit_code": "exit_code",
    "session_id": _label("session_id"),
    "claude_version": _str("claude_version"),
    "model": f"coalesce({_label('model')}, '{UNKNOWN_MODEL}')",
    **{k: _count(f"raw.tokens.{k}") for k in _KINDS},
    "cache_creation_5m": "raw.tokens.cache_creation_5m",
    "cache_creation_1h": "raw.tokens.cache_creation_1h",
    "cost_usd": _cost("cost_usd"),
    "priced": _priced("cost_usd", "cost_source"),
    "cost_source": f"coalesce(cost_source, CASE WHEN {_num('cost_usd')} IS NULL"
    " THEN 'unpriced' ELSE 'claude' END)",
    "duration_ms": "duration_ms",
    "duration_api_ms": "duration_api_ms",
    "wall_ms": "wall_ms",
    "num_turns": "num_turns",
    "subtype": _str("subtype"),
    "is_error": "is_error",
    "project": _label("project"),
    "branch": _label("raw.git.branch"),
    "commit": _str("raw.git.commit"),
    "remote": _str("raw.git.remote"),
    "ci_provider": _str("raw.ci.provider"),
    "ci_workflow": _label("raw.ci.workflow"),
    "ci_job": _label("raw.ci.job"),
    "ci_run_id": _label("raw.ci.run_id"),
    "ci_pr": _label("raw.ci.pr"),
    "ci_url": _str("raw.ci.url"),
    "tags": "tags",
    "user": _str('"user"'),
    "source": _label("source"),
    "supersedes": _str("supersedes"),
    "claude_run_version": _str("claude_run_version"),
    **MODEL_LISTS,
    "api_requests": "raw.telemetry.requests.by_model",
    "impossible": f"({' OR '.join(_bad_count(f'raw.tokens.{k}') for k in _KINDS)}"
    f" OR {_bad_cost('cost_usd')})",
    "quota_5h": _utilization("raw.rate_limits.windows.five_hour.utilization"),
    "quota_5h_resets_at": "try_cast(raw.rate_limits.windows.five_hour.resets_at AS TIMESTAMPTZ)",
    "quota_7d": _utilization("raw.rate_limits.windows.seven_day.utilization"),
    "quota_7d_resets_at": "try_cast(raw.rate_limits.windows.seven_day.resets_at AS TIMESTAMPTZ)",
    "quota_seen_at": "try_cast(raw.rate_limits.seen_at AS TIMESTAMPTZ)",
    # Attribution (issue 17): per agent / tool / MCP server, as written (costs typed where read).
    "attribution_source": _str("raw.attribution.source"),
    "agents": "raw.attribution.agents",
    "tools": "raw.attribution.tools",
    "mcp_servers": "raw.attribution.mcp_servers",
    # Per model, the tokens of requests over `over` prompt tokens; NULL when the record only has
    # totals (`ledger savings` then cannot apply long-context tiers per request).
    "long_context": "CASE WHEN raw.attribution.long_context.over IS NOT NULL"
    " THEN coalesce(raw.attribution.long_context.models, MAP()) END",
    "long_context_over": "raw.attribution.long_context.over",
    # Per model, the one-hour cache writes (priced apart from five-minute ones).
    "cache_1h_by_model": "CASE WHEN cardinality(models) > 0 THEN map_from_entries(list_transform("
    "map_entries(models), lambda e: {'k': e.key, 'v': e.value.cache_creation_1h})) END",
}

#: What every engine needs whatever the query: the fold's keys, the version, the bad-line test.
KEY_COLUMNS = ("id", "v", "mode", "session_id", "supersedes", "started_at", "impossible")

#: What the model parts are computed from ("models" in a column list stands for all of these).
PART_INPUTS = ("model", "priced", "cost_usd", *_KINDS, *MODEL_LISTS)

#: Which raw read_json columns each output column reads (for a lean read of a few columns).
_RAW_OF = {
    "started_at": "started_at",
    "ended_at": "ended_at",
    "api_requests": "telemetry",
    "branch": "git",
    "commit": "git",
    "remote": "git",
    "cost_source": "cost_source",
    "priced": "cost_usd",
    "impossible": "tokens",
    **{k: "tokens" for k in (*_KINDS, "cache_creation_5m", "cache_creation_1h")},
    **{c: "ci" for c in ("ci_provider", "ci_workflow", "ci_job", "ci_run_id", "ci_pr", "ci_url")},
    **{c: "models" for c in MODEL_LISTS},
    **{
        c: "rate_limits"
        for c in ("quota_5h", "quota_5h_resets_at", "quota_7d", "quota_7d_resets_at", "quota_seen_at")
    },
    **{
        c: "attribution"
        for c in ("attribution_source", "agents", "tools", "mcp_servers", "long_context", "long_context_over")
    },
    "cache_1h_by_model": "models",
}


def record_select(columns: tuple[str, ...] | None, source: str) -> str:
    """SELECT of the given output columns (all when None), plus `ok` (a record line, else a bad
    line) and the file name, from `source` (a read_json call)."""
    names = tuple(COLUMNS) if columns is None else tuple(dict.fromkeys((*KEY_COLUMNS, *_expand(columns))))
    exprs = ",\n    ".join(f'{COLUMNS[n]} AS "{n}"' for n in names)
    return f"SELECT\n    {IS_RECORD} AS ok,\n    {exprs}\nFROM {source} raw"


def _expand(columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for n in columns for c in (PART_INPUTS if n == "models" else (n,)))


def raw_columns(columns: tuple[str, ...] | None) -> dict[str, str]:
    """The read_json columns that the output columns read."""
    if columns is None:
        return dict(READ_COLUMNS)
    wanted = {"v", "id"}
    for n in (*KEY_COLUMNS, *_expand(columns)):
        raw = _RAW_OF.get(n, n)
        wanted.add(raw)
        if n == "priced":
            wanted.add("cost_source")
        if n == "impossible":
            wanted.add("cost_usd")
        if n == "cost_source":
            wanted.add("cost_usd")
    return {k: v for k, v in READ_COLUMNS.items() if k in wanted}


#: Is the raw row a record at all (else a bad line)?
IS_RECORD = "(raw.v IS NOT NULL AND nullif(raw.id, '') IS NOT NULL)"


def parts_sql(recs: str, dims: str, present: set[str] | frozenset[str] = frozenset(MODEL_LISTS)) -> str:
    """One row per (record line, model) the record used, with the residual on its main part (README
    "Ledger and reports": the record's own totals are authoritative) and the record's `dims` (SQL
    select items over `r`). A record without model parts is one part: its main model, its figures.

    One pass, no join: each record's parts are lists (`MODEL_LISTS`), summed and unnested within
    its own row. A lean read may lack some lists (`present`): their figures are then the record's,
    all on the main part — right for every view but by model."""

    def m(name: str) -> str:
        return f"r.{name}" if name in present else "NULL"

    kinds = ", ".join(
        f"coalesce({m('m_' + k)}, [NULL]) AS l_{k}, coalesce(list_sum({m('m_' + k)}), 0) AS s_{k}"
        for k in _KINDS
    )
    resid = ", ".join(
        f"CASE WHEN NOT x.has THEN x.{k} WHEN x.idx = x.main THEN coalesce(x.p_{k}, 0) + x.{k} - x.s_{k}"
        f" ELSE coalesce(x.p_{k}, 0) END AS {k}"
        for k in _KINDS
    )
    names = f"list_transform({m('m_names')}, lambda n: coalesce(nullif(n, ''), '{UNKNOWN_MODEL}'))"
    return f"""
WITH l AS (
    SELECT r.rid, {m("m_names")} IS NOT NULL AS has, r.model AS rmodel, r.priced AS rpriced,
           r.cost_usd AS rcost, {", ".join(f"r.{k}" for k in _KINDS)}, {dims},
           coalesce({names}, [r.model]) AS names, coalesce(list_position({names}, r.model), 1) AS main,
           {kinds}, coalesce({m("m_priced")}, [NULL]) AS l_priced,
           coalesce({m("m_cost")}, [NULL]) AS l_cost, coalesce(list_sum({m("m_cost")}), 0) AS s_cost,
           coalesce({m("m_bad")}, [NULL]) AS l_bad
    FROM {recs} r WHERE r.ok
), x AS (
    SELECT l.* EXCLUDE (names, l_priced, l_cost, l_bad, {", ".join(f"l_{k}" for k in _KINDS)}),
           unnest(names) AS name, generate_subscripts(names, 1) AS idx,
           unnest(l_priced) AS p_priced, unnest(l_cost) AS p_cost, unnest(l_bad) AS p_bad,
           {", ".join(f"unnest(l_{k}) AS p_{k}" for k in _KINDS)}
    FROM l
)
SELECT x.* EXCLUDE (has, rmodel, rpriced, rcost, main, name, idx, p_priced, p_cost, p_bad, s_cost,
                    {", ".join(f"{k}, p_{k}, s_{k}" for k in _KINDS)}),
       x.name AS model,
       CASE WHEN x.has THEN x.p_priced ELSE x.rpriced END AS part_priced,
       (NOT x.has OR x.idx = x.main) AS is_main,
       {resid},
       CASE WHEN NOT x.has THEN (CASE WHEN x.rpriced THEN x.rcost ELSE 0 END)
            WHEN x.idx = x.main AND x.rpriced THEN coalesce(x.p_cost, 0) + x.rcost - x.s_cost
            ELSE coalesce(x.p_cost, 0) END AS cost,
       coalesce(x.has AND x.p_bad, false) AS impossible
FROM x
"""
