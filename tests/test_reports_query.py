"""aggregate() against a brute force: groupings, filters, the fold, unpriced usage, and the rollup
(after appends, rewrites and corruption) giving the same answer as a fresh scan."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from claude_run.reports import ingest, query, rollup, scan
from claude_run.reports.filters import Filters
from claude_run.reports.timeparse import Bound
from support import reports_records as rr

GROUPINGS = [
    ("day",),
    ("model",),
    ("week", "model"),
    ("month",),
    ("project",),
    ("branch",),
    ("status",),
    ("mode",),
    ("ci-job",),
    ("tag:team",),
    ("session",),
    ("day", "tag:env"),
    ("project", "status"),
]
ZONES = [timezone.utc, ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Kolkata"), ZoneInfo("America/St_Johns")]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
def tmp() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="reports-test-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def check(ledger: Path, records: list[dict[str, Any]], group_by: tuple[str, ...], tz: Any, **kw: Any) -> None:
    f = Filters(
        since=Bound(instant=kw["since"]) if kw.get("since") is not None else None,
        until=Bound(instant=kw["until"]) if kw.get("until") is not None else None,
        projects=(kw["project"],) if kw.get("project") else (),
        model=kw.get("model"),
        tags=(kw["tag"],) if kw.get("tag") else (),
    )
    want = rr.normalised(rr.brute(records, group_by, tz, **kw))
    for save in (True, True, False):  # built (or updated), then warm from the files, then no rollup
        got = rr.as_table(query.aggregate(ledger, group_by, f, tz, save_rollup=save))
        assert got == want, (group_by, kw, save)


@FAST
@given(records=rr.ledgers(), group=st.sampled_from(GROUPINGS), tz=st.sampled_from(ZONES))
def test_groupings_match_brute_force(records: list[dict[str, Any]], group: tuple[str, ...], tz: Any) -> None:
    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        rr.write(ledger, records, garbage=True)
        check(ledger, records, group, tz)
        check(ledger, records, group, tz)  # warm: from the saved rollup


@FAST
@given(
    records=rr.ledgers(),
    group=st.sampled_from(GROUPINGS[:10]),
    since_h=st.one_of(st.none(), st.floats(0, 150)),
    span_h=st.one_of(st.none(), st.floats(1, 150)),
    project=st.sampled_from([None, "api"]),
    model=st.sampled_from([None, "opus", "sonnet"]),
    tag=st.sampled_from([None, ("team", "a")]),
    tz=st.sampled_from(ZONES),
)
def test_filters_match_brute_force(
    records: list[dict[str, Any]],
    group: tuple[str, ...],
    since_h: float | None,
    span_h: float | None,
    project: str | None,
    model: str | None,
    tag: tuple[str, str] | None,
    tz: Any,
) -> None:
    since = rr.BASE + since_h * 3600 if since_h is not None else None
    until = (since or rr.BASE) + span_h * 3600 if span_h is not None else None
    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        rr.write(ledger, records)
        check(ledger, records, group, tz, since=since, until=until, project=project, model=model, tag=tag)


@FAST
@given(first=rr.ledgers(20), more=st.lists(rr.ledgers(8), min_size=1, max_size=3), big=st.booleans())
def test_rollup_after_appends_matches_scan(
    first: list[dict[str, Any]], more: list[list[dict[str, Any]]], big: bool
) -> None:
    """Appends are read as a tail; `big` forces the merge-and-save path instead of the in-memory one."""
    old, old_layers = rollup.RAW_TAIL_MAX, rollup.MAX_LAYERS
    rollup.RAW_TAIL_MAX = 0 if big else old
    rollup.MAX_LAYERS = 2  # every few appends compacts the layers
    try:
        with tempfile.TemporaryDirectory() as d:
            ledger = Path(d) / "ledger.jsonl"
            rr.write(ledger, first)
            records = list(first)
            check(ledger, records, ("day",), timezone.utc)
            n = len(records)
            for batch in more:
                # fresh ids that keep the ledger's id space (supersedes may name earlier records)
                renamed = [dict(r, id=f"T{n + i:05d}") for i, r in enumerate(batch)]
                n += len(batch)
                rr.write(ledger, renamed)
                records += renamed
                check(ledger, records, ("model",), timezone.utc)
                check(ledger, records, ("tag:team",), timezone.utc)
    finally:
        rollup.RAW_TAIL_MAX, rollup.MAX_LAYERS = old, old_layers


def _records(n: int, start: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        out.append(
            {
                "v": 1,
                "id": f"X{i:05d}",
                "started_at": rr._iso(rr.BASE + i * 977),
                "mode": "imported" if i % 7 == 3 else "non-interactive",
                "status": "success",
                "model": "claude-sonnet-4-5",
                "tokens": {"input": i, "output": 2 * i, "cache_read": 3 * i, "cache_creation": 1},
                "cost_usd": 0.001 * (i % 5) if i % 9 else None,
                "cost_source": "claude" if i % 9 else "unpriced",
                "models": {},
                "project": f"p{i % 3}",
                "tags": {"team": f"t{i % 4}", "ticket": f"T-{i}"},
                "session_id": f"s{i % 11}",
                **({"supersedes": f"X{i - 5:05d}"} if i % 13 == 12 else {}),
            }
        )
    return out


def test_rewrites_and_corruption_rebuild(tmp: Path) -> None:
    ledger = tmp / "ledger.jsonl"
    records = _records(60)
    rr.write(ledger, records)
    check(ledger, records, ("day",), timezone.utc)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "rollup"
    # Rewritten in place with the same size (a repair that kept the length): the edge hashes differ.
    data = ledger.read_bytes()
    records[-1]["project"] = "pX"
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    with open(ledger, "r+b") as fh:
        fh.write(body)
        fh.truncate()
    assert len(body) == len(data)
    check(ledger, records, ("project",), timezone.utc)
    # Replaced by rename (prune): a new inode.
    records = records[10:]
    tmpfile = tmp / "new.jsonl"
    rr.write(tmpfile, records)
    os.replace(tmpfile, ledger)
    check(ledger, records, ("day",), timezone.utc)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "rollup"
    # Truncated below what the rollup covered.
    records = records[:20]
    ledger.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    check(ledger, records, ("day",), timezone.utc)
    # Corrupt rollup files: garbage meta, a missing cuboid, a pointer to nowhere.
    index = rollup.index_dir(ledger)

    def meta() -> Path:
        return index / ("UTC." + (index / "UTC.current").read_text() + ".meta.json")

    meta().write_bytes(b"\x00garbage")
    check(ledger, records, ("day",), timezone.utc)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "rollup"
    raw = orjson.loads(meta().read_bytes())
    for layer in raw["layers"]:
        for name in layer.values():
            (index / name).write_bytes(b"[[1,2")
    (index / raw["side_file"]).unlink()
    check(ledger, records, ("day",), timezone.utc)
    check(ledger, records, ("tag:team",), timezone.utc)
    shutil.rmtree(index)
    (index).mkdir()
    (index / "UTC.current").write_text("nowhere")
    check(ledger, records, ("day",), timezone.utc)


def test_generation_change_rebuilds(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from claude_run.ledger import store

    ledger = tmp / "ledger.jsonl"
    records = _records(30)
    rr.write(ledger, records)
    gen = ["1"]
    monkeypatch.setattr(store, "generation", lambda _l: gen[0], raising=False)
    query.aggregate(ledger, ("day",), None, timezone.utc)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "rollup"
    gen[0] = "2"
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "rebuilt"


def test_varied_tag_keys_fall_back_to_a_scan(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "TAG_CAP", 5)
    monkeypatch.setattr(rollup, "TAG_CAP", 5)
    ledger = tmp / "ledger.jsonl"
    records = _records(80)
    rr.write(ledger, records)
    rep = query.aggregate(ledger, ("tag:ticket",), None, timezone.utc)
    assert rep.source == "scan"
    check(ledger, records, ("tag:ticket",), timezone.utc)
    check(ledger, records, ("tag:team",), timezone.utc)
    assert query.aggregate(ledger, ("tag:team",), None, timezone.utc).source == "rollup"


def test_parallel_build_matches(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes over byte ranges, and rotated segments read as one ledger."""
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setenv("CLAUDE_RUN_REPORT_WORKERS", "2")
    ledger = tmp / "ledger.jsonl"
    records = _records(300)
    rr.write(tmp / "ledger.20250101T000000Z.jsonl", records[:100])
    rr.write(ledger, records[100:])
    check(ledger, records, ("day",), timezone.utc)
    check(ledger, records, ("session",), timezone.utc)
    check(ledger, records, ("project", "model"), timezone.utc)


def test_supersede_of_a_summed_record_moves_it(tmp: Path) -> None:
    ledger = tmp / "ledger.jsonl"
    records = _records(20)
    for r in records:
        r.pop("supersedes", None)
        r["mode"] = "non-interactive"
    rr.write(ledger, records)
    check(ledger, records, ("day",), timezone.utc)
    newer = dict(records[3], id="Z0001", supersedes=records[3]["id"], mode="imported", session_id="fresh")
    rr.write(ledger, [newer])
    records.append(newer)
    check(ledger, records, ("day",), timezone.utc)
    check(ledger, records, ("project",), timezone.utc)
    assert records[3]["id"] in rollup.ensure(ledger, timezone.utc).excluded_ids()


def test_imported_session_of_a_tracked_run_is_not_counted(tmp: Path) -> None:
    ledger = tmp / "ledger.jsonl"
    base = _records(1)[0]
    tracked = dict(base, id="A1", mode="non-interactive", session_id="S", cost_usd=1.0, cost_source="claude")
    imported = dict(base, id="A2", mode="imported", session_id="S", cost_usd=5.0, cost_source="estimate")
    other = dict(base, id="A3", mode="imported", session_id="T", cost_usd=2.0, cost_source="estimate")
    rr.write(ledger, [imported, other])
    assert query.aggregate(ledger, (), None, timezone.utc).total.cost == 7
    rr.write(ledger, [tracked])  # the tracked run arrives later: the import stops counting
    assert query.aggregate(ledger, (), None, timezone.utc).total.cost == 3


def test_unpriced_is_kept_apart(tmp: Path) -> None:
    ledger = tmp / "ledger.jsonl"
    base = _records(1)[0]
    rr.write(
        ledger,
        [
            dict(base, id="U1", cost_usd=None, cost_source="unpriced", mode="hybrid"),
            dict(base, id="U2", cost_usd=0.5, cost_source="unpriced", mode="hybrid"),
            dict(base, id="P1", cost_usd=0.25, cost_source="claude", mode="hybrid"),
        ],
    )
    rep = query.aggregate(ledger, ("day",), None, timezone.utc)
    assert rep.total.runs == 1 and str(rep.total.cost) == "0.250000000000"
    assert rep.unpriced_total.runs == 2
    assert rep.unpriced_total.input == 2 * base["tokens"]["input"]


def test_latest_and_find(tmp: Path) -> None:
    ledger = tmp / "ledger.jsonl"
    records = _records(50)
    rr.write(ledger, records)
    last = query.latest(ledger, 5, Filters(projects=("p1",)), timezone.utc)
    assert [r["id"] for r in last] == [
        r["id"] for r in records if r["project"] == "p1" and r["id"] not in {"X00033", "X00020", "X00007"}
    ][-5:]
    assert query.find(ledger, "x00042")["id"] == "X00042"
    from claude_run.errors import UsageError

    with pytest.raises(UsageError):
        query.find(ledger, "X0004")
    with pytest.raises(query.RecordNotFound):
        query.find(ledger, "Y")
