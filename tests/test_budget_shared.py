"""Budgets shared by concurrent runs (issue 14): claude's cap, the in-flight file, stopping runs together."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_run.budgets import check as budget
from claude_run.budgets import inflight
from claude_run.ledger.store import append
from claude_run.record.schema import iso_utc, new_id
from support.fake_claude import REQUEST_USAGE, make_fake_claude

SRC = str(Path(__file__).resolve().parents[1] / "src")
REQUEST_COST = REQUEST_USAGE.cost()


def run_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": SRC,
        "CLAUDE_RUN_KILL_GRACE": "2",
        "CLAUDE_RUN_TELEMETRY": "0",
    }
    env.update(extra)
    return env


def argv(claude: Path, ledger: Path, *args: str, claude_args: tuple[str, ...] = ()) -> list[str]:
    own = ["task", "--track", "--quiet", "--ledger", str(ledger), "--claude-bin", str(claude), *args]
    return [sys.executable, "-m", "claude_run", *own, "--", *claude_args]


def start(claude: Path, ledger: Path, *args: str, cwd: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv(claude, ledger, *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=run_env(cwd, **env),
        cwd=cwd,
    )


def records(ledger: Path) -> list[dict[str, Any]]:
    if not ledger.exists():
        return []
    return [orjson.loads(line) for line in ledger.read_bytes().splitlines() if line.strip()]


def seed(ledger: Path, cost: float) -> None:
    append(
        ledger,
        {
            "v": 1,
            "id": new_id(),
            "started_at": iso_utc(time.time()),
            "cost_usd": cost,
            "cost_source": "claude",
        },
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger" / "ledger.jsonl"


# --- claude's cap ------------------------------------------------------------------------------------------


def test_a_lone_run_gets_what_is_left_as_its_cap_and_stops_there(tmp_path: Path, ledger: Path) -> None:
    seed(ledger, 0.88)
    args_file = tmp_path / "args.json"
    claude = make_fake_claude(tmp_path, "spend", args_file=args_file, request_s=0.01)
    proc = subprocess.run(
        argv(claude, ledger, "--budget-daily", "1.00", "--max-cost", "5"),
        capture_output=True,
        env=run_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    got = json.loads(args_file.read_text())["argv"]
    cap = float(got[got.index("--max-budget-usd") + 1])
    assert got.count("--max-budget-usd") == 1
    assert cap <= 1.00 - 0.88 + 1e-9
    assert cap == pytest.approx(1.00 - 0.88)
    rec = records(ledger)[-1]
    assert (proc.returncode, rec["status"], rec["exit_code"]) == (76, "budget_exceeded", 76), proc.stderr
    # claude stopped itself at the cap: the request that crossed it is the overshoot
    assert cap <= rec["cost_usd"] < cap + REQUEST_COST
    assert any("what was left of the budget" in n for n in rec["notes"])


@pytest.mark.parametrize(
    ("users", "max_cost", "expected"),
    [("0.05", None, 0.05), ("3", None, 0.5), ("0.2", "0.1", 0.1), ("0.3", "0.9", 0.3)],
)
def test_the_smallest_cap_wins(
    tmp_path: Path, ledger: Path, users: str, max_cost: str | None, expected: float
) -> None:
    seed(ledger, 0.5)
    args_file = tmp_path / "args.json"
    claude = make_fake_claude(tmp_path, "spend", args_file=args_file, requests=1, request_s=0.01)
    extra = ["--max-cost", max_cost] if max_cost else []
    subprocess.run(
        argv(claude, ledger, "--budget-daily", "1", *extra, claude_args=("--max-budget-usd", users)),
        capture_output=True,
        env=run_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    got = json.loads(args_file.read_text())["argv"]
    assert got.count("--max-budget-usd") == 1
    assert float(got[got.index("--max-budget-usd") + 1]) == pytest.approx(expected)


# --- runs started together share the budget ----------------------------------------------------------------


def test_concurrent_runs_share_one_budget(tmp_path: Path, ledger: Path) -> None:
    claude = make_fake_claude(tmp_path, "spend", requests=10)  # $0.50 a run, one request every 0.4 s
    runs = [start(claude, ledger, "--budget-daily", "1.00", cwd=tmp_path) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in runs]
    recs = records(ledger)
    assert len(recs) == 8, [o[1] for o in outs]
    total = sum(r["cost_usd"] for r in recs)
    # the bound: each run overshoots by at most the request it had in flight
    assert total <= 1.00 + 8 * REQUEST_COST + 1e-9, total
    assert total >= 0.85, total  # the budget was used, not refused too early
    stopped = [r for r in recs if r["status"] == "budget_exceeded"]
    assert stopped and all(r["exit_code"] == 76 for r in stopped)
    assert {p.returncode for p in runs} <= {0, 76}
    # nothing is held once they are all done
    assert inflight.InflightFile(ledger).read().live() == {}
    # ... and the next run is refused before claude starts
    marker = tmp_path / "ran.json"
    late = make_fake_claude(tmp_path, "spend", args_file=marker, name="claude-late")
    proc = subprocess.run(
        argv(late, ledger, "--budget-daily", "1.00"), capture_output=True, env=run_env(tmp_path), timeout=60
    )
    assert proc.returncode == 75 and not marker.exists()
    assert len(proc.stderr.decode().splitlines()) == 1


def test_runs_started_at_once_see_each_others_reservation(tmp_path: Path, ledger: Path) -> None:
    """$0.12 left, 8 runs at once, $0.05 reserved each: only the first 3 start; the rest exit 75."""
    seed(ledger, 0.88)
    marker = tmp_path / "started"
    marker.mkdir()
    claude = make_fake_claude(tmp_path, "spend", requests=1, request_s=2.0)
    runs = [start(claude, ledger, "--budget-daily", "1.00", cwd=tmp_path) for _ in range(8)]
    codes = [p.wait(timeout=120) for p in runs]
    assert codes.count(75) == 5, codes
    assert len(records(ledger)) == 1 + 3


def test_a_run_is_stopped_when_others_spend_the_budget(tmp_path: Path, ledger: Path) -> None:
    """Another run's spend, seen in the in-flight file, stops this one like Ctrl-C; it is recorded."""
    claude = make_fake_claude(tmp_path, "spend", requests=50, request_s=0.2)
    proc = start(claude, ledger, "--budget-daily", "1.00", cwd=tmp_path)
    flight = inflight.InflightFile(ledger)
    deadline = time.monotonic() + 30
    while not flight.read().live() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    with flight.locked() as state:  # a run of ours (this test's pid: alive) that spent $0.95
        state.runs["other"] = inflight.Entry(
            pid=os.getpid(),
            host=inflight.host(),
            started_at=iso_utc(time.time()),
            project=None,
            tags={},
            spend_usd=0.95,
            reserve_usd=0.0,
            updated=time.time(),
            baseline_seq=state.seq,
        )
    _, err = proc.communicate(timeout=60)
    (rec,) = records(ledger)
    assert (proc.returncode, rec["status"]) == (76, "budget_exceeded"), err
    assert rec["cost_source"] == "estimate" and rec["cost_usd"] > 0  # no result: what it spent, at list price
    assert rec["cost_usd"] + 0.95 < 1.00 + 2 * REQUEST_COST
    assert any("daily budget reached" in n for n in rec["notes"])


# --- crash safety ------------------------------------------------------------------------------------------


def test_a_sigkilled_run_holds_no_budget_once_its_entry_is_stale(tmp_path: Path, ledger: Path) -> None:
    args_file = tmp_path / "args.json"
    claude = make_fake_claude(tmp_path, "spend", args_file=args_file, requests=100, request_s=0.2)
    proc = start(claude, ledger, "--budget-daily", "1.00", cwd=tmp_path)
    flight = inflight.InflightFile(ledger)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        live = flight.read().live()
        if live and next(iter(live.values())).spend_usd > 0:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the run never published its spend")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # claude runs in its own process group; end it by its id unless it already died with claude-run
    with contextlib.suppress(ProcessLookupError):
        os.killpg(json.loads(args_file.read_text())["pid"], signal.SIGKILL)
    # its process is gone: the entry no longer counts, and the budget is whole again
    assert flight.read().live() == {}
    state = budget.check(budget.BudgetSpec(daily=1.0), ledger)
    assert state.periods[0].in_flight == 0 and state.periods[0].left == 1.0


def test_an_entry_not_updated_in_time_stops_counting(tmp_path: Path, ledger: Path) -> None:
    """Same host, live pid (pid reuse, a frozen process): freshness decides."""
    flight = inflight.InflightFile(ledger)
    now = time.time()
    with flight.locked() as state:
        for key, updated in (("fresh", now), ("old", now - inflight.STALE_S - 1)):
            state.runs[key] = inflight.Entry(
                os.getpid(), inflight.host(), iso_utc(now), None, {}, 0.3, 0.0, updated, 0
            )
    assert set(flight.read().runs) == {"fresh"}  # pruned on the write
    assert budget.check(budget.BudgetSpec(daily=1.0), ledger).periods[0].in_flight == pytest.approx(0.3)


@pytest.mark.parametrize("garbage", [b"{torn", b"[]", b'{"v": 99}', b'{"v": 1, "ledger": "/elsewhere"}', b""])
def test_a_corrupted_inflight_file_is_one_line_and_rebuilt(
    tmp_path: Path, ledger: Path, garbage: bytes
) -> None:
    seed(ledger, 0.1)
    inflight.inflight_path(ledger).write_bytes(garbage)
    claude = make_fake_claude(tmp_path, "spend", requests=1, request_s=0.01)
    proc = subprocess.run(
        argv(claude, ledger, "--budget-daily", "1"),
        capture_output=True,
        env=run_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if "in-flight budget file" in line]
    assert len(warnings) == 1 and "rebuilt" in warnings[0]
    raw = orjson.loads(inflight.inflight_path(ledger).read_bytes())
    assert raw["v"] == inflight.VERSION and raw["ledger"] == os.path.realpath(ledger)
    assert len(records(ledger)) == 2


# --- budget status -----------------------------------------------------------------------------------------


def test_budget_status_shows_recorded_in_flight_and_remaining(tmp_path: Path, ledger: Path) -> None:
    seed(ledger, 0.25)
    flight = inflight.InflightFile(ledger)
    with flight.locked() as state:
        state.runs["x"] = inflight.Entry(
            os.getpid(), inflight.host(), iso_utc(time.time()), None, {}, 0.1, 0.05, time.time(), 0
        )
    cmd = [sys.executable, "-m", "claude_run", "budget", "status", "--ledger", str(ledger)]
    res = subprocess.run(
        [*cmd, "--budget-daily", "1", "--format", "json"], capture_output=True, env=run_env(tmp_path)
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    (daily,) = [b for b in out["budgets"] if b["period"] == "daily"]
    assert daily["recorded_usd"] == pytest.approx(0.25)
    assert daily["in_flight_usd"] == pytest.approx(0.1)
    assert daily["remaining_usd"] == pytest.approx(0.65)
    assert daily["runs_in_flight"] == 1
    table = subprocess.run(
        [*cmd, "--budget-daily", "1"], capture_output=True, env=run_env(tmp_path), text=True
    )
    assert table.returncode == 0 and "$0.65" in table.stdout


# --- the pieces --------------------------------------------------------------------------------------------


def _entry(spend: float, *, reserve: float = 0.0, baseline: int = 0, **kw: Any) -> inflight.Entry:
    fields: dict[str, Any] = {
        "pid": os.getpid(),
        "host": inflight.host(),
        "started_at": iso_utc(time.time()),
        "project": None,
        "tags": {},
        "spend_usd": spend,
        "reserve_usd": reserve,
        "updated": time.time(),
        "baseline_seq": baseline,
    }
    fields.update(kw)
    return inflight.Entry(**fields)


def _scope() -> budget.RunScope:
    return budget.RunScope(iso_utc(time.time()), "widgets", {"team": "a"}, 0.05)


def test_a_finished_runs_spend_moves_from_in_flight_to_recorded_once(ledger: Path) -> None:
    spec = budget.BudgetSpec(daily=1.0)
    a = budget.check(spec, ledger, run=_scope())
    b = budget.check(spec, ledger, run=_scope())
    assert a.live is not None and b.live is not None
    assert b.periods[0].in_flight == pytest.approx(0.05)  # a's reservation
    assert b.live.update(0.10) is None
    assert a.live.update(0.30) is None
    flight = inflight.InflightFile(ledger)
    assert b.live.totals(flight.read(), 0.10) == [pytest.approx(0.40)]
    rec = {"v": 1, "id": new_id(), "started_at": a.live.entry.started_at, "cost_usd": 0.31}
    a.live.settle(lambda: append(ledger, rec), 0.31, rec["started_at"], True)
    # b read the ledger before a's record: a now counts as settled, not in flight, and only once
    assert b.live.totals(flight.read(), 0.10) == [pytest.approx(0.41)]
    # a run that starts now reads a's record from the ledger and b from the file
    c = budget.check(spec, ledger)
    assert (c.periods[0].before.usd, c.periods[0].in_flight) == (pytest.approx(0.31), pytest.approx(0.10))
    assert b.live.update(0.68) is None  # 0.31 recorded since + 0.68: under
    reached = b.live.update(0.70)
    assert reached is not None and reached.total == pytest.approx(1.01)
    b.live.release()
    assert flight.read().live() == {} and flight.read().settled == []


def test_other_scopes_and_periods_do_not_count(ledger: Path) -> None:
    flight = inflight.InflightFile(ledger)
    yesterday = iso_utc(time.time() - 86_400 * 2)
    with flight.locked() as state:
        state.runs["other-team"] = _entry(0.5, tags={"team": "b"})
        state.runs["old"] = _entry(0.5, started_at=yesterday, tags={"team": "a"})
        state.runs["ours"] = _entry(0.2, tags={"team": "a"}, project="widgets")
    spec = budget.BudgetSpec(daily=1.0, tags={"team": "a"})
    assert budget.check(spec, ledger).periods[0].in_flight == pytest.approx(0.2)
    by_project = budget.BudgetSpec(daily=1.0, project="gadgets")
    assert budget.check(by_project, ledger).periods[0].in_flight == 0.0


def test_a_refusal_counts_the_runs_in_flight(ledger: Path) -> None:
    seed(ledger, 0.6)
    with inflight.InflightFile(ledger).locked() as state:
        state.runs["x"] = _entry(0.1, reserve=0.05)
        state.runs["y"] = _entry(0.0, reserve=0.3)
    with pytest.raises(
        budget.BudgetExceeded, match=r"\$0\.60 spent \+ \$0\.40 in flight \(2 run\(s\) going\)"
    ):
        budget.check(budget.BudgetSpec(daily=1.0), ledger)


def test_the_cap_is_what_is_left_and_never_zero(ledger: Path) -> None:
    seed(ledger, 0.7)
    state = budget.check(budget.BudgetSpec(daily=1.0, monthly=0.8), ledger)
    assert state.budget_cap() == pytest.approx(0.1)
    seed(ledger, 0.0999999999)
    assert budget.check(budget.BudgetSpec(monthly=0.8), ledger).budget_cap() == 0.000001


def test_live_spend_prices_messages_until_the_result_gives_claudes_figure() -> None:
    from claude_run.stream.events import parse_line
    from claude_run.stream.usage import UsageFolder
    from support.fake_claude import assistant_event, result_event, text_block

    folder = UsageFolder()
    assert folder.live_spend() == (0.0, True)
    folder.feed(parse_line(json.dumps(assistant_event(REQUEST_USAGE, [text_block("a")], final=True))))  # type: ignore[arg-type]
    spent, priced = folder.live_spend()
    assert priced and spent == pytest.approx(REQUEST_COST)
    result = result_event((REQUEST_USAGE,), "done", num_turns=1)
    result["total_cost_usd"] = 0.07  # Claude's own figure wins over the estimate
    folder.feed(parse_line(json.dumps(result)))  # type: ignore[arg-type]
    assert folder.live_spend() == (0.07, True) and folder.answered
    folder.feed(parse_line(json.dumps(assistant_event(REQUEST_USAGE, [text_block("b")], final=True))))  # type: ignore[arg-type]
    assert folder.live_spend()[0] == pytest.approx(0.07 + REQUEST_COST) and not folder.answered


@pytest.mark.parametrize(
    ("args", "value", "rest"),
    [
        (["--model", "x", "--max-budget-usd", "2"], 2.0, ["--model", "x"]),
        (["--max-budget-usd=0.5", "-p"], 0.5, ["-p"]),
        (["--max-budget-usd", "lots"], None, ["--max-budget-usd", "lots"]),
        (["--model", "x"], None, ["--model", "x"]),
    ],
)
def test_users_own_cap_is_read_from_claudes_args(
    args: list[str], value: float | None, rest: list[str]
) -> None:
    from claude_run.run.modes import user_max_budget

    assert user_max_budget(args) == (value, rest)


def test_a_ledger_replaced_under_a_running_run_is_read_again(tmp_path: Path, ledger: Path) -> None:
    """A CI cache restore swaps in a ledger that already holds most of the budget: the run notices
    (`ledger.identity` no longer holds), reads it again and stops."""
    claude = make_fake_claude(tmp_path, "spend", requests=100, request_s=0.2)
    proc = start(claude, ledger, "--budget-daily", "1.00", cwd=tmp_path)
    flight = inflight.InflightFile(ledger)
    deadline = time.monotonic() + 30
    while not flight.read().live() and time.monotonic() < deadline:
        time.sleep(0.05)
    restored = tmp_path / "restored.jsonl"
    seed(restored, 0.95)
    os.replace(restored, ledger)
    _, err = proc.communicate(timeout=60)
    recs = records(ledger)
    assert (proc.returncode, recs[-1]["status"]) == (76, "budget_exceeded"), err
    assert recs[-1]["cost_usd"] < 0.05 + 2 * REQUEST_COST + inflight.HEARTBEAT_S / 0.2 * REQUEST_COST
