"""Property tests: ledger operations keep ids unique and exact; parsing never raises."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.ledger import store
from claude_run.ledger.maintenance import merge, prune, reset
from claude_run.ledger.rotation import RotationPolicy, rotate_locked
from claude_run.ledger.verify import classify, repair, verify
from support.ledger_admin import make_record, write_lines

UTC = dt.timezone.utc
POOL = [f"m{n}" for n in range(12)]  # ids merge sources draw from


@dataclass(frozen=True)
class Append:
    days: tuple[int, ...]
    supersede: tuple[int | None, ...]  # index into known ids, or none


@dataclass(frozen=True)
class Merge:
    sources: tuple[
        tuple[tuple[int, int, int | None, bool], ...], ...
    ]  # (pool index, day, supersede, garbage)


@dataclass(frozen=True)
class Prune:
    day: int


@dataclass(frozen=True)
class Rotate:
    pass


@dataclass(frozen=True)
class Garbage:
    terminated: bool  # a torn tail (a killed writer) or a junk line followed by a newline


@dataclass(frozen=True)
class Repair:
    pass


@dataclass(frozen=True)
class Reset:
    pass


def _day(d: int) -> str:
    return f"2026-01-{d:02d}T00:00:00.000Z"


appends = st.builds(
    lambda pairs: Append(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)),
    st.lists(st.tuples(st.integers(1, 28), st.none() | st.integers(0, 40)), min_size=1, max_size=4),
)
merges = st.builds(
    lambda srcs: Merge(tuple(tuple(s) for s in srcs)),
    st.lists(
        st.lists(
            st.tuples(
                st.integers(0, len(POOL) - 1),
                st.integers(1, 28),
                st.none() | st.integers(0, 40),
                st.booleans(),
            ),
            max_size=5,
        ),
        min_size=1,
        max_size=3,
    ),
)
ops = st.lists(
    st.one_of(
        appends,
        merges,
        st.builds(Prune, st.integers(1, 29)),
        st.just(Rotate()),
        st.builds(Garbage, st.booleans()),
        st.just(Repair()),
        st.just(Reset()),
    ),
    min_size=3,
    max_size=20,
)


class Model:
    """What the ledger should contain: id -> the id it supersedes (or None) and its day."""

    def __init__(self) -> None:
        self.recs: dict[str, tuple[int, str | None]] = {}
        self.known: list[str] = []  # every id ever used, for supersede targets

    def target(self, index: int | None) -> str | None:
        if index is None or not self.known:
            return None
        return self.known[index % len(self.known)]

    def prune(self, day: int) -> None:
        drop = {rid for rid, (d, _) in self.recs.items() if d < day}
        frontier = [self.recs[rid][1] for rid in drop]
        while frontier:
            rid = frontier.pop()
            if rid is None or rid in drop or rid not in self.recs:
                continue
            drop.add(rid)
            frontier.append(self.recs[rid][1])
        for rid in drop:
            del self.recs[rid]


def _apply(ledger: Path, tmp: Path, model: Model, op: object, counter: list[int]) -> None:
    policy = RotationPolicy(max_bytes=700)
    if isinstance(op, Append):
        for day, sup in zip(op.days, op.supersede, strict=True):
            rid = f"a{counter[0]}"
            counter[0] += 1
            target = model.target(sup)
            store.append(ledger, make_record(rid, started_at=_day(day), supersedes=target), policy=policy)
            model.recs[rid] = (day, target)
            model.known.append(rid)
    elif isinstance(op, Merge):
        paths = []
        incoming: dict[str, tuple[int, str | None]] = {}
        for n, source in enumerate(op.sources):
            path = tmp / f"src{counter[0]}-{n}.jsonl"
            counter[0] += 1
            path.write_bytes(b"")
            for pool, day, sup, garbage in source:
                rid = POOL[pool]
                target = model.target(sup)
                if garbage:
                    with open(path, "ab") as fh:
                        fh.write(b'{"v":1,"id":"' + rid.encode() + b'" torn\n')
                    continue
                write_lines(path, [make_record(rid, started_at=_day(day), supersedes=target)])
                incoming.setdefault(rid, (day, target))
            paths.append(path)
        merge(ledger, paths, policy=policy)
        assert merge(ledger, paths, policy=policy).added == 0  # idempotent
        for rid, value in incoming.items():
            if rid not in model.recs:
                model.recs[rid] = value
                model.known.append(rid)
    elif isinstance(op, Prune):
        prune(
            ledger,
            dt.datetime(2026, 1, op.day, tzinfo=UTC) if op.day <= 28 else dt.datetime(2026, 2, 1, tzinfo=UTC),
        )
        model.prune(op.day if op.day <= 28 else 32)
    elif isinstance(op, Rotate):
        with store.locked(ledger):
            rotate_locked(ledger)
    elif isinstance(op, Garbage):
        ledger.parent.mkdir(parents=True, exist_ok=True)
        with open(ledger, "ab") as fh:
            fh.write(b'{"v":1,"id":"torn-' + str(counter[0]).encode() + (b"\n" if op.terminated else b""))
    elif isinstance(op, Repair):
        repair(ledger)
        assert verify(ledger).ok
    else:
        reset(ledger)
        model.recs.clear()


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_any_sequence_of_operations_leaves_unique_expected_ids(sequence: list[object]) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ledger = tmp / "l" / "ledger.jsonl"
        model = Model()
        counter = [0]
        for op in sequence:
            _apply(ledger, tmp, model, op, counter)
            ids = [rec["id"] for rec in store.iter_records(ledger)]
            assert len(ids) == len(set(ids))
            assert set(ids) == set(model.recs)
        repair(ledger)
        assert verify(ledger).ok
        assert {rec["id"] for rec in store.iter_records(ledger)} == set(model.recs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_parse_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    for line in [data, *data.split(b"\n")]:
        rec = store.parse_record(line)
        assert rec is None or isinstance(rec["id"], str)
        classify(line, True)
        classify(line, False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["v", "id", "tokens", "models", "tags", "git", "cost_usd", "x"]), json_values
    )
)
def test_parse_never_raises_on_odd_json_objects(obj: dict[str, Any]) -> None:
    try:
        line = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        return
    rec = store.parse_record(line)
    if rec is not None:
        assert isinstance(rec["tokens"], dict) and isinstance(rec["tags"], dict)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=5000))
def test_readers_and_verify_survive_any_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        ledger = Path(tmp_name) / "ledger.jsonl"
        ledger.write_bytes(data)
        stats = store.ReadStats()
        records = list(store.iter_records(ledger, stats))
        result = verify(ledger)
        assert result.records == len(records)
        with open(ledger, "rb") as fh:
            pieces = [line for _, line, _ in store.iter_raw(fh)]
        assert b"\n".join(pieces) + (b"\n" if data.endswith(b"\n") else b"") == data
