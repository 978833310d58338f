"""The budget check's spend file (`spendfile`): after any appended lines, the read engine's figures.

Hypothesis draws ledgers full of the fold's corner cases (tests/support/engine_ledgers.py), cuts them
in two, builds the file from the first part and appends the rest; the file's answer (folded from the
appended lines, or the engine's when it cannot judge them) must equal the engine's on the whole ledger.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.budgets import check as budget
from claude_run.budgets import spendfile
from claude_run.record import schema as record
from support import engine_ledgers as el
from support import reports_records as rr

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime.fromtimestamp(rr.BASE, timezone.utc) + timedelta(days=2, hours=3)  # 2025-03-30, DST in Paris
SCOPES = [("UTC", None, {}), ("Europe/Paris", "api", {}), ("UTC", None, {"team": "a"})]


def _windows(tz_key: str, now: datetime) -> list[tuple[datetime, datetime]]:
    tz = budget.zone(tz_key)
    day = budget.period_bounds("daily", now, tz)
    month = budget.period_bounds("monthly", now, tz)
    later = budget.period_bounds("daily", now + timedelta(days=3), tz)  # another day, another month
    return [day, month, later, budget.period_bounds("monthly", now + timedelta(days=5), tz)]


def _engine(ledger: Path, scope: tuple[str, str | None, dict[str, str]], now: datetime) -> list[Any]:
    tz_key, project, tags = scope
    return [
        budget.spend_since(ledger, lo, end=hi, project=project, tags=tags) for lo, hi in _windows(tz_key, now)
    ]


def _file(ledger: Path, scope: tuple[str, str | None, dict[str, str]], now: datetime) -> list[Any]:
    tz_key, project, tags = scope
    spec = budget.BudgetSpec(project=project, tags=tags, tz=tz_key)
    return budget.period_spends(ledger, spec, _windows(tz_key, now), now)


def _append(ledger: Path, lines: list[bytes]) -> None:
    with open(ledger, "ab") as fh:
        fh.write(b"".join(line + b"\n" for line in lines))


@SETTINGS
@given(drawn=el.ledgers(), cut=st.floats(0, 1), scope=st.sampled_from(SCOPES), extra=st.booleans())
def test_the_file_equals_the_engine_after_any_appends(
    drawn: tuple[list[dict[str, Any]], list[bytes]],
    cut: float,
    scope: tuple[str, str | None, dict[str, str]],
    extra: bool,
) -> None:
    _, lines = drawn
    k = int(len(lines) * cut)
    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        el.write(ledger, lines[:k])
        assert _file(ledger, scope, NOW) == _engine(ledger, scope, NOW)  # built by the engine
        _append(ledger, lines[k:])
        assert _file(ledger, scope, NOW) == _engine(ledger, scope, NOW)  # the appended lines folded
        if extra:  # a plain run appended next, a day later
            rec = {"v": 1, "id": "R99999", "started_at": rr._iso(NOW.timestamp() + 86400), "cost_usd": 0.25}
            _append(ledger, [orjson.dumps({**rec, "project": "api", "tags": {"team": "a"}})])
            later = NOW + timedelta(days=1)
            assert _file(ledger, scope, later) == _engine(ledger, scope, later)


def _plain(i: int, at: datetime, cost: float, **extra: Any) -> bytes:
    rec = {
        "v": 1,
        "id": record.new_id(int(at.timestamp() * 1000)),
        "started_at": record.iso_utc(at.timestamp()),
    }
    return orjson.dumps({**rec, "mode": "non-interactive", "session_id": f"s{i}", "cost_usd": cost, **extra})


def test_appended_runs_are_folded_without_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger.jsonl"
    now = datetime.now(timezone.utc)
    _append(ledger, [_plain(i, now - timedelta(minutes=30 - i), 0.5) for i in range(3)])
    scope = ("UTC", None, {})
    assert _file(ledger, scope, now)[0].usd == 1.5

    def no_engine(*_: Any) -> None:
        raise AssertionError("the engine was read")

    monkeypatch.setattr(spendfile, "_rebuild", no_engine)
    _append(ledger, [_plain(7, now, 0.25), _plain(8, now, 0.125, cost_source="estimate")])
    got = _file(ledger, scope, now)[0]
    assert (got.usd, got.records, got.estimated) == (1.875, 5, 1)
    # a telemetry rewrite: a newer record replacing one the file holds
    first = orjson.loads(ledger.read_bytes().splitlines()[0])
    _append(ledger, [_plain(9, now, 0.75, supersedes=first["id"], session_id=first["session_id"])])
    assert _file(ledger, scope, now)[0].usd == 2.125
    monkeypatch.undo()
    assert _file(ledger, scope, now) == _engine(ledger, scope, now)


def test_a_line_being_written_waits_for_the_next_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    now = datetime.now(timezone.utc)
    _append(ledger, [_plain(1, now, 0.5)])
    scope = ("UTC", None, {})
    _file(ledger, scope, now)
    line = _plain(2, now, 0.25)
    with open(ledger, "ab") as fh:
        fh.write(line[:20])  # an append half done: the engine reads no record there either

    def no_engine(*_: Any) -> None:
        raise AssertionError("the engine was read")

    with monkeypatch.context() as m:
        m.setattr(spendfile, "_rebuild", no_engine)
        assert _file(ledger, scope, now)[0].usd == 0.5
        with open(ledger, "ab") as fh:
            fh.write(line[20:] + b"\n")
        assert _file(ledger, scope, now)[0].usd == 0.75
    with open(ledger, "ab") as fh:
        fh.write(_plain(3, now, 1.0))  # a whole record without its newline: the engine counts it
    assert _file(ledger, scope, now) == _engine(ledger, scope, now)
    assert _file(ledger, scope, now)[0].usd == 1.75


def test_what_it_cannot_judge_goes_to_the_engine(tmp_path: Path) -> None:
    """An imported record that would count (is its session claimed by an older line?), an id below
    the floor, a start in another format: each read by the engine, which rebuilds the file."""
    ledger = tmp_path / "ledger.jsonl"
    now = datetime.now(timezone.utc)
    old = now - timedelta(days=20)
    _append(ledger, [_plain(1, old, 0.5), _plain(2, now - timedelta(hours=1), 0.5)])
    scope = ("UTC", None, {})
    _file(ledger, scope, now)
    tails = [
        _plain(1, now, 2.0, mode="imported"),  # session s1 is claimed by the old run
        _plain(3, old, 1.0),  # an id from before the floor
        orjson.dumps({"v": 1, "id": record.new_id(), "started_at": now.isoformat(), "cost_usd": 1.0}),
    ]
    for line in tails:
        _append(ledger, [line])
        assert _file(ledger, scope, now) == _engine(ledger, scope, now)


def test_a_rewritten_ledger_is_read_again(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    now = datetime.now(timezone.utc)
    _append(ledger, [_plain(1, now, 0.5), _plain(2, now, 0.5)])
    scope = ("UTC", None, {})
    assert _file(ledger, scope, now)[0].usd == 1.0
    ledger.write_bytes(_plain(3, now, 0.25) + b"\n")  # replaced: another inode
    assert _file(ledger, scope, now)[0].usd == 0.25


def test_a_budget_check_from_the_file_never_imports_duckdb(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    now = datetime.now(timezone.utc)
    _append(ledger, [_plain(i, now, 0.5) for i in range(3)])
    code = (
        "import sys\nfrom pathlib import Path\nfrom claude_run.budgets import check as budget\n"
        "s = budget.check(budget.BudgetSpec(daily=10.0, monthly=100.0), Path(sys.argv[1]))\n"
        "print(s.periods[0].before.usd, 'duckdb' in sys.modules)\n"
    )
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    outs = [
        subprocess.run(
            [sys.executable, "-c", code, str(ledger)], capture_output=True, text=True, env=env, check=True
        )
        for _ in range(2)
    ]
    assert outs[0].stdout.split() == ["1.5", "True"]  # the first check builds the file with the engine
    assert outs[1].stdout.split() == ["1.5", "False"]


def test_constants_match_their_sources() -> None:
    assert spendfile.MAX_COST_USD == record.MAX_RUN_COST_USD
    assert ZoneInfo("Europe/Paris")  # the zone the property test uses is known here
