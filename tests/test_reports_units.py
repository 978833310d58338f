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

from claude_run.reports import scan, units
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


@settings(max_examples=300, deadline=None)
@given(
    sid=st.one_of(
        st.text(max_size=40),
        # UUID-shaped: dashes where a UUID has them, hex digits mixed with what int(x, 16) also takes
        st.tuples(
            *(st.text(alphabet="0123456789abcdefAF+-_ x", min_size=n, max_size=n) for n in (8, 4, 22))
        ).map(lambda p: f"{p[0]}-{p[1]}-{p[2]}"),
    )
)
def test_a_session_hash_is_always_64_unsigned_bits(sid: str) -> None:
    h = units.session_hash(sid)
    assert 0 <= h < 1 << 64
    digits = sid[:8] + sid[9:13] + sid[14:18]
    if len(sid) == 36 and sid[8] == sid[13] == "-" and all(c in "0123456789abcdefABCDEF" for c in digits):
        assert h == int(digits, 16)  # a UUID's own leading digits


def test_pico_rounding_never_overflows_the_decimal_context() -> None:
    from decimal import Decimal

    from claude_run.reports.formats import pico

    assert pico(Decimal("1e60")) == Decimal("1e60")
    assert str(pico(Decimal("0.1234567890123456"))) == "0.123456789012"
    assert pico(None) is None


def _dump(rec: dict[str, Any]) -> bytes:
    """orjson's line, or for integers past 64 bits the stdlib's (integers as written, NaN as NaN)."""
    try:
        return orjson.dumps(rec)
    except TypeError:
        import json

        return json.dumps(rec, separators=(",", ":")).encode()


junk = st.dictionaries(
    st.sampled_from(["task_sha256", "git_extra", "notes", "cost_usd", "v", "id"]),
    st.one_of(odd, st.text(max_size=6), st.dictionaries(st.text(max_size=2), odd, max_size=2)),
    max_size=2,
)
ledger_record = st.builds(
    lambda base, v, rid, started, sid, sup, mode, extra: {
        **({"v": v} if v is not None else {}),
        **({"id": rid} if rid is not None else {}),
        "started_at": started,
        **base,
        **({"session_id": sid} if sid is not None else {}),
        **({"supersedes": sup} if sup is not None else {}),
        **({"mode": mode} if mode is not None else {}),
        **extra,
    },
    record,
    st.one_of(st.just(1), st.just(2), odd),
    st.one_of(st.sampled_from(["a", "b", "c", "w"]), odd),
    st.one_of(st.sampled_from(["2025-03-30T01:30:00.000Z", "2025-03-31T23:59:59.999Z"]), stamps, odd),
    st.one_of(st.just("5e8766ed-88da-4401-ab40-13ef254b0c4e"), st.just("s1"), odd),
    st.one_of(st.just("a"), odd),
    st.one_of(st.sampled_from(["non-interactive", "imported"]), odd),
    junk,
)
# Well-typed records, which the fast path reads itself (the odd ones above mostly fall back).
clean_name = st.one_of(st.sampled_from(["m1", "m2", "(unknown)", ""]), st.text(alphabet="abxy-", max_size=3))
maybe_name = st.one_of(st.none(), clean_name)
clean_count = st.integers(0, 10**9)
clean_cost = st.one_of(st.none(), st.floats(0, 100, allow_nan=False), st.integers(0, 5))
clean_source = st.sampled_from([None, "claude", "estimate", "unpriced"])
_ABSENT = object()


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not _ABSENT}


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # fixed_dictionaries(optional=...) seldom draws several optional keys together; this draws each
    # key's presence on its own, so combinations (a part's cost *and* its source) come up often.
    return st.one_of(st.just(_ABSENT), strategy)


clean_part = st.builds(
    _present,
    input=_maybe(clean_count),
    output=_maybe(clean_count),
    cache_read=_maybe(clean_count),
    cache_creation=_maybe(clean_count),
    cost_usd=_maybe(clean_cost),
    cost_source=_maybe(clean_source),
)
clean_record = st.builds(
    _present,
    v=st.sampled_from([1, 2]),
    id=st.sampled_from(["a", "b", "c", "d", "e", "f", "w"]),
    started_at=st.sampled_from(["2025-03-30T01:30:00.000Z", "2025-03-31T23:59:59.999Z"]),
    session_id=_maybe(st.sampled_from(["5e8766ed-88da-4401-ab40-13ef254b0c4e", "s1", ""])),
    supersedes=_maybe(st.sampled_from([None, None, None, "", "a"])),
    mode=_maybe(st.sampled_from([None, "", "non-interactive", "non-interactive", "hybrid", "imported"])),
    model=_maybe(maybe_name),
    models=_maybe(st.one_of(st.none(), st.dictionaries(clean_name, clean_part, max_size=3))),
    tokens=_maybe(st.one_of(st.none(), clean_part)),
    cost_usd=_maybe(clean_cost),
    cost_source=_maybe(clean_source),
    project=_maybe(maybe_name),
    status=_maybe(maybe_name),
    git=_maybe(st.one_of(st.none(), st.builds(_present, branch=_maybe(maybe_name)))),
    ci=_maybe(st.one_of(st.none(), st.builds(_present, job=_maybe(maybe_name)))),
    tags=_maybe(st.one_of(st.none(), st.dictionaries(st.sampled_from(["team", "env", "pr"]), clean_name))),
    task_sha256=_maybe(st.text(max_size=3)),
)
clean_line = clean_record.map(orjson.dumps)
raw_lines = st.sampled_from(
    [
        b"",
        b"   ",
        b"garbage",
        b"[1,2]",
        b'{"v":1,"id":"x","started_at":"2025-03-30T01:30:00.000Z","junk":"\xff"}',
        b'{"v":1,"id":"x","started_at":"2025-03-30T01:30:00.000Z","tags":{"team":"\xc3\xa9"}}',
        b'{"v":1,"id":"x","started_at":"2025-03-30T01:30:00.000Z","tokens":{"input":18446744073709551616}}',
        b'{"v":1,"id":"x","v":2,"id":"y","started_at":"2025-03-30T01:30:00.000Z","tokens":{"input":3}}',
        b'{"v": 1, "id": "z", "started_at": "2025-03-30T01:30:00.000Z", "tags": {"env": "ci", "team": "a"}}',
        b'{"v":1,"id":"t","started_at":"2025-03-30T01:30:00.000Z","tags":{"team":"a","env":"ci"},"models":{}}',
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.one_of(clean_line, clean_line, clean_line, ledger_record.map(_dump), raw_lines),
        min_size=1,
        max_size=25,
    ),
    watch=st.sampled_from([frozenset(), frozenset({"a", "w"})]),
    dropped=st.sampled_from([frozenset(), frozenset({"pr"})]),
    cap=st.sampled_from([256, 1]),
)
def test_the_typed_fast_path_reads_every_line_as_the_general_path_does(
    tmp_path_factory: Any, lines: list[bytes], watch: frozenset[str], dropped: frozenset[str], cap: int
) -> None:
    """msgspec's typed decode (reports/fastrec.py) and the orjson path give the same rollup part:
    cuboids, side records, sessions, time blocks, counts of bad, future and undated lines."""
    from claude_run.reports import ingest

    path = Path(tmp_path_factory.mktemp("ledger")) / "ledger.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    chunk = scan.Chunk(0, str(path), 0, path.stat().st_size)
    saved = ingest.TAG_CAP
    ingest.TAG_CAP = cap  # a cap of 1 drops tag keys midway, which must reset the tag memo
    try:
        fast = ingest._ingest(chunk, timezone.utc, watch, dropped, False, fast=True)
        general = ingest._ingest(chunk, timezone.utc, watch, dropped, False, fast=False)
    finally:
        ingest.TAG_CAP = saved
    for name in ("cubes", "blocks", "lines", "records", "bad", "bad_lines", "future", "undated"):
        assert getattr(fast, name) == getattr(general, name), name
    assert list(fast.sessions) == list(general.sessions)
    assert [s.to_json() for s in fast.side] == [s.to_json() for s in general.side]
    assert fast.tag_values == general.tag_values and fast.dropped == general.dropped


def _random_record(rng: Any) -> dict[str, Any]:
    """A well-typed record with every optional field drawn on its own (present, null, empty, odd)."""

    def pick(*choices: Any) -> Any:
        return rng.choice(choices)

    def name() -> Any:
        return pick(None, "", "m1", "m2", "(unknown)", "ax", "b-")

    def cost() -> Any:
        return pick(None, 0, 2, 0.0, 1e-7, 0.123456789, 3.5)

    def part() -> dict[str, Any]:
        fields = {
            "input": rng.randrange(10**6),
            "output": rng.randrange(10**6),
            "cache_read": rng.randrange(10**6),
            "cache_creation": rng.randrange(10**6),
            "cost_usd": cost(),
            "cost_source": pick(None, "claude", "estimate", "unpriced"),
        }
        return {k: v for k, v in fields.items() if rng.random() < 0.8}

    fields: dict[str, Any] = {
        "session_id": pick("5e8766ed-88da-4401-ab40-13ef254b0c4e", "s1", "", None),
        "supersedes": pick(None, None, None, None, "", "a"),
        "mode": pick(None, "", "non-interactive", "hybrid", "hybrid", "imported"),
        "model": name(),
        "models": pick(
            None,
            {},
            *({pick("", "m1", "m2", "(unknown)", "ax"): part() for _ in range(n)} for n in (1, 1, 2, 3)),
        ),
        "tokens": pick(None, part()),
        "cost_usd": cost(),
        "cost_source": pick(None, "claude", "estimate", "unpriced"),
        "project": name(),
        "status": name(),
        "git": pick(None, {}, {"branch": name(), "commit": "abc"}),
        "ci": pick(None, {}, {"job": name()}),
        "tags": pick(
            None,
            {},
            {"team": name() or "t"},
            {"team": pick("a", "b", "c"), "env": pick("ci", "dev")},
            {"pr": 7},
        ),
        "task_sha256": "e6bf",
    }
    rec = {k: v for k, v in fields.items() if rng.random() < 0.8}
    return {"v": pick(1, 1, 2), "id": pick("a", "b", "c", "d", "e", "w"), "started_at": pick(*STAMPS), **rec}


STAMPS = ("2025-03-30T01:30:00.000Z", "2025-03-31T23:59:59.999Z", "2025-03-30T01:30:00Z", "garbage")


def test_the_typed_fast_path_agrees_on_large_random_ledgers(tmp_path: Path) -> None:
    """The same comparison as above on thousands of well-typed records (the fast path's own ground),
    with every tag cap, so each combination of optional fields comes up many times."""
    import random

    from claude_run.reports import ingest

    rng = random.Random(20261123)
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"".join(orjson.dumps(_random_record(rng)) + b"\n" for _ in range(6000)))
    chunk = scan.Chunk(0, str(path), 0, path.stat().st_size)
    saved = ingest.TAG_CAP
    try:
        for cap in (256, 2):
            ingest.TAG_CAP = cap
            fast = ingest._ingest(chunk, timezone.utc, frozenset({"w"}), frozenset(), False, fast=True)
            general = ingest._ingest(chunk, timezone.utc, frozenset({"w"}), frozenset(), False, fast=False)
            for name in ("cubes", "blocks", "records", "bad", "future", "undated", "tag_values", "dropped"):
                assert getattr(fast, name) == getattr(general, name), name
            assert list(fast.sessions) == list(general.sessions)
            assert [s.to_json() for s in fast.side] == [s.to_json() for s in general.side]
    finally:
        ingest.TAG_CAP = saved
