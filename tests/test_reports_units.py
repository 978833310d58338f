"""The short paths of the per-record rules (`record_parts`, `record_dims`) and of the cold scan agree
with the general rules on any record shape, odd ones included."""

from __future__ import annotations

import math
from datetime import timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_run.reports import scan
from claude_run.reports.ingest import ingest_chunk
from claude_run.reports.timeparse import DayMapper, parse_ts
from claude_run.reports.units import FIX_BITS, record_dims, record_parts, to_usd
from support.reports_units_oracle import slow_record_dims, slow_record_parts

odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    # NaN and infinities, but finite costs stay below 1e30 USD: the old rules raised on larger ones
    # (see test_a_huge_cost_is_summed_exactly)
    st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda f: not abs(f) < float("inf") or abs(f) < 1e30
    ),
    st.text(max_size=4),
    st.just(""),
    st.lists(st.integers(), max_size=2),
)
numbers = st.one_of(st.integers(0, 10**9), st.floats(0, 100, allow_nan=False), odd)
sources = st.one_of(st.sampled_from(["claude", "estimate", "unpriced"]), odd)
names = st.one_of(st.sampled_from(["m1", "m2", "(unknown)", ""]), st.text(max_size=3))
part = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "input": numbers,
            "output": numbers,
            "cache_read": numbers,
            "cache_creation": numbers,
            "cost_usd": numbers,
            "cost_source": sources,
        },
    ),
    odd,
)
record = st.fixed_dictionaries(
    {},
    optional={
        "cost_usd": numbers,
        "cost_source": sources,
        "tokens": st.one_of(
            st.dictionaries(st.sampled_from(["input", "output", "cache_read"]), numbers), odd
        ),
        "model": st.one_of(names, odd),
        "models": st.one_of(st.dictionaries(names, part, max_size=3), odd),
        "project": st.one_of(names, odd),
        "git": st.one_of(st.fixed_dictionaries({}, optional={"branch": st.one_of(names, odd)}), odd),
        "status": st.one_of(names, odd),
        "mode": st.one_of(names, odd),
        "ci": st.one_of(st.fixed_dictionaries({}, optional={"job": st.one_of(names, odd)}), odd),
        "tags": st.one_of(
            st.dictionaries(st.sampled_from(["team", "env", "pr"]), st.one_of(names, odd)), odd
        ),
    },
)


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN-safe (a NaN cost never reaches a sum, but compare whole rows anyway)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(rec=record, dropped=st.sampled_from([frozenset(), frozenset({"pr"}), frozenset({"team", "env"})]))
def test_short_paths_agree_with_the_general_rules(rec: dict[str, Any], dropped: frozenset[str]) -> None:
    assert _same(record_parts(rec), slow_record_parts(rec))
    assert _same(record_dims(rec, dropped), slow_record_dims(rec, dropped))


def test_a_huge_cost_is_summed_exactly() -> None:
    """A finite cost too large to scale by 2^100 as a float is shifted instead (it used to raise)."""
    for cost in (1.4e278, 1.7976931348623157e308, -1e300):
        rec = {"cost_usd": cost, "cost_source": "claude", "tokens": {"input": 1}}
        (row,) = record_parts(rec)
        assert row[9] == int(cost) << FIX_BITS
        assert to_usd(row[9]) == Decimal(int(cost))


stamps = st.one_of(
    st.builds(
        lambda h, m, s, ms: f"2025-03-30T{h:02d}:{m}:{s}.{ms}Z",
        st.integers(0, 23),
        st.sampled_from(["00", "07", "59", "60", "99", "5x", " 5", "-1", "+1"]),
        st.sampled_from(["00", "30", "59", "60", "-0", "x"]),
        st.sampled_from(["000", "123", "999", "-01", "1e3", " 12"]),
    ),
    st.sampled_from(["2025-03-30T01:30:00Z", "2025-03-30T01:30:00.000+02:00", "garbage", ""]),
)


@settings(max_examples=60, deadline=None)
@given(stamps=st.lists(stamps, min_size=1, max_size=30))
def test_memoised_hours_give_what_parse_ts_gives(tmp_path_factory: Any, stamps: list[str]) -> None:
    """The scan's hour memo (a fast path for our own timestamps) never disagrees with parse_ts,
    and an odd timestamp after a well-formed one of the same hour is neither misread nor fatal."""
    tz = timezone.utc
    path = Path(tmp_path_factory.mktemp("ledger")) / "ledger.jsonl"
    lines = [
        orjson.dumps({"v": 1, "id": f"r{i}", "started_at": s, "tokens": {"input": i + 1}})
        for i, s in enumerate([f"2025-03-30T{h:02d}:00:00.000Z" for h in range(24)] + stamps)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    part = ingest_chunk(scan.Chunk(0, str(path), 0, path.stat().st_size), tz, frozenset(), frozenset(), True)
    mapper = DayMapper(tz)
    want = []
    for line in lines:
        rec = orjson.loads(line)
        ts = parse_ts(rec["started_at"])
        if ts is not None:
            want.append((rec["tokens"]["input"], ts, mapper.day(ts)))
    got = [(u[12], u[17], u[0]) for u in part.units]
    assert got == want
    assert part.undated == len(lines) - len(want)


def test_pico_rounding_never_overflows_the_decimal_context() -> None:
    from decimal import Decimal

    from claude_run.reports.formats import pico

    assert pico(Decimal("1e60")) == Decimal("1e60")
    assert str(pico(Decimal("0.1234567890123456"))) == "0.123456789012"
    assert pico(None) is None
