"""Budgets against the REAL Claude Code CLI and the mock Messages API (issue 14).

- what is left of a daily budget becomes claude's `--max-budget-usd`: a multi-turn run stops itself
  at the turn that reaches it (status `budget_exceeded`, exit 76);
- another run's spend in the in-flight file reaches the budget while this one goes: claude-run stops
  claude as Ctrl-C does and records what it spent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_run.budgets import inflight
from claude_run.ledger.store import append
from claude_run.record.schema import iso_utc, new_id
from support.claude_cli import claude_env, write_claude_json
from support.mock_anthropic import MockAnthropic, MockApiFactory, Usage, list_cost, text, tool_use

pytestmark = pytest.mark.e2e

SRC = str(Path(__file__).resolve().parents[1] / "src")
SONNET = "claude-sonnet-4-5"
TURN = Usage(input=20000, output=500)  # $0.0675 a request at Sonnet's list price
TURN_COST = list_cost(SONNET, TURN)


def bash(n: int, **options: Any) -> Any:
    return tool_use(
        "Bash", {"command": f"echo step-{n}", "description": "print a word"}, usage=TURN, **options
    )


def launch(claude_bin: Path, home: Path, api: MockAnthropic, *args: str) -> subprocess.Popen[bytes]:
    write_claude_json(home, home / "project")
    env = claude_env(home, api.url)
    env.update({"PYTHONPATH": SRC, "XDG_DATA_HOME": str(home / "data"), "CLAUDE_RUN_KILL_GRACE": "3"})
    argv = [
        sys.executable,
        "-m",
        "claude_run",
        "run the steps",
        "--claude-bin",
        str(claude_bin),
        "--track",
        "--ledger",
        str(home / "ledger.jsonl"),
        *args,
        "--",
        "--model",
        SONNET,
        "--allowedTools",
        "Bash",
    ]
    return subprocess.Popen(
        argv, env=env, cwd=home / "project", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def ledger_records(home: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (home / "ledger.jsonl").read_bytes().splitlines() if line.strip()]


def test_what_is_left_of_the_budget_stops_a_multi_turn_run(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    append(
        claude_home / "ledger.jsonl",
        {
            "v": 1,
            "id": new_id(),
            "started_at": iso_utc(time.time()),
            "cost_usd": 0.90,
            "cost_source": "claude",
        },
    )
    api = mock_api([*(bash(n) for n in range(6)), text("all done", usage=TURN)])
    proc = launch(claude_bin, claude_home, api, "--budget-daily", "1.00")
    _, err = proc.communicate(timeout=180)
    rec = ledger_records(claude_home)[-1]
    assert (proc.returncode, rec["status"], rec["exit_code"]) == (76, "budget_exceeded", 76), err
    served = len(api.messages_requests())
    assert 2 <= served < 7  # $0.10 left: the second turn reaches it, the script is never finished
    assert rec["cost_usd"] == pytest.approx(api.list_cost(), rel=1e-6)
    assert rec["cost_usd"] <= 0.10 + TURN_COST  # overshoot: at most the request in flight


def test_another_runs_spend_stops_this_one_like_ctrl_c(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([*(bash(n, delay=0.5) for n in range(20)), text("all done", usage=TURN)])
    proc = launch(claude_bin, claude_home, api, "--budget-daily", "5.00")
    flight = inflight.InflightFile(claude_home / "ledger.jsonl")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(api.served) < 2:
        time.sleep(0.05)
    assert flight.read().live(), "the run has no entry in the in-flight file"
    with flight.locked() as state:  # another run going (this test's process: alive) that spent $4.99
        state.runs["other"] = inflight.Entry(
            os.getpid(), inflight.host(), iso_utc(time.time()), None, {}, 4.99, 0.0, time.time(), state.seq
        )
    _, err = proc.communicate(timeout=120)
    rec = ledger_records(claude_home)[-1]
    assert (proc.returncode, rec["status"], rec["exit_code"]) == (76, "budget_exceeded", 76), err
    assert b"daily budget reached" in err
    assert len(api.messages_requests()) < 21
    assert rec["cost_usd"] == pytest.approx(api.list_cost(), rel=1e-6)  # what it spent, stopped mid-way
    with flight.locked() as state:
        state.runs.pop("other")
    assert flight.read().live() == {}
