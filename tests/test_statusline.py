"""`claude-run statusline` over recorded and hand-made inputs, and the day totals it reads."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.budgets import check as budget
from claude_run.budgets import daytotals
from claude_run.ledger.rotation import rotate_locked
from claude_run.ledger.store import append, locked
from claude_run.query import fold
from claude_run.record import schema as record
from claude_run.sessions.statusline import fmt_money, status_line

SAMPLES = Path("/work/shared/samples/claude-code-2.1.330")
RECORDED = (
    (SAMPLES / "statusline-input.json").read_bytes()
    if (SAMPLES / "statusline-input.json").exists()
    else json.dumps(
        {
            "session_id": "36a6f896-266f-43ce-adb6-77795e3426a5",
            "model": {"id": "claude-sonnet-4-5", "display_name": "Sonnet 4.5"},
            "cost": {"total_cost_usd": 0.00722805},
            "context_window": {"used_percentage": 3, "context_window_size": 200000},
        }
    ).encode()
)
SAMPLE = json.loads(RECORDED)
NOW = 1_796_461_000.0  # 2026-12-05, mid-morning UTC
SRC = str(Path(__file__).resolve().parents[1] / "src")


def line(data: object, tmp_path: Path, *args: str, now: float = NOW, **env: str) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return status_line(list(args), raw, {"CLAUDE_RUN_LEDGER": str(tmp_path / "ledger.jsonl"), **env}, now)


def plain(data: object, tmp_path: Path, *args: str, **env: str) -> str:
    return line(data, tmp_path, *args, NO_COLOR="1", **env)


def rec(rid: str, cost: float | None, started: float = NOW - 60, **extra: Any) -> dict[str, Any]:
    return {"v": 1, "id": rid, "started_at": daytotals.iso_ms(started), "mode": "non-interactive",
            "cost_usd": cost, **extra}  # fmt: skip


# -- the line ------------------------------------------------------------------------------------
def test_recorded_input_on_an_empty_ledger(tmp_path: Path) -> None:
    cost = SAMPLE["cost"]["total_cost_usd"]
    pct = SAMPLE["context_window"]["used_percentage"]
    model = SAMPLE["model"]["display_name"]
    want = f"{model} · session {fmt_money(cost)} · today {fmt_money(cost)} · ctx {pct}%"
    assert plain(RECORDED, tmp_path) == want
    assert not (tmp_path / "ledger.jsonl.today.json").exists()  # no ledger: nothing derived


def test_rate_limits_show_the_5_hour_window_and_its_reset(tmp_path: Path) -> None:
    resets = NOW + 2 * 3600
    windows = {
        "five_hour": {"used_percentage": 81, "resets_at": resets},
        "seven_day": {"used_percentage": 33.4, "resets_at": NOW + 3 * 86400},
    }
    data = {**SAMPLE, "rate_limits": windows}
    out = plain(data, tmp_path, "--segments", "quota,week")
    assert out == (
        f"5h 81% ↻{time.strftime('%H:%M', time.localtime(resets))}"
        f" · 7d 33% ↻{time.strftime('%a %H:%M', time.localtime(NOW + 3 * 86400))}"
    )
    assert "5h" not in plain(SAMPLE, tmp_path)  # an API-key login has no rate limits: no segment


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"model": None, "cost": None, "context_window": None, "rate_limits": None},
        {"model": ["x"], "cost": {"total_cost_usd": "12"}, "context_window": {"used_percentage": True}},
        {"rate_limits": "lots", "session_id": 5, "cwd": {"a": 1}},
        {"rate_limits": {"five_hour": {"used_percentage": None, "resets_at": "soon"}}},
        {"context_window": {"context_window_size": 0, "current_usage": {"input_tokens": 5}}},
    ],
)
def test_missing_or_mistyped_fields_leave_their_segment_out(data: dict[str, Any], tmp_path: Path) -> None:
    assert plain(data, tmp_path) == "today $0.00"
    assert plain(data, tmp_path, "--segments", "model,session,context,quota") == "claude-run: no status data"


def test_context_from_current_usage_when_no_percentage(tmp_path: Path) -> None:
    usage = {"input_tokens": 1000, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 16000}
    data = {"context_window": {"context_window_size": 200000, "current_usage": usage}}
    assert plain(data, tmp_path, "--segments", "context") == "ctx 10%"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b"null",
        b'"text"',
        b"[" * 100_000,
        b'{"a": ',
    ],
)
def test_garbage_prints_one_short_line(raw: bytes, tmp_path: Path) -> None:
    out = line(raw, tmp_path)
    assert out.startswith("claude-run: no status") and "\n" not in out and len(out) < 80


def test_huge_and_odd_numbers_stay_short(tmp_path: Path) -> None:
    data = {
        "model": {"display_name": "M" * 500},
        "cost": {"total_cost_usd": 1e308},
        "context_window": {"used_percentage": 1e30},
        "rate_limits": {"five_hour": {"used_percentage": -5, "resets_at": 1e300}},
    }
    out = plain(data, tmp_path, "--segments", "model,session,context,quota")
    assert out == f"{'M' * 27}… · session $1e+308 · ctx >999% · 5h 0%"
    nan = b'{"cost": {"total_cost_usd": NaN}, "context_window": {"used_percentage": Infinity}}'
    assert plain(nan, tmp_path, "--segments", "session,context") == "claude-run: no status data"
    beyond = plain({"cost": {"total_cost_usd": 10**400}}, tmp_path, "--segments", "session")
    assert beyond == "claude-run: no status data"


@pytest.mark.parametrize("usd", [0, 1e-9, 0.5, 1, 99.99, 1234.5, 56_789, 1.5e7, 3e12, 1e308])
def test_money_is_short_at_any_size(usd: float) -> None:
    assert len(fmt_money(usd)) <= 8


def test_colours_and_no_color(tmp_path: Path) -> None:
    coloured = line(SAMPLE, tmp_path)
    assert "\x1b[36m" + SAMPLE["model"]["display_name"] in coloured
    assert "\x1b[" not in line(SAMPLE, tmp_path, NO_COLOR="1")
    assert "\x1b[" not in line(SAMPLE, tmp_path, "--color", "never")
    assert "\x1b[" in line(SAMPLE, tmp_path, "--color=always", NO_COLOR="1")
    assert "\x1b[31m" + SAMPLE["model"]["display_name"] in line(SAMPLE, tmp_path, "--colors", "model=red")
    assert "\x1b[38;5;208m" in line(SAMPLE, tmp_path, CLAUDE_RUN_STATUSLINE_COLORS="model=38;5;208")


@pytest.mark.parametrize(
    "args",
    [["--segments", "model,bogus"], ["--colors", "model=chartreuse"], ["--color", "sometimes"],
     ["--budget-daily", "-1"], ["--budget-daily", "lots"], ["--nope"], ["--segments"]],
)  # fmt: skip
def test_bad_settings_are_said_in_the_line(args: list[str], tmp_path: Path) -> None:
    out = plain(SAMPLE, tmp_path, *args)
    assert out.startswith("claude-run") and "\n" not in out and len(out) < 140


def test_an_unknown_time_zone_leaves_the_rest_of_the_line(tmp_path: Path) -> None:
    out = plain(SAMPLE, tmp_path, "--tz", "Mars/Olympus")
    assert out.startswith(SAMPLE["model"]["display_name"]) and out.endswith(
        "unknown time zone 'Mars/Olympus'"
    )


def test_budget_colours_today_as_it_fills(tmp_path: Path) -> None:
    cost = SAMPLE["cost"]["total_cost_usd"]
    out = line(SAMPLE, tmp_path, "--segments", "today", "--budget-daily", str(cost * 10), "--color", "always")
    assert out == f"today {fmt_money(cost)}/{fmt_money(cost * 10)}"  # 10 %: the segment's own (no) colour
    over = line(
        SAMPLE, tmp_path, "--segments", "today", "--color", "always", CLAUDE_RUN_BUDGET_DAILY=str(cost)
    )
    assert over == f"\x1b[1;31mtoday {fmt_money(cost)}/{fmt_money(cost)}\x1b[0m"


# -- today's spend: the ledger's, this session once ---------------------------------------------
def test_today_counts_the_session_once_and_other_days_not_at_all(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    sid = SAMPLE["session_id"]
    live = SAMPLE["cost"]["total_cost_usd"]
    append(ledger, rec("A", 1.0))
    append(ledger, rec("B", 2.0, started=NOW - 86400))  # yesterday
    append(ledger, rec("C", live / 2, session_id=sid, mode="interactive"))  # this session, recorded earlier
    out = plain(SAMPLE, tmp_path, "--segments", "today")
    assert out == f"today {fmt_money(1.0 + live)}"
    # The session's record is bigger than the live figure (a resumed process): the record stands.
    append(ledger, rec("D", live * 3, session_id=sid, mode="interactive"))
    assert plain(SAMPLE, tmp_path, "--segments", "today") == f"today {fmt_money(1.0 + live / 2 + live * 3)}"


def test_unpriced_records_make_today_a_lower_bound(tmp_path: Path) -> None:
    append(tmp_path / "ledger.jsonl", rec("A", None))
    assert plain({}, tmp_path) == "today ≥$0.00"


def test_a_ledger_that_cannot_be_read_is_said_briefly(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    (tmp_path / "ledger.jsonl").symlink_to(target)
    out = plain(SAMPLE, tmp_path)
    assert out.startswith(SAMPLE["model"]["display_name"])
    assert out.endswith("today: refusing to use ledger: it is a symbolic link")
    (tmp_path / "ledger.jsonl").unlink()
    (tmp_path / "ledger.jsonl").mkdir()
    assert plain(SAMPLE, tmp_path).endswith(
        "today: ledger is a directory; --ledger / $CLAUDE_RUN_LEDGER name a…"
    )


def test_escape_sequences_in_the_input_never_reach_the_status_bar(tmp_path: Path) -> None:
    data = {"model": {"display_name": "Sonnet\x1b]0;pwned\x07\u202e"}}
    assert plain(data, tmp_path, "--segments", "model") == "Sonnet\\x1b]0;pwned\\x07\\u202e"


def test_the_command_exits_0_with_one_line_whatever_the_input(tmp_path: Path) -> None:
    for raw in (b"\x00\x01", RECORDED):
        proc = subprocess.run(
            [sys.executable, "-m", "claude_run", "statusline"],
            input=raw,
            capture_output=True,
            env={"PYTHONPATH": SRC, "CLAUDE_RUN_LEDGER": str(tmp_path / "l.jsonl"), "NO_COLOR": "1"},
            timeout=60,
        )
        assert proc.returncode == 0 and proc.stderr == b""
        assert proc.stdout.count(b"\n") == 1


def test_the_status_path_imports_no_heavy_module(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    append(ledger, rec("A", 1.0))
    code = (
        "import sys, io; from claude_run.__main__ import main;"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO({RECORDED!r}));"
        "main(['statusline']); main(['statusline']);"  # the second: the derived file's usual path
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('typer', 'click', 'anyio', 'asyncio', 'duckdb', 'orjson', 'dataclasses')"
        " or m.startswith('claude_run.run.')))"
    )
    env = {"PYTHONPATH": SRC, "CLAUDE_RUN_LEDGER": str(ledger)}
    # The first call builds the derived file with the ledger's reader (orjson); later ones do not.
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# -- the derived day totals agree with the budget's full read -----------------------------------
def _truth(ledger: Path, now: float) -> float:
    start, end = daytotals.day_bounds(now, None)
    from datetime import datetime, timezone

    return budget.spend_since(
        ledger, datetime.fromtimestamp(start, timezone.utc), end=datetime.fromtimestamp(end, timezone.utc)
    ).usd


def _today(ledger: Path, now: float) -> float:
    return daytotals.load_today(str(ledger), now).spend()[0]


SIDS = ["s1", "s2", "s3", None]
record_st = st.fixed_dictionaries(
    {
        "id": st.sampled_from([f"r{i}" for i in range(12)]),
        "mode": st.sampled_from(["imported", "interactive", "non-interactive", "telemetry"]),
        "session_id": st.sampled_from(SIDS),
        "supersedes": st.one_of(st.none(), st.sampled_from([f"r{i}" for i in range(12)])),
        "cost_usd": st.one_of(st.none(), st.floats(0, 10, allow_nan=False).map(lambda x: round(x, 3))),
    }
)
DAY_OF = {f"r{i}": (-2, -1, 0, 0, 0)[i % 5] for i in range(12)}  # an id is one record: copies share a start


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(record_st, min_size=0, max_size=6), min_size=1, max_size=5))
def test_incremental_totals_equal_the_budget_full_read(
    batches: list[list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    ledger = tmp_path_factory.mktemp("t") / "ledger.jsonl"
    ledger.touch()
    for batch in batches:
        lines = b""
        for r in batch:
            started = NOW + DAY_OF[r["id"]] * 86400 - 30
            lines += orjson.dumps({"v": 1, **r, "started_at": daytotals.iso_ms(started)}) + b"\n"
        with open(ledger, "ab") as fh:
            fh.write(lines)
        assert _today(ledger, NOW) == pytest.approx(_truth(ledger, NOW), abs=1e-9)
    (ledger.parent / (ledger.name + daytotals.SUFFIX)).unlink()  # a rebuild from scratch agrees too
    assert _today(ledger, NOW) == pytest.approx(_truth(ledger, NOW), abs=1e-9)


def test_the_fold_constant_is_the_folds() -> None:
    assert daytotals.REPLACEABLE_MODE == fold.IMPORTED == record.IMPORTED
    assert daytotals.MAX_COST_USD == record.MAX_RUN_COST_USD


def test_appends_are_read_from_the_tail_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger.jsonl"
    append(ledger, rec("A", 1.0))
    assert _today(ledger, NOW) == 1.0
    append(ledger, rec("B", 2.0))

    def no_full_read(*_: object) -> None:
        raise AssertionError("the whole ledger was read again")

    monkeypatch.setattr(daytotals, "_rebuild", no_full_read)
    assert _today(ledger, NOW) == 3.0
    assert _today(ledger, NOW) == 3.0


def test_a_torn_tail_waits_for_its_newline(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    append(ledger, rec("A", 1.0))
    line_b = orjson.dumps(rec("B", 2.0)) + b"\n"
    with open(ledger, "ab") as fh:
        fh.write(line_b[:20])
    assert _today(ledger, NOW) == 1.0
    with open(ledger, "ab") as fh:
        fh.write(line_b[20:])
    assert _today(ledger, NOW) == 3.0


@pytest.mark.parametrize("how", ["replace", "truncate", "same-size", "rotate", "generation"])
def test_a_replaced_or_rewritten_ledger_is_read_again(how: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    append(ledger, rec("A", 1.0))
    append(ledger, rec("B", 2.0))
    assert _today(ledger, NOW) == 3.0
    if how == "replace":
        other = tmp_path / "other.jsonl"
        append(other, rec("C", 5.0))
        other.replace(ledger)
        want = 5.0
    elif how == "truncate":
        ledger.write_bytes(orjson.dumps(rec("C", 0.5)) + b"\n")  # same inode, shorter
        want = 0.5
    elif how == "same-size":
        data = ledger.read_bytes().replace(b'"A"', b'"Z"').replace(b"1.0", b"4.0")
        with open(ledger, "r+b") as fh:  # same inode, same size, other bytes
            fh.write(data)
        want = 6.0
    elif how == "rotate":
        with locked(ledger):
            rotate_locked(ledger)
        append(ledger, rec("C", 0.25))
        want = 3.25  # the rotated segment still counts: it is part of the ledger
    else:
        (tmp_path / "ledger.jsonl.gen").write_text("7.abc\n")
        want = 3.0
    assert _today(ledger, NOW) == want == pytest.approx(_truth(ledger, NOW))


def test_a_new_day_drops_yesterday(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    append(ledger, rec("A", 1.0))
    assert _today(ledger, NOW) == 1.0
    tomorrow = NOW + 86400
    append(ledger, rec("B", 2.0, started=tomorrow - 10))
    assert _today(ledger, tomorrow) == 2.0 == _truth(ledger, tomorrow)
    state = json.loads((tmp_path / "ledger.jsonl.today.json").read_text())
    assert set(state["entries"]) == {"B"}


def test_a_damaged_derived_file_is_rebuilt(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    append(ledger, rec("A", 1.0))
    assert _today(ledger, NOW) == 1.0
    for junk in (b"{", b"[]", b'{"v": 1}', b'{"v":1,"tz":"UTC","day":["a","b"],"ledger":[],"covered":"x"}'):
        (tmp_path / "ledger.jsonl.today.json").write_bytes(junk)
        assert _today(ledger, NOW) == 1.0


def test_time_zone_moves_the_day_boundary(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    midnight = NOW - NOW % 86400
    append(ledger, rec("A", 1.0, started=midnight + 3600))  # 01:00 UTC = previous day in New York
    ny = plain({}, tmp_path, "--tz", "America/New_York", "--segments", "today")
    assert plain({}, tmp_path, "--segments", "today") == "today $1.00"
    at = time.gmtime(NOW)
    assert (ny == "today $1.00") == (at.tm_hour < 5)  # NOW's New York day is still the previous one


def test_a_large_new_ledger_is_read_by_a_detached_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import claude_run.sessions.statusline as sl

    ledger = tmp_path / "ledger.jsonl"
    append(ledger, rec("A", 1.0))
    monkeypatch.setattr(sl, "INLINE_READ_MAX", 10)  # any ledger is "large"
    if not hasattr(__import__("os"), "fork"):
        pytest.skip("no fork: the read happens inline")
    assert plain({}, tmp_path) == "today …"
    state = tmp_path / "ledger.jsonl.today.json"
    deadline = time.monotonic() + 30
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert plain({}, tmp_path) == "today $1.00"
    assert not (tmp_path / "ledger.jsonl.today.json.building").exists()


def test_a_ledger_just_rotated_is_read_from_its_segments(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    append(ledger, rec("A", 1.0))
    with locked(ledger):
        rotate_locked(ledger)
    assert not ledger.exists()
    assert _today(ledger, NOW) == 1.0
