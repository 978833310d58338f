"""`claude-run ledger import --execution-file`: claude-code-action's execution files into the ledger.

An execution file is the run's stream-json messages as one JSON array. The figures must be exactly
those a tracked run of the same stream records (the same fold), a re-import must write nothing, and
a malformed or truncated file must be refused in one line with nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.errors import BadInputFile
from claude_run.query.records import iter_selected
from claude_run.transcripts.execution_import import import_execution_files
from claude_run.transcripts.importer import run_import
from support import import_lines
from support.ci_helpers import SAMPLE, base_env, execution_file_from, make_bin, sample_result
from support.claude_cli import run_claude
from support.mock_anthropic import MockApiFactory, Usage, text, tool_use

DATA = SAMPLE.parent
SRC = str(Path(__file__).resolve().parents[1] / "src")
RESULT = sample_result()
SID = str(RESULT["session_id"])
USAGE_FIELDS = (
    "session_id",
    "claude_version",
    "model",
    "tokens",
    "cost_usd",
    "cost_source",
    "models",
    "num_turns",
    "status",
    "subtype",
    "is_error",
    "terminal_reason",
    "api_error_status",
    "duration_api_ms",
    "context",
)
NO_CI: dict[str, str] = {"PATH": os.environ.get("PATH", "")}
GITHUB = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_REPOSITORY": "acme/widgets",
    "GITHUB_WORKFLOW": "claude review",
    "GITHUB_JOB": "review",
    "GITHUB_RUN_ID": "4711",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_REF": "refs/pull/3/merge",
    "GITHUB_HEAD_REF": "fix-it",
}


def _records(ledger: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []


def _exec_file(tmp: Path, stream: Path, name: str = "claude-execution-output.json") -> Path:
    return execution_file_from(stream, tmp / name)


def _cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "import", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**(env or NO_CI), "PYTHONPATH": SRC, "HOME": str(cwd)},
        timeout=120,
    )


def _no_result(tmp: Path) -> Path:
    """The partial-messages run cut before its `result`: what a killed or cancelled action leaves."""
    lines = (DATA / "stream-partial.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line).get("type") != "result"]
    path = tmp / "stream-no-result.jsonl"
    path.write_text("\n".join(kept) + "\n")
    return path


def _without_seen_at(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_seen_at(v) for k, v in value.items() if k != "seen_at"}
    return value


# --- the same figures as a tracked run ------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        "stream-tool.jsonl",
        "stream-text.jsonl",
        "stream-budget.jsonl",
        "stream-error-400.jsonl",
        "stream-multi.jsonl",
        "stream-partial.jsonl",
        "stream-ratelimit-oauth.jsonl",
        "no-result",
    ],
)
def test_import_records_what_a_tracked_run_of_the_same_stream_records(tmp_path: Path, stream: str) -> None:
    path = _no_result(tmp_path) if stream == "no-result" else DATA / stream
    # A tracked run whose claude prints this stream...
    env = {**base_env(tmp_path, make_bin(tmp_path)), "CI_FAKE_CLAUDE_STREAM": str(path)}
    run_ledger = tmp_path / "run.jsonl"
    proc = subprocess.run(
        ["claude-run", "the task", "--track", "--quiet", "--no-telemetry", "--ledger", str(run_ledger)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    (tracked,) = _records(run_ledger)
    assert proc.returncode == tracked["exit_code"], proc.stderr
    # ...and the same stream saved as claude-code-action's execution file, imported.
    ledger = tmp_path / "import.jsonl"
    result = import_execution_files(ledger, [_exec_file(tmp_path, path)], env=NO_CI)
    (imported,) = result.records
    assert _records(ledger) == [imported]
    assert {k: imported.get(k) for k in USAGE_FIELDS} == {k: tracked.get(k) for k in USAGE_FIELDS}
    assert (imported["mode"], imported["source"]) == ("imported", "execution-file")
    assert imported["exit_code"] is None
    # Quota windows: the same figures; seen_at is when the event arrived (a run) or the time of the
    # message before it (a file read later).
    assert _without_seen_at(imported.get("rate_limits")) == _without_seen_at(tracked.get("rate_limits"))
    if stream == "stream-ratelimit-oauth.jsonl":
        assert imported["rate_limits"]["windows"]["five_hour"]["utilization"] == 0.81
        assert imported["rate_limits"]["seen_at"] <= imported["ended_at"]
    if stream == "no-result":
        assert imported["status"] == "crashed" and imported["cost_source"] == "estimate"
        assert imported["tokens"]["output"] > 0  # message_delta's final counts, as the run reads them


def test_figures_are_the_result_events(tmp_path: Path) -> None:
    (rec,) = import_execution_files(tmp_path / "l.jsonl", [_exec_file(tmp_path, SAMPLE)], env=NO_CI).records
    usage = RESULT["modelUsage"]["claude-sonnet-4-5"]  # type: ignore[index]
    assert rec["tokens"]["input"] == usage["inputTokens"]
    assert rec["tokens"]["cache_read"] == usage["cacheReadInputTokens"]
    assert rec["cost_usd"] == RESULT["total_cost_usd"]
    assert (rec["started_at"], rec["ended_at"]) == ("2026-11-23T08:00:27.059Z", "2026-11-23T08:00:27.225Z")
    # Outside CI: no CI context, the project named after the directory claude ran in.
    assert (rec["ci"], rec["project"]) == (None, "project")
    assert "notes" not in rec


def test_in_ci_the_record_gets_the_jobs_context_tags_and_step_outputs(tmp_path: Path) -> None:
    path = _exec_file(tmp_path, SAMPLE)
    ledger = tmp_path / "ledger.jsonl"
    env = {**GITHUB, "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "sum")}
    args = ["--ledger", str(ledger), "--execution-file", str(path), "--tag", "team=platform"]
    proc = _cli(args, tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    (rec,) = _records(ledger)
    assert rec["tags"] == {"team": "platform"}
    ci = rec["ci"]
    assert (ci["provider"], ci["workflow"], ci["job"], ci["run_id"], ci["pr"]) == (
        "github",
        "claude review",
        "review",
        "4711",
        3,
    )
    from claude_run.ci.outputs import parse_outputs

    out = parse_outputs((tmp_path / "out").read_text())
    assert (out["record_id"], out["session_id"], out["status"]) == (rec["id"], SID, "success")
    assert out["input_tokens"] == str(rec["tokens"]["input"])
    assert "| Cache write tokens |" in (tmp_path / "sum").read_text()


def test_no_timestamps_take_the_files_time(tmp_path: Path) -> None:
    messages = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    for m in messages:
        m.pop("timestamp", None)
    path = tmp_path / "x.json"
    path.write_text(json.dumps(messages))
    os.utime(path, (1_800_000_000, 1_800_000_000))
    (rec,) = import_execution_files(tmp_path / "l.jsonl", [path], env=NO_CI).records
    assert rec["ended_at"] == "2027-01-15T08:00:00.000Z"
    assert rec["started_at"] == "2027-01-15T07:59:59.521Z"  # less the result's duration_ms (479)
    assert any("modification time" in n for n in rec["notes"])


# --- a re-import writes nothing --------------------------------------------------------------------------


def test_reimport_of_the_file_or_a_copy_writes_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    first = _exec_file(tmp_path, SAMPLE)
    assert len(import_execution_files(ledger, [first], env=NO_CI).records) == 1
    before = ledger.read_bytes()
    copy = tmp_path / "artifact" / "claude-execution-output.json"
    copy.parent.mkdir()
    shutil.copy(first, copy)
    os.utime(copy, (1_900_000_000, 1_900_000_000))  # downloaded later: another mtime, same run
    again = import_execution_files(ledger, [first, copy], env=NO_CI)
    assert again.records == [] and again.already_imported == [SID, SID]
    assert ledger.read_bytes() == before
    # Two copies in one first import count once.
    other = tmp_path / "other.jsonl"
    assert len(import_execution_files(other, [first, copy], env=NO_CI).records) == 1


def test_another_process_of_the_same_session_is_recorded_beside_it(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    import_execution_files(ledger, [_exec_file(tmp_path, SAMPLE)], env=NO_CI)
    messages = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    for m in messages:  # a resumed process of that session: its own result, other figures
        if m["type"] == "result":
            m["modelUsage"]["claude-sonnet-4-5"]["outputTokens"] += 100
    resumed = tmp_path / "resumed.json"
    resumed.write_text(json.dumps(messages))
    (rec,) = import_execution_files(ledger, [resumed], env=NO_CI).records
    assert rec["supersedes"] is None
    assert len(list(iter_selected(ledger))) == 2


def test_a_tracked_session_is_not_imported(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    tracked = {"v": 1, "id": "01TRACKED", "mode": "non-interactive", "session_id": SID}
    ledger.write_text(json.dumps(tracked) + "\n")
    result = import_execution_files(ledger, [_exec_file(tmp_path, SAMPLE)], env=NO_CI)
    assert (result.records, result.already_tracked) == ([], [SID])
    assert len(_records(ledger)) == 1


def _transcript(tmp: Path) -> Path:
    lines = [
        import_lines.user(sid=SID),
        import_lines.assistant("msg_1", "req_1", inp=200, out=40, sid=SID),
    ]
    import_lines.write(tmp / "claude", lines, sid=SID)
    return tmp / "claude"


def test_execution_file_replaces_an_earlier_transcript_import(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    (transcript_rec,) = run_import(ledger, [_transcript(tmp_path)]).records
    (rec,) = import_execution_files(ledger, [_exec_file(tmp_path, SAMPLE)], env=NO_CI).records
    assert rec["supersedes"] == transcript_rec["id"]
    assert [r["id"] for r in list(iter_selected(ledger))] == [rec["id"]]


def test_transcript_import_leaves_an_imported_execution_file_alone(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    (rec,) = import_execution_files(ledger, [_exec_file(tmp_path, SAMPLE)], env=NO_CI).records
    later = run_import(ledger, [_transcript(tmp_path)])
    assert later.records == [] and later.sessions_tracked == [SID]
    assert [r["id"] for r in list(iter_selected(ledger))] == [rec["id"]]


# --- malformed files: one line, a distinct exit code, nothing written -------------------------------------


def _good_text() -> str:
    return json.dumps([json.loads(line) for line in SAMPLE.read_text().splitlines()], indent=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(_good_text()) - 1))
def test_a_truncated_file_is_refused_and_nothing_is_written(tmp_path: Path, cut: int) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(json.dumps({"v": 1, "id": "01EARLIER", "mode": "non-interactive"}) + "\n")
    before = ledger.read_bytes()
    good = tmp_path / "good.json"
    good.write_text(_good_text())
    bad = tmp_path / "bad.json"
    bad.write_text(_good_text()[:cut])
    with pytest.raises(BadInputFile) as info:
        import_execution_files(ledger, [good, bad], env=NO_CI)  # the good file is not written either
    assert str(bad) in info.value.message and "\n" not in info.value.message
    assert ledger.read_bytes() == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=8,
    )
)
def test_json_that_is_not_a_list_of_messages_is_refused(tmp_path: Path, value: Any) -> None:
    is_messages = isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("type"), str) for m in value
    )
    path = tmp_path / "x.json"
    path.write_text(json.dumps(value))
    ledger = tmp_path / "never.jsonl"
    if is_messages:  # objects with a type but no session id: a few are fine, none is an empty import
        if not value:
            assert import_execution_files(ledger, [path], env=NO_CI).records == []
            return
        if any(isinstance(m.get("session_id"), str) and m["session_id"] for m in value):
            return
    with pytest.raises(BadInputFile):
        import_execution_files(ledger, [path], env=NO_CI)
    assert not ledger.exists()


def test_cli_refuses_a_truncated_file_in_one_line_with_exit_65(tmp_path: Path) -> None:
    good = _exec_file(tmp_path, SAMPLE)
    bad = tmp_path / "cut.json"
    bad.write_text(_good_text()[:1000])
    ledger = tmp_path / "ledger.jsonl"
    args = ["--ledger", str(ledger), "--execution-file", str(good), "--execution-file", str(bad)]
    proc = _cli(args, tmp_path)
    assert proc.returncode == 65
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"claude-run: cannot import {bad}:")
    assert "truncated" in proc.stderr
    assert not ledger.exists()


def test_cli_globs_and_usage_errors(tmp_path: Path) -> None:
    for n in (1, 2):
        _exec_file(tmp_path / f"job-{n}", DATA / ("stream-tool.jsonl" if n == 1 else "stream-text.jsonl"))
    ledger = tmp_path / "ledger.jsonl"
    pattern = str(tmp_path / "**" / "claude-execution-output.json")
    dry = _cli(["--ledger", str(ledger), "--execution-file", pattern, "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("\n") == 2 and not ledger.exists()
    proc = _cli(["--ledger", str(ledger), "--execution-file", pattern, "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["files"], len(out["records"])) == (2, 2)
    assert [r["id"] for r in _records(ledger)] == out["records"]
    for args, message in [
        (["--execution-file", str(tmp_path / "nothing-*.json")], "no execution file matches"),
        (["--execution-file", str(tmp_path / "missing.json")], "no such execution file"),
        (["--execution-file", pattern, "--tag", "bad tag"], "bad --tag"),
        (["--execution-file", pattern, str(tmp_path)], "--execution-file reads only the files given"),
        (["--tag", "a=b", str(tmp_path)], "--tag applies to --execution-file imports"),
    ]:
        proc = _cli(["--ledger", str(ledger), *args], tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and proc.stderr.count("\n") == 1


# --- end to end: an execution file from the real CLI --------------------------------------------------


@pytest.mark.e2e
def test_execution_file_from_the_real_cli_imports_the_mocks_usage(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory, tmp_path: Path
) -> None:
    """A tool run (two API requests), saved the way claude-code-action saves it, imports exactly."""
    u1 = Usage(input=85, cache_creation_5m=1526, cache_read=4202, output=19)
    u2 = Usage(input=122, cache_creation_5m=1000, cache_creation_1h=539, cache_read=4303, output=26)
    api = mock_api([tool_use("Bash", {"command": "echo tool-ran"}, usage=u1), text("done", usage=u2)])
    run = run_claude(
        claude_bin,
        "run echo",
        home=claude_home,
        api_url=api.url,
        cwd=claude_home / "project",
        args=("--allowedTools", "Bash"),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    path = tmp_path / "claude-execution-output.json"
    path.write_text(json.dumps(run.events, indent=2))  # JSON.stringify(messages, null, 2)
    ledger = tmp_path / "ledger.jsonl"
    proc = _cli(["--ledger", str(ledger), "--execution-file", str(path)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (rec,) = _records(ledger)
    served = api.total_usage()
    assert len(api.served) == 2
    assert rec["tokens"] == {
        "input": served.input,
        "output": served.output,
        "cache_read": served.cache_read,
        "cache_creation": served.cache_creation,
        "cache_creation_5m": served.cache_creation_5m,
        "cache_creation_1h": served.cache_creation_1h,
    }
    assert rec["cost_usd"] == pytest.approx(api.list_cost(), rel=1e-9)
    assert (rec["session_id"], rec["num_turns"], rec["status"]) == (run.result["session_id"], 2, "success")
    again = _cli(["--ledger", str(ledger), "--execution-file", str(path)], tmp_path)
    assert again.returncode == 0 and "1 already in the ledger" in again.stderr
    assert len(_records(ledger)) == 1
