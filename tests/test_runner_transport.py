"""The runner through its transport seam: real CLI output replayed from memory, no process.

The figures are the usage the mock API really served (the samples' truth.jsonl) and the list
prices the samples' README states, not what the code under test computes.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_run.record.ids import new_id
from claude_run.run import runner
from claude_run.run.launch import Started
from claude_run.run.modes import Invocation
from claude_run.run.transport import MemoryTransport

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "claude-code-2.1.330"
if not SAMPLES.is_dir():
    SAMPLES = Path("/work/shared/samples/claude-code-2.1.330")
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="the recorded CLI samples are not here")

# claude-sonnet-4-5 list prices per million tokens (samples README): input, output, cache write 5m, read.
PRICE = {"input": 3.0, "output": 15.0, "cache_creation": 3.75, "cache_read": 0.30}


def truth(*ns: int) -> dict[str, int]:
    rows = [json.loads(line) for line in (SAMPLES / "truth.jsonl").read_text().splitlines()]
    picked = [r for r in rows if r["n"] in ns]
    assert len(picked) == len(ns)
    return {k: sum(r[k] for r in picked) for k in ("input", "output", "cache_read", "cache_creation")}


def lines(name: str) -> list[bytes]:
    return [line for line in (SAMPLES / name).read_bytes().splitlines() if line.strip()]


def follow(tmp_path: Path, transport: MemoryTransport, **opts: Any) -> dict[str, Any]:
    started = Started(
        "non-interactive",
        Invocation(["claude", "-p"], {"HOME": str(tmp_path)}, b""),
        None,  # type: ignore[arg-type]  # no process: the transport is the child
        time.time(),
        time.monotonic(),
        new_id(),
    )
    options = runner.RunOptions(
        task="say hello", mode="non-interactive", quiet=True, cwd=str(tmp_path), **opts
    )
    session = runner.Session(started, options, transport)
    anyio.run(session.run)
    return runner.build_run_record(started, session, time.time())


def test_a_finished_run_records_what_the_api_served(tmp_path: Path) -> None:
    rec = follow(tmp_path, MemoryTransport(lines("stream-tool.jsonl")))
    served = truth(2, 3)  # the tool run made requests 2 and 3
    assert {k: rec["tokens"][k] for k in served} == served
    result = json.loads(lines("stream-tool.jsonl")[-1])
    assert rec["cost_usd"] == result["total_cost_usd"] and rec["cost_source"] == "claude"
    assert (rec["status"], rec["exit_code"], rec["num_turns"]) == ("success", 0, 2)
    assert rec["source"] == "run" and rec["claude_run_version"]
    assert rec["model"] == "claude-sonnet-4-5"


def test_a_run_that_never_reached_its_result_is_estimated_from_the_events(tmp_path: Path) -> None:
    partial = [line for line in lines("stream-partial.jsonl") if b'"type":"result"' not in line]
    assert len(partial) == len(lines("stream-partial.jsonl")) - 1
    rec = follow(tmp_path, MemoryTransport(partial, returncode=-signal.SIGKILL))
    served = truth(4)
    assert {k: rec["tokens"][k] for k in served} == served  # message_delta's final output count
    assert rec["cost_source"] == "estimate"
    expected = sum(served[k] * PRICE[k] for k in served) / 1e6
    assert rec["cost_usd"] == pytest.approx(expected, abs=1e-12)
    assert rec["status"] == "crashed" and rec["exit_code"] != 0


def test_an_api_error_is_an_error_with_claudes_exit_code(tmp_path: Path) -> None:
    rec = follow(tmp_path, MemoryTransport(lines("stream-error-400.jsonl"), returncode=1))
    assert (rec["status"], rec["exit_code"], rec["api_error_status"]) == ("error", 1, 400)


def test_a_budget_stop_by_claude_is_budget_exceeded(tmp_path: Path) -> None:
    rec = follow(tmp_path, MemoryTransport(lines("stream-budget.jsonl"), returncode=1))
    assert rec["status"] == "budget_exceeded"


def test_non_json_output_is_counted_not_fatal(tmp_path: Path) -> None:
    noisy = [b"npm WARN something", *lines("stream-text.jsonl"), b"{not json"]
    rec = follow(tmp_path, MemoryTransport(noisy))
    assert rec["status"] == "success"
    assert any("2 non-JSON line(s)" in note for note in rec["notes"])


def test_a_timeout_stops_claude_with_sigterm_and_exits_124(tmp_path: Path) -> None:
    head = lines("stream-text.jsonl")[:1]  # init, then claude hangs
    transport = MemoryTransport(head, stay=True)
    rec = follow(tmp_path, transport, timeout=0.05, kill_grace=0.05)
    assert (rec["status"], rec["exit_code"]) == ("timeout", 124)
    assert transport.signals == [signal.SIGTERM]


def test_a_child_that_ignores_sigterm_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "TERM_GRACE_S", 0.05)
    transport = MemoryTransport(lines("stream-text.jsonl")[:1], stay=True, ignore_signals=[signal.SIGTERM])
    rec = follow(tmp_path, transport, timeout=0.05, kill_grace=0.05)
    assert transport.signals == [signal.SIGTERM, signal.SIGTERM, signal.SIGKILL]
    assert rec["status"] == "timeout"
    assert "claude did not stop in time and was killed" in rec["notes"]
