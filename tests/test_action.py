"""The GitHub Action (action.yml): its steps run here in a simulated runner, against a fake `claude`.

The fake replays a recorded Claude Code 2.1.330 tool run (tests/support/ci_data/stream-tool.jsonl),
so every figure checked comes from that sample's `result` event. claude-code-action, for the
execution-file mode, is faked by a step that writes the same run as its execution file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from support.ci_helpers import (
    SAMPLE,
    base_env,
    execution_file_from,
    make_bin,
    make_recorder,
    sample_result,
)
from support.ci_simulate import REPO_ROOT, GitHubRun, Simulation, StepResult, load_yaml, run_github_workflow

ACTION = REPO_ROOT / "action.yml"
EXAMPLES = REPO_ROOT / "examples" / "ci"
RESULT = sample_result()
USAGE: dict[str, int] = RESULT["usage"]  # type: ignore[assignment]
TOKENS = {
    "input": USAGE["input_tokens"],
    "output": USAGE["output_tokens"],
    "cache_read": USAGE["cache_read_input_tokens"],
    "cache_creation": USAGE["cache_creation_input_tokens"],
}
COST = float(RESULT["total_cost_usd"])  # type: ignore[arg-type]
REQUIRED_OUTPUTS = (
    "cost_usd",
    "session_id",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "status",
    "result_file",
)


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Any]:
    bindir = make_bin(tmp_path)
    calls = tmp_path / "calls.jsonl"
    make_recorder(bindir, "gh", calls)
    env = base_env(tmp_path, bindir)
    env["CI_FAKE_CLAUDE_MARKER"] = str(tmp_path / "claude-runs.jsonl")
    return {"tmp": tmp_path, "env": env, "calls": calls, "marker": tmp_path / "claude-runs.jsonl"}


def _sim(sandbox: dict[str, Any]) -> Simulation:
    return Simulation(root=sandbox["tmp"] / "sim", env=sandbox["env"])


def _workflow(with_: dict[str, str], *after: dict[str, Any]) -> dict[str, Any]:
    step = {"name": "Claude", "id": "claude", "uses": "./", "with": with_}
    return {"name": "claude", "jobs": {"claude": {"runs-on": "ubuntu-latest", "steps": [step, *after]}}}


def _claude_runs(sandbox: dict[str, Any]) -> list[dict[str, Any]]:
    marker: Path = sandbox["marker"]
    return [json.loads(line) for line in marker.read_text().splitlines()] if marker.exists() else []


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _calls(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _assert_sample_outputs(out: dict[str, str]) -> None:
    assert out["status"] == "success"
    assert (out["input_tokens"], out["output_tokens"]) == (str(TOKENS["input"]), str(TOKENS["output"]))
    assert out["cache_read_tokens"] == str(TOKENS["cache_read"])
    assert out["cache_creation_tokens"] == str(TOKENS["cache_creation"])
    assert float(out["cost_usd"]) == pytest.approx(COST, abs=1e-10)
    assert out["session_id"] == RESULT["session_id"]


def _action_step(sim: Simulation, name: str = "Claude") -> StepResult:
    (step,) = [r for r in sim.results if r.name == name]
    return step


# --- the metadata ------------------------------------------------------------------------------------


def test_action_metadata_declares_what_the_steps_use() -> None:
    meta = load_yaml(ACTION)
    text = ACTION.read_text()
    assert meta["runs"]["using"] == "composite"
    assert set(REQUIRED_OUTPUTS) <= set(meta["outputs"])
    ids = {s.get("id") for s in meta["runs"]["steps"]}
    for name, out in meta["outputs"].items():
        (step_id,) = re.findall(r"steps\.(\w+)\.outputs", out["value"])
        assert step_id in ids, name
    used_inputs = set(re.findall(r"inputs\.(\w+)", text))
    assert used_inputs <= set(meta["inputs"]), used_inputs - set(meta["inputs"])
    assert set(meta["inputs"]) - used_inputs == set(), "declared inputs no step reads"
    for step in meta["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            # Inputs reach the shell through env only: an expression in a script is an injection.
            assert "${{" not in step["run"], step["name"]


def test_every_action_reference_is_pinned_to_a_commit() -> None:
    for path in (ACTION, EXAMPLES / "github-actions.yml", EXAMPLES / "claude-code-action.yml"):
        refs = re.findall(r"^\s*(?:- )?uses:\s*(\S+)(.*)", path.read_text(), re.MULTILINE)
        assert refs
        for ref, rest in refs:
            if ref.startswith("./"):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref}"
            assert re.match(r"\s*# v\d+\.\d+\.\d+", rest), f"{path.name}: {ref} has no version comment"


# --- running a task ------------------------------------------------------------------------------------


def test_prompt_run_outputs_record_and_arguments(sandbox: dict[str, Any]) -> None:
    sim = _sim(sandbox)
    prompt = 'Fix it: don\'t "quote" $HOME `id` $(id) \\\nsecond line'
    wf = _workflow(
        {
            "prompt": prompt,
            "model": "sonnet",
            "claude_args": '--max-turns 20 --allowedTools "Bash Read Grep"',
            "tags": 'team=platform "title=a b"',
            "max_cost": "2.5",
        }
    )
    assert run_github_workflow(sim, wf, GitHubRun()) == {"claude": True}
    step = _action_step(sim)
    _assert_sample_outputs(step.outputs)
    assert step.outputs["exit_code"] == "0"
    assert step.outputs["cost_source"] == "claude"
    assert Path(step.outputs["result_file"]).read_text().strip() == RESULT["result"]
    # The step summary and the summary file hold the same cost table.
    assert f"| Cache read tokens | {TOKENS['cache_read']:,} |" in step.summary
    assert Path(step.outputs["summary_file"]).read_text() in step.summary
    # Claude got the prompt byte for byte on stdin, and the arguments as one would quote them.
    (call,) = _claude_runs(sandbox)
    assert call["task"] == prompt
    argv = call["argv"]
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert argv[argv.index("--allowedTools") + 1] == "Bash Read Grep"
    assert argv[argv.index("--max-turns") + 1] == "20"
    assert argv[argv.index("--max-budget-usd") + 1] == "2.5"
    # The record: in the default ledger, with the job's context and the tags.
    (record,) = _records(Path(step.outputs["ledger"]))
    assert record["id"] == step.outputs["record_id"]
    assert record["tags"] == {"team": "platform", "title": "a b"}
    assert record["tokens"] == {**record["tokens"], **TOKENS}
    assert (record["ci"]["provider"], record["ci"]["job"], record["ci"]["pr"]) == ("github", "claude", 7)
    assert _calls(sandbox["calls"]) == []  # no comment unless asked


def test_prompt_file_budget_refusal_through_the_cached_ledger(sandbox: dict[str, Any]) -> None:
    sim = _sim(sandbox)
    prompt_file = sandbox["tmp"] / "task.md"
    prompt_file.write_text("Review the diff.\n")
    with_ = {
        "prompt_file": str(prompt_file),
        "cache_key": "claude-ledger",
        "budget_daily": f"{COST / 2}",
    }
    # First run: nothing spent yet, so it runs and crosses the budget; its ledger goes to the cache.
    assert run_github_workflow(sim, _workflow(with_), GitHubRun(run_id="1")) == {"claude": True}
    first = _action_step(sim)
    _assert_sample_outputs(first.outputs)
    assert first.outputs["budget_exceeded"] == "true"
    assert _claude_runs(sandbox)[0]["task"] == "Review the diff.\n"
    saved = [p for p in sim.caches.iterdir() if p.name.startswith("claude-ledger-1-1-claude-")]
    assert len(saved) == 1 and len(_records(saved[0] / "ledger.jsonl")) == 1
    # Next workflow run: the ledger is restored, the budget is spent, claude does not start.
    sim.results.clear()
    assert run_github_workflow(sim, _workflow(with_), GitHubRun(run_id="2")) == {"claude": False}
    refused = _action_step(sim)
    assert (refused.outputs["status"], refused.outputs["exit_code"]) == ("refused", "75")
    assert refused.outputs["budget_exceeded"] == "true"
    assert "daily budget exceeded" in refused.stderr
    assert len(_claude_runs(sandbox)) == 1
    # fail_on_error: false lets the job go on, the outputs still say what happened.
    sim.results.clear()
    relaxed = {**with_, "fail_on_error": "false"}
    assert run_github_workflow(sim, _workflow(relaxed), GitHubRun(run_id="3")) == {"claude": True}
    assert _action_step(sim).outputs["status"] == "refused"


def test_pull_request_comment_carries_the_cost_table(sandbox: dict[str, Any]) -> None:
    sim = _sim(sandbox)
    wf = _workflow({"prompt": "Review", "comment_on_pr": "true", "artifact_name": "claude-ledger"})
    assert run_github_workflow(sim, wf, GitHubRun()) == {"claude": True}
    (comment,) = _calls(sandbox["calls"])
    assert comment["args"][:4] == ["pr", "comment", "7", "--repo"]
    assert f"| Input tokens | {TOKENS['input']:,} |" in comment["body"]
    assert "### claude-run: success" in comment["body"]
    # The ledger went up as the artifact, with the one record.
    (record,) = _records(sim.artifacts / "claude-ledger" / "ledger.jsonl")
    assert record["id"] == _action_step(sim).outputs["record_id"]


def test_a_push_event_gets_no_comment(sandbox: dict[str, Any]) -> None:
    sim = _sim(sandbox)
    wf = _workflow({"prompt": "Review", "comment_on_pr": "true"})
    assert run_github_workflow(sim, wf, GitHubRun(event_name="push")) == {"claude": True}
    assert _calls(sandbox["calls"]) == []
    assert [r.kind for r in sim.results if r.name.endswith("Comment the cost on the pull request")] == [
        "skipped"
    ]


@pytest.mark.parametrize(
    ("with_", "why"),
    [
        ({}, "give exactly one of prompt, prompt_file and execution_file"),
        ({"prompt": "a", "prompt_file": "b"}, "give exactly one of prompt, prompt_file and execution_file"),
        ({"prompt": "a", "claude_args": '--allowedTools "Bash'}, "unbalanced quotes"),
        ({"prompt_file": "/nonexistent/task.md"}, "prompt_file not found"),
    ],
)
def test_bad_inputs_fail_the_action_with_one_message(
    sandbox: dict[str, Any], with_: dict[str, str], why: str
) -> None:
    sim = _sim(sandbox)
    assert run_github_workflow(sim, _workflow(with_), GitHubRun()) == {"claude": False}
    step = _action_step(sim)
    assert why in step.stdout
    assert _claude_runs(sandbox) == []


# --- importing claude-code-action's execution file -----------------------------------------------------


def _fake_claude_code_action(stream: Path) -> Any:
    def run(with_: dict[str, str], workspace: Path, temp: Path) -> dict[str, str]:
        assert with_["anthropic_api_key"] == "sk-ant-fake"
        path = execution_file_from(stream, temp / "claude-execution-output.json")
        return {"execution_file": str(path), "conclusion": "success", "session_id": RESULT["session_id"]}

    return run


def test_claude_code_action_example_imports_the_execution_file(sandbox: dict[str, Any]) -> None:
    sim = _sim(sandbox)
    sim.fake_actions["anthropics/claude-code-action"] = _fake_claude_code_action(SAMPLE)
    workflow = load_yaml(EXAMPLES / "claude-code-action.yml")
    assert run_github_workflow(sim, workflow, GitHubRun()) == {"review": True}
    step = _action_step(sim, "Record the run in the ledger")
    _assert_sample_outputs(step.outputs)
    assert step.outputs["exit_code"] == "0" and step.outputs["result_file"] == ""
    assert _claude_runs(sandbox) == []  # nothing ran: the run was claude-code-action's
    assert [r.kind for r in sim.results if r.name.endswith("/ Install Claude Code")] == ["skipped"]
    used = _action_step(sim, "Use the figures")
    assert f"ended success, ${step.outputs['cost_usd']}, {TOKENS['input']} in" in used.stdout
    (record,) = _records(sim.artifacts / "claude-run-ledger" / "ledger.jsonl")
    assert (record["mode"], record["source"], record["status"]) == ("imported", "execution-file", "success")
    assert record["tags"] == {"workflow": "review", "team": "platform"}
    ci = record["ci"]
    assert (ci["provider"], ci["job"], ci["run_id"]) == ("github", "review", "9001")
    (comment,) = _calls(sandbox["calls"])
    assert f"| Output tokens | {TOKENS['output']:,} |" in comment["body"]

    # The workflow runs again (a re-run, the same file): the cached ledger has the session already.
    sim.results.clear()
    assert run_github_workflow(sim, workflow, GitHubRun(run_id="9002")) == {"review": True}
    again = _action_step(sim, "Record the run in the ledger")
    assert again.outputs["status"] == "" and again.outputs["exit_code"] == "0"
    assert "1 already in the ledger" in again.stderr
    assert [r.kind for r in sim.results if r.name == "Use the figures"] == ["skipped"]
    newest = max(sim.caches.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert len(_records(newest / "ledger.jsonl")) == 1
    assert len(_calls(sandbox["calls"])) == 1  # nothing new to comment on


def test_a_malformed_execution_file_fails_the_step_and_writes_nothing(sandbox: dict[str, Any]) -> None:
    sim = _sim(sandbox)
    bad = sandbox["tmp"] / "claude-execution-output.json"
    text = json.dumps([json.loads(line) for line in SAMPLE.read_text().splitlines()], indent=2)
    bad.write_text(text[: len(text) // 2])  # an upload cut short
    ledger = sandbox["tmp"] / "ledger.jsonl"
    wf = _workflow({"execution_file": str(bad), "ledger": str(ledger)})
    assert run_github_workflow(sim, wf, GitHubRun()) == {"claude": False}
    step = _action_step(sim)
    assert step.outputs["exit_code"] == "65"
    assert f"cannot import {bad}: not valid JSON, truncated?" in step.stderr
    assert "Traceback" not in step.stderr
    assert not ledger.exists() or ledger.read_text() == ""


def test_a_failed_comment_is_a_warning_not_a_failed_run(sandbox: dict[str, Any]) -> None:
    gh = Path(sandbox["env"]["PATH"].split(":")[0]) / "gh"
    gh.write_text("#!/bin/sh\necho 'HTTP 403: Resource not accessible by integration' >&2\nexit 1\n")
    sim = _sim(sandbox)
    wf = _workflow({"prompt": "Review", "comment_on_pr": "true"})
    assert run_github_workflow(sim, wf, GitHubRun()) == {"claude": True}
    step = _action_step(sim)
    assert step.outputs["status"] == "success"
    assert "::warning title=claude-run action::could not comment on pull request #7" in step.stdout
