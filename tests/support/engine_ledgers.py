"""Ledgers full of the fold's corner cases, and the README's reading of a record written out plainly.

`ledgers()` draws records with supersedes chains, forward, self and cyclic references, names of ids
that are not there, duplicate lines (identical and not), imports of tracked and telemetry sessions,
multi-model records whose parts do not add up, unpriced parts, odd field types and bad lines.

`clean(raw)` is the README's reading of one record (docs/reports.md, "The engine and its index"):
labels that are not strings are their JSON text, a count written as a string is that count, a cost
must be a JSON number in [0, 1e5] (else the record is unpriced), a count outside [0, 1e10] is 0. It
returns a record of plain types that `reports_records.brute` (the fold and the sums, written from the
rules) can take.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
from hypothesis import strategies as st

from . import reports_records as rr

MAX_COST = 100_000  # record.MAX_RUN_COST_USD
MAX_TOKENS = 10_000_000_000  # record.MAX_RUN_TOKENS
KINDS = rr.KINDS

costs = st.one_of(
    st.none(),
    st.just(0.0),
    st.floats(min_value=1e-6, max_value=50, allow_nan=False),
    st.sampled_from([True, -1.0, 2e6, "0.75", "abc"]),  # a bool, impossible, a number as text: no cost
)
counts = st.one_of(st.integers(0, 5000), st.sampled_from(["12", -3]))
labels = st.sampled_from(["api", "web", None, "", 5])
BAD_LINES = [b"garbage", b'{"torn": ', b"[1, 2]", b'{"v": "x", "id": "Q"}', b'{"v": 1, "id": ""}']


@st.composite
def part(draw: Any) -> dict[str, Any]:
    c = draw(costs)
    return {
        **{k: draw(counts) for k in KINDS},
        "cost_usd": c,
        "cost_source": draw(st.sampled_from(["claude", "estimate"])) if c is not None else "unpriced",
    }


@st.composite
def record(draw: Any, i: int, n: int) -> dict[str, Any]:
    models = draw(st.dictionaries(st.sampled_from([*rr.MODELS, ""]), part(), max_size=2))
    tokens: dict[str, Any] = {k: draw(counts) for k in KINDS}
    if models and draw(st.booleans()):
        tokens = {k: sum(_count(m[k]) for m in models.values()) for k in KINDS}
    cost = draw(costs)
    offset = draw(st.floats(min_value=0, max_value=6 * 86400, allow_nan=False))
    rec: dict[str, Any] = {
        "v": 1,
        "id": f"R{i:05d}",
        "started_at": rr._iso(int(rr.BASE + offset) + draw(st.integers(0, 999)) / 1000),
        "mode": draw(st.sampled_from(["non-interactive", "hybrid", "imported", "imported", "telemetry"])),
        "status": draw(st.sampled_from(["success", "error"])),
        "model": draw(st.sampled_from([*rr.MODELS, None])),
        "tokens": tokens,
        "cost_usd": cost,
        "cost_source": draw(st.sampled_from(["claude", "estimate", "unpriced"]))
        if cost is not None
        else "unpriced",
        "models": models,
        "project": draw(labels),
        "git": {"branch": draw(st.sampled_from(["main", "dev", None]))},
        "ci": draw(st.sampled_from([None, {"job": "review"}, {"job": "fix"}])),
        "tags": draw(
            st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["a", "b", 7]), max_size=2)
        ),
        "session_id": draw(st.sampled_from([None, "s1", "s2", "s3", "s4"])),
    }
    kind = draw(st.integers(0, 9))
    if kind <= 2:  # a supersedes naming any id: earlier, later (forward), itself, or absent
        rec["supersedes"] = f"R{draw(st.integers(0, n)):05d}"
    elif kind == 3:
        rec["started_at"] = "not a date"
    return rec


@st.composite
def ledgers(draw: Any, max_size: int = 25) -> tuple[list[dict[str, Any]], list[bytes]]:
    """(the records in ledger order, the ledger's lines) — bad lines are in the lines only."""
    n = draw(st.integers(min_value=0, max_value=max_size))
    records = [draw(record(i, n)) for i in range(n)]
    if records and draw(st.booleans()):  # a duplicate line: the same record again, or changed
        copy = dict(draw(st.sampled_from(records)))
        if draw(st.booleans()):
            copy["cost_usd"], copy["cost_source"] = 9.5, "claude"
        records.insert(draw(st.integers(0, len(records))), copy)
    lines = [orjson.dumps(r) for r in records]
    for bad in draw(st.lists(st.sampled_from(BAD_LINES), max_size=2)):
        lines.insert(draw(st.integers(0, len(lines))), bad)
    return records, lines


def write(path: Any, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


# -- the README's reading ---------------------------------------------------------------------------
def _label(x: Any) -> str | None:
    if isinstance(x, str):
        return x or None
    if x is None:
        return None
    return orjson.dumps(x).decode()


def _count(x: Any) -> int:
    if isinstance(x, str):
        try:
            x = int(x)
        except ValueError:
            return 0
    if isinstance(x, bool) or not isinstance(x, int):
        return 0
    return x if 0 <= x <= MAX_TOKENS else 0


def _cost(x: Any) -> float | None:
    """A plausible cost (a JSON number), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    if not math.isfinite(x) or not 0 <= x <= MAX_COST:
        return None
    return float(x)


def clean(raw: dict[str, Any]) -> dict[str, Any]:
    """One record as the README reads it, in plain types (see the module docstring)."""
    cost = _cost(raw.get("cost_usd"))
    source = raw.get("cost_source") if isinstance(raw.get("cost_source"), str) else None
    models = {}
    for name, p in (raw.get("models") or {}).items():
        pc = _cost(p.get("cost_usd"))
        models[name or "(unknown)"] = {
            **{k: _count(p.get(k)) for k in KINDS},
            "cost_usd": pc,
            "cost_source": p.get("cost_source") if pc is not None else "unpriced",
        }
    try:
        started: str | None = (
            datetime.fromisoformat(raw["started_at"].replace("Z", "+00:00"))
            .astimezone(timezone.utc)
            .isoformat()
        )
    except (ValueError, TypeError, KeyError):
        started = None
    tags = {str(k): _label(v) for k, v in (raw.get("tags") or {}).items()}
    return {
        "id": raw["id"],
        "started_at": started,
        "mode": _label(raw.get("mode")),
        "status": _label(raw.get("status")),
        "model": _label(raw.get("model")),
        "tokens": {k: _count((raw.get("tokens") or {}).get(k)) for k in KINDS},
        "cost_usd": cost,
        "cost_source": source if cost is not None else "unpriced",
        "models": models,
        "project": _label(raw.get("project")),
        "git": {"branch": _label((raw.get("git") or {}).get("branch"))},
        "ci": {"job": _label((raw.get("ci") or {}).get("job"))} if raw.get("ci") else None,
        "tags": {k: v for k, v in tags.items() if v is not None},
        "session_id": _label(raw.get("session_id")),
        **({"supersedes": raw["supersedes"]} if raw.get("supersedes") else {}),
    }


def dated(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reports bucket by time: a record without a readable start is in none of them."""
    return [r for r in records if r["started_at"] is not None]


def counted_totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over every counted record (dated or not): runs, priced runs, cost, tokens."""
    kept = rr.folded(records)
    priced = [r for r in kept if rr._priced(r.get("cost_usd"), r.get("cost_source"))]
    model_cost = Fraction(0)
    for r in kept:
        model_cost += sum(
            (cost for _m, is_priced, _t, cost, _n in rr.pieces(r, True) if is_priced), Fraction(0)
        )
    return {
        "runs": len(kept),
        "priced_runs": len(priced),
        "model_cost": model_cost,
        "cost": sum((rr.pico(r["cost_usd"]) for r in priced), Fraction(0)),
        **{k: sum(r["tokens"][k] for r in kept) for k in KINDS},
    }


def usd(x: Fraction) -> Decimal:
    return rr.usd(x)
