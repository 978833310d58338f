"""Random ledgers for the report tests, and a brute-force report to check the real one against.

The brute force is written straight from the rules in docs/reports.md, record by record, without the
units/cuboids machinery, so the two can disagree.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

BASE = datetime(2025, 3, 28, tzinfo=timezone.utc).timestamp()  # spans the EU DST change
MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "mystery-model"]
KINDS = ("input", "output", "cache_read", "cache_creation")


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


costs = st.one_of(st.none(), st.just(0.0), st.floats(min_value=1e-6, max_value=50, allow_nan=False))
small = st.integers(min_value=0, max_value=5000)


@st.composite
def part(draw: Any) -> dict[str, Any]:
    c = draw(costs)
    return {
        **{k: draw(small) for k in KINDS},
        "cost_usd": c,
        "cost_source": draw(st.sampled_from(["claude", "estimate"])) if c is not None else "unpriced",
    }


@st.composite
def record(draw: Any, i: int) -> dict[str, Any]:
    models = draw(st.dictionaries(st.sampled_from(MODELS), part(), max_size=2))
    tokens = {k: draw(small) for k in KINDS}
    if models and draw(st.booleans()):  # usually the parts add up to the record's totals
        tokens = {k: sum(m[k] for m in models.values()) for k in KINDS}
    cost = draw(costs)
    source = draw(st.sampled_from(["claude", "estimate", "unpriced"])) if cost is not None else "unpriced"
    offset = draw(st.floats(min_value=0, max_value=6 * 86400, allow_nan=False))
    ms = draw(st.integers(min_value=0, max_value=999))
    rec: dict[str, Any] = {
        "v": 1,
        "id": f"R{i:05d}" + draw(st.sampled_from(["A", "B"])),
        "started_at": _iso(int(BASE + offset) + ms / 1000),
        "mode": draw(st.sampled_from(["non-interactive", "hybrid", "imported"])),
        "status": draw(st.sampled_from(["success", "error"])),
        "model": draw(st.sampled_from([*MODELS, None])),
        "tokens": tokens,
        "cost_usd": cost,
        "cost_source": source,
        "models": models,
        "project": draw(st.sampled_from(["api", "web", None])),
        "git": {"branch": draw(st.sampled_from(["main", "dev", None]))},
        "ci": draw(st.sampled_from([None, {"job": "review"}, {"job": "fix"}])),
        "tags": draw(
            st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["a", "b"]), max_size=2)
        ),
        "session_id": draw(st.sampled_from([None, "s1", "s2", "s3", "s4"])),
    }
    if i and draw(st.integers(0, 4)) == 0:
        rec["supersedes"] = f"R{draw(st.integers(0, i - 1)):05d}" + draw(st.sampled_from(["A", "B"]))
    return rec


@st.composite
def ledgers(draw: Any, max_size: int = 30) -> list[dict[str, Any]]:
    n = draw(st.integers(min_value=0, max_value=max_size))
    return [draw(record(i)) for i in range(n)]


def write(path: Path, records: list[dict[str, Any]], *, garbage: bool = False) -> None:
    with open(path, "ab") as fh:
        for i, rec in enumerate(records):
            fh.write(orjson.dumps(rec) + b"\n")
            if garbage and i == 1:
                fh.write(b'{"torn": \n')


# -- brute force ------------------------------------------------------------------------------------
def folded(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The README's fold, plainly: an id counts once (its first line); a record named in the
    `supersedes` of a record with a greater id is replaced; imports of sessions that a record of
    another mode holds don't count."""
    ids = {r["id"] for r in records}
    gone = set()
    for r in records:
        t = r.get("supersedes")
        if isinstance(t, str) and t and t in ids and r["id"] > t:
            gone.add(t)
    tracked = {r["session_id"] for r in records if r.get("mode") != "imported" and r.get("session_id")}
    out, seen = [], set()
    for r in records:
        if r["id"] in seen:
            continue
        seen.add(r["id"])
        if r["id"] in gone or (r.get("mode") == "imported" and r.get("session_id") in tracked):
            continue
        out.append(r)
    return out


def pico(cost: Any) -> Fraction:
    """A cost as the engine takes it: its decimal text rounded half away from zero to 1e-12 USD."""
    return Fraction(Decimal(repr(cost)).quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP))


def _priced(cost: Any, source: Any) -> bool:
    return source != "unpriced" and isinstance(cost, (int, float))


def pieces(rec: dict[str, Any], by_model: bool) -> list[tuple[str, bool, dict[str, int], Fraction, int]]:
    """(model, priced, tokens, cost, runs) per counted piece of a record."""
    rec_priced = _priced(rec.get("cost_usd"), rec.get("cost_source"))
    rec_cost = pico(rec["cost_usd"]) if rec_priced else Fraction(0)
    main = rec.get("model") or "(unknown)"
    models = rec.get("models") or {}
    if not by_model or not models:
        return [(main, rec_priced, dict(rec["tokens"]), rec_cost, 2)]
    out = []
    main_i = next((i for i, m in enumerate(models) if m == main), 0)
    for i, (m, p) in enumerate(models.items()):
        pp = _priced(p.get("cost_usd"), p.get("cost_source"))
        toks = {k: p[k] for k in KINDS}
        cost = pico(p["cost_usd"]) if pp else Fraction(0)
        if i == main_i:
            for k in KINDS:
                toks[k] += rec["tokens"][k] - sum(q[k] for q in models.values())
            if rec_priced:
                cost += rec_cost - sum(
                    (
                        pico(q["cost_usd"])
                        for q in models.values()
                        if _priced(q.get("cost_usd"), q.get("cost_source"))
                    ),
                    Fraction(0),
                )
        out.append((m, pp, toks, cost, 2 if i == main_i else 1))  # 2 marks the main piece
    return out


def brute(
    records: list[dict[str, Any]],
    group_by: tuple[str, ...],
    tz: tzinfo,
    *,
    since: float | None = None,
    until: float | None = None,
    project: str | None = None,
    model: str | None = None,
    tag: tuple[str, str] | None = None,
) -> dict[tuple[bool, tuple[str, ...]], list[Any]]:
    """{(priced, group key): [runs, input, output, cache_read, cache_creation, cost]} plus the totals
    under the key (priced, ("__total__",))."""
    by_model = "model" in group_by or model is not None
    out: dict[tuple[bool, tuple[str, ...]], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, Fraction(0)])
    for rec in folded(records):
        if rec.get("started_at") is None:  # no readable start: in no report (the fold still saw it)
            continue
        ts = datetime.fromisoformat(rec["started_at"].replace("Z", "+00:00")).timestamp()
        if (since is not None and ts < since) or (until is not None and ts >= until):
            continue
        if project is not None and rec.get("project") != project:
            continue
        if tag is not None and (rec.get("tags") or {}).get(tag[0]) != tag[1]:
            continue
        day = datetime.fromtimestamp(ts, tz).date()
        for m, priced, toks, cost, runs in pieces(rec, by_model):
            if model is not None and model not in m.lower():
                continue
            key = []
            for g in group_by:
                if g == "day":
                    key.append(day.isoformat())
                elif g == "week":
                    key.append((day - timedelta(days=day.weekday())).isoformat())
                elif g == "month":
                    key.append(day.isoformat()[:7])
                elif g == "model":
                    key.append(m)
                elif g == "project":
                    key.append(rec.get("project") or "(none)")
                elif g == "branch":
                    key.append((rec.get("git") or {}).get("branch") or "(none)")
                elif g == "status":
                    key.append(rec.get("status") or "(none)")
                elif g == "mode":
                    key.append(rec.get("mode") or "(none)")
                elif g == "ci-job":
                    key.append((rec.get("ci") or {}).get("job") or "(none)")
                elif g == "session":
                    key.append(rec.get("session_id") or "(none)")
                elif g.startswith("tag:"):
                    key.append((rec.get("tags") or {}).get(g[4:]) or "(none)")
            for k in (tuple(key), ("__total__",)):
                acc = out[(priced, k)]
                # Rows count every piece; the totals count a record once (on its main piece),
                # except under a model filter, where they count the matching pieces.
                is_total = k == ("__total__",)
                acc[0] += 1 if (not is_total or model is not None or runs == 2 or not by_model) else 0
                for j, kind in enumerate(KINDS, 1):
                    acc[j] += toks[kind]
                acc[5] += cost
    return dict(out)


def usd(x: Fraction) -> Decimal:
    return (Decimal(x.numerator) / Decimal(x.denominator)).quantize(
        Decimal("1e-12"), rounding=ROUND_HALF_EVEN
    )


def as_table(report: Any) -> dict[tuple[bool, tuple[str, ...]], list[Any]]:
    """The real report in the brute force's shape (costs compared at 1e-12 USD)."""
    out: dict[tuple[bool, tuple[str, ...]], list[Any]] = {}

    def put(priced: bool, key: tuple[str, ...], t: Any) -> None:
        # Unpriced usage is shown without a cost: only its runs and tokens are compared.
        vals = [t.runs, t.input, t.output, t.cache_read, t.cache_creation, t.cost if priced else 0]
        if any(vals):
            out[(priced, key)] = vals

    for row in report.rows:
        put(True, row.key, row.priced)
        put(False, row.key, row.unpriced)
    put(True, ("__total__",), report.total)
    put(False, ("__total__",), report.unpriced_total)
    return out


def normalised(
    b: dict[tuple[bool, tuple[str, ...]], list[Any]],
) -> dict[tuple[bool, tuple[str, ...]], list[Any]]:
    out = {}
    for k, v in b.items():
        vals = [*v[:5], usd(v[5]) if k[0] else 0]
        if any(vals):
            out[k] = vals
    return out


def day_start(d: date, tz: tzinfo) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()
