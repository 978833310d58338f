"""A record as additive "units": one per model it used, carrying the record's dimensions.

Every report is a sum of units, so the same numbers come out whether they are summed from a fresh
scan, from the rollup, or from both (rollup + appended tail). A unit row is a flat list:

    0 day   1 model   2 project   3 branch   4 status   5 mode   6 ci_job   7 tags (sorted (k, v) pairs)
    8 record priced (0/1)   9 part priced (0/1)
    10 runs   11 parts   12 input   13 output   14 cache_read   15 cache_creation   16 cost (2^-100 USD int)
    [17 started_at epoch seconds   18 session_id]   (raw units from a scan only; rollup rows stop at 16)

`runs` is 1 on the record's main unit only, so summing `runs` counts each record once; `parts` is 1
on every unit, so per-model rows count the records that used that model. The main unit also carries
the residual (record totals minus the sum of its model parts), so any grouping other than by model
adds up to the record's own totals exactly, as if the record were taken whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from ..fold import named_target

KEY_LEN = 10
ROW_LEN = 17
RAW_LEN = 19
DAY, MODEL, PROJECT, BRANCH, STATUS, MODE, CI_JOB, TAGS, PREC, PPART = range(10)
RUNS, PARTS, INPUT, OUTPUT, CACHE_READ, CACHE_CREATION, COST, TS, SESSION = range(10, 19)
UNKNOWN_MODEL = "(unknown)"

# Costs are summed as integers in units of 2^-100 USD: a float cost times 2^100 is an exact float
# (a power-of-two scale) and an integer for any cost above 2^-48 USD, so the sums are the exact sums
# of the binary values in the ledger, whatever the order or grouping. They are shown rounded to
# 1e-12 USD (the ledger's floats carry no more than that; see docs/reports.md).
FIX_BITS = 100
_FIXF = float(1 << FIX_BITS)
_PICO = Decimal("1e-12")
_INF = float("inf")

Row = list[Any]


def fixed(value: object) -> int | None:
    """A cost as a 2^-100 USD integer (None when it is not a number)."""
    if type(value) is float:
        if value != value or abs(value) == _INF:
            return None
        scaled = value * _FIXF
        # A huge but finite cost overflows the scaling; it is a whole number, so shift it instead.
        return int(scaled) if abs(scaled) != _INF else int(value) << FIX_BITS
    if type(value) is int:
        return value << FIX_BITS
    return None


def to_usd(value: int) -> Decimal:
    """A fixed-point sum as USD, exact then rounded to 1e-12 (half-even)."""
    with localcontext() as ctx:
        # Exact for any sum: a float cost is below 2^1024, scaled 2^100, times 5^100 (~410 digits).
        ctx.prec = 1000
        exact = Decimal(value) * Decimal(5**FIX_BITS) / Decimal(10**FIX_BITS)
        return exact.quantize(_PICO, rounding=ROUND_HALF_EVEN)


def _int(value: object) -> int:
    return value if type(value) is int else 0


def _str(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if type(value) is str else str(value)


def is_priced(cost: object, source: object) -> bool:
    return source != "unpriced" and (type(cost) is float or type(cost) is int)


def tag_tuple(
    tags: object, dropped: frozenset[str] | set[str] | tuple[()] = frozenset()
) -> tuple[tuple[str, str], ...]:
    if type(tags) is not dict or not tags:
        return ()
    items = [(str(k), v if type(v) is str else str(v)) for k, v in tags.items() if k not in dropped]
    items.sort()
    return tuple(items)


def record_parts(rec: dict[str, Any]) -> list[list[Any]]:
    """[model, record priced, part priced, runs, parts, input, output, cache_read, cache_creation,
    cost] per model the record used; the main part carries `runs` and the residual.

    This runs for every record of a cold build, so the usual shapes (no parts, or one part) take a
    short path; it gives what the general rule gives (the residual makes a lone part's tokens, and
    its cost when the record is priced, the record's own)."""
    cost = rec.get("cost_usd")
    tc = type(cost)
    if (tc is float or tc is int) and rec.get("cost_source") != "unpriced":
        rec_priced = 1
        rec_cost = fixed(cost)
    else:
        rec_priced = 0
        rec_cost = None
    tokens = rec.get("tokens")
    if type(tokens) is dict:
        v = tokens.get("input")
        t_in = v if type(v) is int else 0
        v = tokens.get("output")
        t_out = v if type(v) is int else 0
        v = tokens.get("cache_read")
        t_cr = v if type(v) is int else 0
        v = tokens.get("cache_creation")
        t_cc = v if type(v) is int else 0
    else:
        t_in = t_out = t_cr = t_cc = 0
    models = rec.get("models")
    if type(models) is not dict or not models:
        main_model = _str(rec.get("model")) or UNKNOWN_MODEL
        return [[main_model, rec_priced, rec_priced, 1, 1, t_in, t_out, t_cr, t_cc, rec_cost or 0]]
    if len(models) == 1:
        ((name, part),) = models.items()
        model = name if type(name) is str and name else UNKNOWN_MODEL
        p_priced = 0
        p_cost_raw = None
        if type(part) is dict:
            p_cost_raw = part.get("cost_usd")
            tp = type(p_cost_raw)
            if (tp is float or tp is int) and part.get("cost_source") != "unpriced":
                p_priced = 1
        if rec_cost is None:
            rec_cost = (fixed(p_cost_raw) if p_priced else 0) or 0
        return [[model, rec_priced, p_priced, 1, 1, t_in, t_out, t_cr, t_cc, rec_cost]]
    out: list[list[Any]] = []
    for name, part in models.items():
        if type(part) is not dict:
            part = {}
        model = name if type(name) is str and name else UNKNOWN_MODEL
        p_cost_raw = part.get("cost_usd")
        p_priced = 1 if is_priced(p_cost_raw, part.get("cost_source")) else 0
        p_cost = (fixed(p_cost_raw) if p_priced else 0) or 0
        p_in, p_out = _int(part.get("input")), _int(part.get("output"))
        p_cr, p_cc = _int(part.get("cache_read")), _int(part.get("cache_creation"))
        out.append([model, rec_priced, p_priced, 0, 1, p_in, p_out, p_cr, p_cc, p_cost])
    main_model = _str(rec.get("model")) or UNKNOWN_MODEL
    return with_residual(out, main_model, t_in, t_out, t_cr, t_cc, rec_cost)


def with_residual(
    out: list[list[Any]], main_model: str, t_in: int, t_out: int, t_cr: int, t_cc: int, rec_cost: int | None
) -> list[list[Any]]:
    """Several model parts: the main one (the record's model, else the first) counts the run and
    carries the residual, so the parts add up to the record's own totals, which are authoritative."""
    main = out[0]
    for row in out:
        if row[0] == main_model:
            main = row
            break
    main[3] = 1
    main[5] += t_in - sum(row[5] for row in out)
    main[6] += t_out - sum(row[6] for row in out)
    main[7] += t_cr - sum(row[7] for row in out)
    main[8] += t_cc - sum(row[8] for row in out)
    if rec_cost is not None:
        main[9] += rec_cost - sum(row[9] for row in out)
    return out


def record_dims(
    rec: dict[str, Any], dropped: frozenset[str] | set[str] | tuple[()] = frozenset()
) -> list[Any]:
    """[project, branch, status, mode, ci_job, tags]."""
    project = rec.get("project")
    if type(project) is not str or not project:
        project = _str(project)
    git = rec.get("git")
    branch = git.get("branch") if type(git) is dict else None
    if type(branch) is not str or not branch:
        branch = _str(branch)
    status = rec.get("status")
    if type(status) is not str or not status:
        status = _str(status)
    mode = rec.get("mode")
    if type(mode) is not str or not mode:
        mode = _str(mode)
    ci = rec.get("ci")
    job = ci.get("job") if type(ci) is dict else None
    if type(job) is not str or not job:
        job = _str(job)
    tags = rec.get("tags")
    if type(tags) is not dict or not tags:
        return [project, branch, status, mode, job, ()]
    items = sorted(tags.items())
    for _k, v in items:
        if type(v) is not str:
            return [project, branch, status, mode, job, tag_tuple(tags, dropped)]
    if dropped:
        return [project, branch, status, mode, job, tuple([kv for kv in items if kv[0] not in dropped])]
    return [project, branch, status, mode, job, tuple(items)]


def record_units(
    rec: dict[str, Any],
    day: int,
    dropped: frozenset[str] | set[str] | tuple[()] = frozenset(),
    ts: float | None = None,
) -> list[Row]:
    """The units of one record (see the module docstring). `ts` given → raw units (19 fields)."""
    p, b, st, mo, job, tags = record_dims(rec, dropped)
    if ts is None:
        return [[day, m, p, b, st, mo, job, tags, rp, pp, *vals] for m, rp, pp, *vals in record_parts(rec)]
    sid = _str(rec.get("session_id"))
    return [
        [day, m, p, b, st, mo, job, tags, rp, pp, *vals, ts, sid] for m, rp, pp, *vals in record_parts(rec)
    ]


def is_side(rec: Mapping[str, Any]) -> bool:
    """Records the fold may drop later (imports, superseding records) are kept one by one, not summed."""
    return rec.get("mode") == "imported" or named_target(rec) is not None


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def session_hash(session_id: str) -> int:
    """64 stable bits of a session id (UUIDs: their leading 16 hex digits; others: blake2b)."""
    if len(session_id) == 36 and session_id[8] == "-" and session_id[13] == "-":
        digits = session_id[:8] + session_id[9:13] + session_id[14:18]
        # Hex digits only: int(..., 16) also takes a sign, "_" and spaces, and a negative value
        # does not fit the unsigned array the hashes are kept in.
        if _HEX_DIGITS.issuperset(digits):
            return int(digits, 16)
    import hashlib

    return int.from_bytes(hashlib.blake2b(session_id.encode(), digest_size=8).digest(), "big")
