"""A record as additive "units": one per model it used, carrying the record's dimensions.

Every report is a sum of units, so the same numbers come out whether they are summed from a fresh
scan, from the rollup, or from both (rollup + appended tail). A unit row is a flat list:

    0 day   1 model   2 project   3 branch   4 status   5 mode   6 ci_job   7 tags (sorted (k, v) pairs)
    8 record priced (0/1)   9 part priced (0/1)
    10 runs   11 parts   12 input   13 output   14 cache_read   15 cache_creation   16 cost (Decimal)
    [17 started_at epoch seconds   18 session_id]   (raw units from a scan only; rollup rows stop at 16)

`runs` is 1 on the record's main unit only, so summing `runs` counts each record once; `parts` is 1
on every unit, so per-model rows count the records that used that model. The main unit also carries
the residual (record totals minus the sum of its model parts), so any grouping other than by model
adds up to the record's own totals exactly, as if the record were taken whole.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

KEY_LEN = 10
ROW_LEN = 17
RAW_LEN = 19
DAY, MODEL, PROJECT, BRANCH, STATUS, MODE, CI_JOB, TAGS, PREC, PPART = range(10)
RUNS, PARTS, INPUT, OUTPUT, CACHE_READ, CACHE_CREATION, COST, TS, SESSION = range(10, 19)
UNKNOWN_MODEL = "(unknown)"
ZERO = Decimal(0)

Row = list[Any]


def as_decimal(value: object) -> Decimal | None:
    """The cost exactly as written in the ledger: orjson writes floats in shortest form, so the
    float's repr is the text on disk and its Decimal is that decimal number, not the binary one."""
    if type(value) is float:
        return Decimal(repr(value))
    if type(value) is int:
        return Decimal(value)
    return None


def _int(value: object) -> int:
    return value if type(value) is int else 0


def _str(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if type(value) is str else str(value)


def is_priced(cost: object, source: object) -> bool:
    return source != "unpriced" and (type(cost) is float or type(cost) is int)


def tag_tuple(tags: object, dropped: frozenset[str] | set[str] = frozenset()) -> tuple[tuple[str, str], ...]:
    if type(tags) is not dict or not tags:
        return ()
    items = [(str(k), v if type(v) is str else str(v)) for k, v in tags.items() if k not in dropped]
    items.sort()
    return tuple(items)


def record_units(
    rec: dict[str, Any],
    day: int,
    dropped: frozenset[str] | set[str] = frozenset(),
    ts: float | None = None,
) -> list[Row]:
    """The units of one record (see the module docstring). `ts` given → raw units (19 fields)."""
    git = rec.get("git")
    ci = rec.get("ci")
    dims: list[Any] = [
        day,
        None,
        _str(rec.get("project")),
        _str(git.get("branch")) if type(git) is dict else None,
        _str(rec.get("status")),
        _str(rec.get("mode")),
        _str(ci.get("job")) if type(ci) is dict else None,
        tag_tuple(rec.get("tags"), dropped),
    ]
    cost = rec.get("cost_usd")
    rec_priced = is_priced(cost, rec.get("cost_source"))
    rec_cost = as_decimal(cost) if rec_priced else None
    tokens = rec.get("tokens")
    if type(tokens) is not dict:
        tokens = {}
    t_in, t_out = _int(tokens.get("input")), _int(tokens.get("output"))
    t_cr, t_cc = _int(tokens.get("cache_read")), _int(tokens.get("cache_creation"))
    main_model = _str(rec.get("model")) or UNKNOWN_MODEL
    tail: list[Any] = [] if ts is None else [ts, _str(rec.get("session_id"))]
    models = rec.get("models")
    if type(models) is not dict or not models:
        return [
            [
                *dims[:1],
                main_model,
                *dims[2:],
                int(rec_priced),
                int(rec_priced),
                1,
                1,
                t_in,
                t_out,
                t_cr,
                t_cc,
                rec_cost if rec_cost is not None else ZERO,
                *tail,
            ]
        ]
    out: list[Row] = []
    main_index = 0
    s_in = s_out = s_cr = s_cc = 0
    s_cost = ZERO
    for name, part in models.items():
        if type(part) is not dict:
            part = {}
        model = _str(name) or UNKNOWN_MODEL
        p_cost_raw = part.get("cost_usd")
        p_priced = is_priced(p_cost_raw, part.get("cost_source"))
        p_cost = (as_decimal(p_cost_raw) if p_priced else None) or ZERO
        p_in, p_out = _int(part.get("input")), _int(part.get("output"))
        p_cr, p_cc = _int(part.get("cache_read")), _int(part.get("cache_creation"))
        s_in += p_in
        s_out += p_out
        s_cr += p_cr
        s_cc += p_cc
        s_cost += p_cost
        if model == main_model:
            main_index = len(out)
        out.append(
            [*dims[:1], model, *dims[2:], int(rec_priced), int(p_priced), 0, 1, p_in, p_out, p_cr, p_cc, p_cost]
        )
    main = out[main_index]
    main[RUNS] = 1
    # The record's own totals are authoritative; model parts that do not add up leave a residual.
    main[INPUT] += t_in - s_in
    main[OUTPUT] += t_out - s_out
    main[CACHE_READ] += t_cr - s_cr
    main[CACHE_CREATION] += t_cc - s_cc
    if rec_cost is not None:
        main[COST] += rec_cost - s_cost
    if tail:
        for row in out:
            row.extend(tail)
    return out


def is_side(rec: dict[str, Any]) -> bool:
    """Records the fold may drop later (imports, superseding records) are kept one by one, not summed."""
    return rec.get("mode") == "imported" or bool(rec.get("supersedes"))


def session_hash(session_id: str) -> int:
    """64 stable bits of a session id (UUIDs: their leading hex digits; others: blake2b)."""
    if len(session_id) == 36 and session_id[8] == "-" and session_id[13] == "-":
        try:
            return int(session_id[:8] + session_id[9:13] + session_id[14:18], 16)
        except ValueError:
            pass
    import hashlib

    return int.from_bytes(hashlib.blake2b(session_id.encode(), digest_size=8).digest(), "big")
