"""aggregate() against a brute force: groupings, filters, the fold, unpriced usage, and the index
(after appends, rewrites and corruption) giving the same answer as a fresh read."""

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
from claude_run.query import summary as query
from claude_run.query.filters import Filters
from claude_run.query.timeparse import Bound
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
FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
    for persist in (True, True, False):  # built (or tail-read), then warm from the index, then memory
        got = rr.as_table(query.aggregate(ledger, group_by, f, tz, persist=persist))
        assert got == want, (group_by, kw, persist)


@FAST
@given(records=rr.ledgers(), group=st.sampled_from(GROUPINGS), tz=st.sampled_from(ZONES))
def test_groupings_match_brute_force(records: list[dict[str, Any]], group: tuple[str, ...], tz: Any) -> None:
    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        rr.write(ledger, records, garbage=True)
        check(ledger, records, group, tz)  # built, then warm from the index, then from memory


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
def test_index_after_appends_matches_brute_force(
    first: list[dict[str, Any]], more: list[list[dict[str, Any]]], big: bool
) -> None:
    """Appends are read as a tail and folded with the index; `big` makes every tail a rebuild."""
    from claude_run.query import engine

    old = engine.TAIL_REBUILD_MIN_BYTES, engine.TAIL_REBUILD_FRACTION
    if big:
        engine.TAIL_REBUILD_MIN_BYTES, engine.TAIL_REBUILD_FRACTION = 0, 0.0
    try:
        with tempfile.TemporaryDirectory() as d:
            ledger = Path(d) / "ledger.jsonl"
            rr.write(ledger, first)
            records = list(first)
            check(ledger, records, ("day",), timezone.utc)
            n = len(records)
            for batch in more:
                # fresh ids after the first ones (supersedes may name earlier records)
                renamed = [dict(r, id=f"T{n + i:05d}") for i, r in enumerate(batch)]
                n += len(batch)
                rr.write(ledger, renamed)
                records += renamed
                check(ledger, records, ("model",), timezone.utc)
                check(ledger, records, ("tag:team",), timezone.utc)
    finally:
        engine.TAIL_REBUILD_MIN_BYTES, engine.TAIL_REBUILD_FRACTION = old


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
    from claude_run.query import index

    ledger = tmp / "ledger.jsonl"
    records = _records(60)
    rr.write(ledger, records)
    check(ledger, records, ("day",), timezone.utc)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "index"
    # Rewritten in place with the same size (a repair that kept the length): the edge hashes differ.
    data = ledger.read_bytes()
    records[-1]["project"] = "pX"
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    with open(ledger, "r+b") as fh:
        fh.write(body)
        fh.truncate()
    assert len(body) == len(data)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "built"
    check(ledger, records, ("project",), timezone.utc)
    # Replaced by rename (prune): a new inode.
    records = records[10:]
    tmpfile = tmp / "new.jsonl"
    rr.write(tmpfile, records)
    os.replace(tmpfile, ledger)
    check(ledger, records, ("day",), timezone.utc)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "index"
    # Truncated below what the index covered.
    records = records[:20]
    ledger.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    check(ledger, records, ("day",), timezone.utc)
    # A damaged index: garbage manifest, a garbage database file, a manifest naming nothing.
    root = index.index_dir(ledger)
    (root / index.MANIFEST).write_bytes(b"\x00garbage")
    check(ledger, records, ("day",), timezone.utc)
    manifest = index.load_manifest(ledger)
    assert manifest is not None
    (root / manifest.file).write_bytes(b"not a database")
    check(ledger, records, ("tag:team",), timezone.utc)
    shutil.rmtree(root)
    root.mkdir()
    (root / index.MANIFEST).write_bytes(orjson.dumps({"version": 1, "file": "nowhere"}))
    check(ledger, records, ("day",), timezone.utc)


def test_generation_change_rebuilds(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from claude_run.ledger import store

    ledger = tmp / "ledger.jsonl"
    records = _records(30)
    rr.write(ledger, records)
    gen = ["1"]
    monkeypatch.setattr(store, "generation", lambda _l: gen[0], raising=False)
    query.aggregate(ledger, ("day",), None, timezone.utc)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "index"
    gen[0] = "2"
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "built"


def test_many_tag_keys_and_rotated_segments(tmp: Path) -> None:
    """Every record with its own tag value, and a rotated segment read with the live file as one."""
    ledger = tmp / "ledger.jsonl"
    records = _records(300)
    rr.write(tmp / "ledger.20250101T000000Z.jsonl", records[:100])
    rr.write(ledger, records[100:])
    check(ledger, records, ("day",), timezone.utc)
    check(ledger, records, ("session",), timezone.utc)
    check(ledger, records, ("project", "model"), timezone.utc)
    check(ledger, records, ("tag:ticket",), timezone.utc)


def test_large_ledger_is_answered_by_a_lean_read(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the inline size the first report reads only what it needs and builds no index inline."""
    from claude_run.query import engine

    monkeypatch.setattr(engine, "INLINE_BUILD_BYTES", 0)
    spawned: list[Path] = []
    monkeypatch.setattr(engine, "_spawn_builder", spawned.append)
    ledger = tmp / "ledger.jsonl"
    records = _records(80)
    rr.write(ledger, records)
    for group in (("day",), ("model",), ("tag:team", "project")):
        rep = query.aggregate(ledger, group, None, timezone.utc)
        assert rep.source == "memory"
        assert rr.as_table(rep) == rr.normalised(rr.brute(records, group, timezone.utc))
    assert spawned == [ledger] * 3
    assert engine.build_index(ledger)
    assert query.aggregate(ledger, ("day",), None, timezone.utc).source == "index"


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
    from claude_run.query.engine import opened

    with opened(ledger) as eng:
        row = eng.con.execute("SELECT counted FROM all_records WHERE id = ?", [records[3]["id"]]).fetchone()
    assert row == (False,)


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
    from claude_run.query import records as recs

    last = recs.latest(ledger, 5, Filters(projects=("p1",)), timezone.utc)
    assert [r["id"] for r in last] == [r["id"] for r in rr.folded(records) if r["project"] == "p1"][-5:]
    assert recs.find(ledger, "x00042")["id"] == "X00042"
    from claude_run.errors import UsageError

    with pytest.raises(UsageError):
        recs.find(ledger, "X0004")
    with pytest.raises(recs.RecordNotFound):
        recs.find(ledger, "Y")
    # An id that is a prefix of others is still found by itself.
    rr.write(ledger, [dict(records[0], id="X0004")])
    assert recs.find(ledger, "X0004")["id"] == "X0004"


def test_the_last_half_second_of_a_day_is_that_day(tmp: Path) -> None:
    """Buckets floor the start (a rounded epoch once put 23:59:59.5 on the next day)."""
    ledger = tmp / "ledger.jsonl"
    late = dict(_records(1)[0], id="L1", started_at="2025-03-30T23:59:59.500Z")
    rr.write(ledger, [late])
    for tz in (timezone.utc, ZoneInfo("Europe/Paris")):
        check(ledger, [late], ("day",), tz)


def test_reports_at_once_while_runs_append(tmp: Path) -> None:
    """Four reports started together on a ledger with no index (one builds it, the others answer
    from memory or wait for nothing), while records are appended: every one answers, none fails,
    and each total is one the ledger really had."""
    import subprocess
    import sys

    from claude_run.ledger import store

    ledger = tmp / "ledger.jsonl"
    records = _records(400)
    for r in records:
        r.pop("supersedes", None)
        r["mode"] = "non-interactive"
    rr.write(ledger, records[:300])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    argv = [sys.executable, "-m", "claude_run", "ledger", "summary", "--format", "json", "--tz", "UTC"]
    procs = [
        subprocess.Popen(
            [*argv, "--ledger", str(ledger)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    for r in records[300:]:
        store.append(ledger, r)
    runs = set()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        runs.add(orjson.loads(out)["total"]["runs"] + orjson.loads(out)["unpriced"]["total"]["runs"])
    assert runs <= set(range(300, 401))
    final = query.aggregate(ledger, (), None, timezone.utc)
    assert final.total.runs + final.unpriced_total.runs == 400
