"""`ledger import`: records, idempotence, incremental reads, supersedes, tracked runs, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from claude_run.transcripts.importer import run_import
from support.import_lines import SID, assistant, cost_state, user, write

SRC = Path(__file__).resolve().parents[1] / "src"


def records(ledger: Path) -> list[dict[str, Any]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]


def latest_by_session(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """How reports fold imported records: the last of each session's supersedes chain."""
    superseded = {r["supersedes"] for r in recs if r.get("supersedes")}
    out: dict[str, dict[str, Any]] = {}
    for r in recs:
        if r["id"] not in superseded:
            assert r["session_id"] not in out, "two live records for one session"
            out[r["session_id"]] = r
    return out


def test_first_import_one_record_per_session(tmp_path: Path) -> None:
    ledger = tmp_path / "l" / "ledger.jsonl"
    write(tmp_path, [user(), assistant("m1", "r1"), assistant("m2", "r2", ts="2026-11-20T11:00:00.000Z")])
    other = "99999999-2222-4333-8444-555555555555"
    write(tmp_path, [assistant("m3", "r3", sid=other)], sid=other, project="-home-dev-other")
    result = run_import(ledger, [tmp_path])
    recs = records(ledger)
    assert len(recs) == 2 == len(result.records)
    rec = next(r for r in recs if r["session_id"] == SID)
    assert rec["mode"] == "imported"
    assert rec["source"] == "import"
    assert rec["started_at"] == "2026-11-20T09:59:59.000Z"
    assert rec["ended_at"] == "2026-11-20T11:00:00.000Z"
    assert rec["project"] == "project"
    assert rec["interactive"] is True
    assert rec["supersedes"] is None
    assert rec["tokens"]["input"] == 20


def test_nothing_new_appends_nothing_and_reads_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write(tmp_path, [assistant("m1", "r1")])
    run_import(ledger, [tmp_path])
    before = ledger.read_bytes()
    again = run_import(ledger, [tmp_path])
    assert again.files_read == 0
    assert again.records == []
    assert ledger.read_bytes() == before


def test_append_yields_superseding_record_reading_only_new_bytes(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    path = write(tmp_path, [assistant("m1", "r1", out=1)])
    first_size = path.stat().st_size
    run_import(ledger, [tmp_path])
    # The streamed message grows, and a new one arrives.
    write(tmp_path, [assistant("m1", "r1", out=30), assistant("m2", "r2", out=4)], mode="a")
    second = run_import(ledger, [tmp_path])
    assert second.bytes_read == path.stat().st_size - first_size
    recs = records(ledger)
    assert len(recs) == 2
    assert recs[1]["supersedes"] == recs[0]["id"]
    assert latest_by_session(recs)[SID]["tokens"]["output"] == 34


def test_replaced_or_truncated_transcript_is_read_again(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    path = write(tmp_path, [assistant("m1", "r1"), assistant("m2", "r2")])
    run_import(ledger, [tmp_path])
    # Rewritten shorter (compaction, or a tool rewriting history): the old count must not linger.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(assistant("m1", "r1") + "\n")
    os.replace(tmp, path)
    result = run_import(ledger, [tmp_path])
    assert result.sessions_rebuilt == 1
    live = latest_by_session(records(ledger))
    assert live[SID]["tokens"]["input"] == 10
    # And truncated in place (same inode).
    with open(path, "w") as fh:
        fh.write(assistant("m9", "r9", inp=3) + "\n")
    run_import(ledger, [tmp_path])
    assert latest_by_session(records(ledger))[SID]["tokens"]["input"] == 3


def test_message_copied_into_a_resumed_session_counts_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write(tmp_path, [assistant("m1", "r1", ts="2026-11-20T10:00:00.000Z")])
    resumed = "77777777-2222-4333-8444-555555555555"
    write(
        tmp_path,
        [
            assistant("m1", "r1", ts="2026-11-20T10:00:00.000Z", sid=resumed),
            assistant("m5", "r5", ts="2026-11-21T10:00:00.000Z", sid=resumed),
        ],
        sid=resumed,
    )
    run_import(ledger, [tmp_path])
    live = latest_by_session(records(ledger))
    assert live[SID]["tokens"]["input"] == 10
    assert live[resumed]["tokens"]["input"] == 10  # m5 only
    assert any("another session" in n for n in live[resumed]["notes"])


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write(tmp_path, [assistant("m1", "r1")])
    result = run_import(ledger, [tmp_path], dry_run=True)
    assert len(result.records) == 1
    assert not ledger.exists()
    assert not ledger.with_name(ledger.name + ".import.json").exists()
    assert len(run_import(ledger, [tmp_path]).records) == 1


def test_since_skips_transcripts_written_before(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    old = write(tmp_path, [assistant("m1", "r1")])
    old_time = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()
    os.utime(old, (old_time, old_time))
    new_sid = "88888888-2222-4333-8444-555555555555"
    write(tmp_path, [assistant("m2", "r2", sid=new_sid)], sid=new_sid)
    result = run_import(ledger, [tmp_path], since=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert [r["session_id"] for r in result.records] == [new_sid]
    # Not remembered: a later import without --since still picks the old one up.
    assert [r["session_id"] for r in run_import(ledger, [tmp_path]).records] == [SID]


def test_session_tracked_by_a_claude_run_run_is_not_imported(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(
        json.dumps({"v": 1, "id": "01TRACKED", "mode": "interactive", "session_id": SID}) + "\n"
    )
    write(tmp_path, [assistant("m1", "r1")])
    result = run_import(ledger, [tmp_path])
    assert result.records == []
    assert result.sessions_tracked == [SID]
    write(tmp_path, [assistant("m2", "r2")], mode="a")
    assert run_import(ledger, [tmp_path]).records == []


def test_lost_state_imports_nothing_twice_and_still_supersedes_from_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write(tmp_path, [assistant("m1", "r1")])
    run_import(ledger, [tmp_path])
    for suffix in (".import.json", ".import-sessions.json"):
        ledger.with_name(ledger.name + suffix).unlink()
    assert run_import(ledger, [tmp_path]).records == []  # the ledger holds the session as it is
    write(tmp_path, [assistant("m2", "r2")], mode="a")
    for suffix in (".import.json", ".import-sessions.json"):
        ledger.with_name(ledger.name + suffix).unlink()
    run_import(ledger, [tmp_path])
    recs = records(ledger)
    assert len(recs) == 2
    assert recs[1]["supersedes"] == recs[0]["id"]
    assert latest_by_session(recs)[SID]["tokens"]["input"] == 20


def test_cost_state_appended_later_updates_the_cost(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write(tmp_path, [assistant("m1", "r1")])
    run_import(ledger, [tmp_path])
    usage = {
        "inputTokens": 10,
        "outputTokens": 5,
        "cacheReadInputTokens": 100,
        "cacheCreationInputTokens": 20,
    }
    write(tmp_path, [cost_state({"claude-sonnet-4-5": {**usage, "costUSD": 0.123}})], mode="a")
    run_import(ledger, [tmp_path])
    live = latest_by_session(records(ledger))[SID]
    assert (live["cost_usd"], live["cost_source"]) == (0.123, "claude")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "import", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_dry_run_then_import_then_nothing_new(tmp_path: Path) -> None:
    write(tmp_path, [assistant("m1", "r1")])
    ledger = tmp_path / "ledger.jsonl"
    dry = _cli(str(tmp_path), "--ledger", str(ledger), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert SID in dry.stdout and "would import 1 session" in dry.stderr
    assert not ledger.exists()
    done = _cli(str(tmp_path), "--ledger", str(ledger), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["records"]) == 1
    again = _cli(str(tmp_path), "--ledger", str(ledger), cwd=tmp_path)
    assert "imported 0 session" in again.stderr
    assert len(records(ledger)) == 1


def test_cli_defaults_to_claude_config_dir(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [assistant("m1", "r1")])
    other = "66666666-2222-4333-8444-555555555555"
    write(b, [assistant("m2", "r2", sid=other)], sid=other)
    ledger = tmp_path / "ledger.jsonl"
    env = dict(os.environ, PYTHONPATH=str(SRC), CLAUDE_CONFIG_DIR=f"{a},{b}")
    out = subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "import", "--ledger", str(ledger)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert {r["session_id"] for r in records(ledger)} == {SID, other}


@pytest.mark.parametrize("bad", ["someday", "2026-13-45", "99999999d"])
def test_cli_bad_since_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    out = _cli(str(tmp_path), "--since", bad, "--ledger", str(tmp_path / "l.jsonl"), cwd=tmp_path)
    assert out.returncode == 2
    assert "bad date" in out.stderr or "out of range" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_missing_dir_is_a_usage_error(tmp_path: Path) -> None:
    out = _cli(str(tmp_path / "nope"), "--ledger", str(tmp_path / "l.jsonl"), cwd=tmp_path)
    assert out.returncode == 2
    assert "not a directory" in out.stderr


def test_parallel_read_gives_the_serial_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import claude_run.transcripts.importer as import_run
    from support.import_history import HistorySpec, generate

    generate(tmp_path / "h", HistorySpec(sessions=9, messages=15, header_kb=1))
    serial = run_import(tmp_path / "a.jsonl", [tmp_path / "h"], workers=1)
    monkeypatch.setattr(import_run, "PARALLEL_MIN_BYTES", 0)
    parallel = run_import(tmp_path / "b.jsonl", [tmp_path / "h"], workers=3)

    def strip(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(
            ({k: v for k, v in r.items() if k != "id"} for r in recs), key=lambda r: r["session_id"]
        )

    assert len(serial.records) == 9
    assert strip(parallel.records) == strip(serial.records)


@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_damaged_session_state_means_a_full_reread_not_partial_totals(tmp_path: Path, damage: str) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write(tmp_path, [assistant("m1", "r1")])
    run_import(ledger, [tmp_path])
    sessions_state = ledger.with_name(ledger.name + ".import-sessions.json")
    if damage == "delete":
        sessions_state.unlink()
    else:
        sessions_state.write_text("{not json")
    write(tmp_path, [assistant("m2", "r2")], mode="a")
    run_import(ledger, [tmp_path])
    live = latest_by_session(records(ledger))
    assert live[SID]["tokens"]["input"] == 20  # both messages, not only the appended one


def test_a_dead_worker_costs_time_not_sessions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import claude_run.transcripts.importer as import_run
    from support.import_history import HistorySpec, generate

    generate(tmp_path / "h", HistorySpec(sessions=6, messages=10, header_kb=1))
    monkeypatch.setattr(import_run, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(import_run, "_scan_batch", _die)  # children inherit it (fork)
    read_here: list[str] = []
    scan_task = import_run._scan_task

    def counting(task: Any) -> Any:
        read_here.append(task.path)
        return scan_task(task)

    monkeypatch.setattr(import_run, "_scan_task", counting)
    result = run_import(tmp_path / "l.jsonl", [tmp_path / "h"], workers=2)
    assert len(result.records) == 6
    assert len(read_here) == 6  # every file, the dead child's included, was read by this process


def _die(batch: list[Any]) -> list[Any]:
    os._exit(9)
