"""The CI examples are real: their shell steps run here, in a simulated CI, against a fake `claude`.

The fake replays a recorded Claude Code 2.1.330 tool run (tests/support/ci_data/stream-tool.jsonl),
so every figure checked below comes from that sample's `result` event. Steps that call
`claude-run ledger merge/summary` need those commands (built on other branches): while they are
missing, the tests check everything up to that step and then skip, saying so.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from claude_run.ci.outputs import parse_outputs
from support.ci_helpers import base_env, make_bin, make_recorder, sample_result
from support.ci_simulate import (
    GitHubRun,
    GitLabPipeline,
    Simulation,
    StopSimulation,
    load_yaml,
    run_github_workflow,
    run_gitlab_pipeline,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "ci"
RESULT = sample_result()
USAGE: dict[str, int] = RESULT["usage"]  # type: ignore[assignment]
TOKENS = {
    "input": USAGE["input_tokens"],
    "output": USAGE["output_tokens"],
    "cache_read": USAGE["cache_read_input_tokens"],
    "cache_creation": USAGE["cache_creation_input_tokens"],
}
COST = float(RESULT["total_cost_usd"])  # type: ignore[arg-type]


def _ledger_commands(env: dict[str, str]) -> str | None:
    """None when `claude-run ledger merge` and `summary` exist here, else why not."""
    for cmd in ("merge", "summary"):
        proc = subprocess.run(
            ["claude-run", "ledger", cmd, "--help"], env=env, capture_output=True, text=True, timeout=60
        )
        if proc.returncode != 0:
            return f"`claude-run ledger {cmd}` is not on this branch yet (exit {proc.returncode})"
    return None


@functools.cache
def _missing_reason(tmp: str) -> str | None:
    path = Path(tmp)
    return _ledger_commands(base_env(path, make_bin(path)))


def _calls(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sum_tokens(records: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(r["tokens"][k] for r in records) for k in TOKENS}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("ci-examples")
    bindir = make_bin(tmp)
    calls = tmp / "calls.jsonl"
    make_recorder(bindir, "gh", calls)
    make_recorder(bindir, "curl", calls)
    env = base_env(tmp, bindir)
    env["CI_FAKE_CLAUDE_MARKER"] = str(tmp / "claude-runs.jsonl")
    return {"tmp": tmp, "env": env, "calls": calls, "missing": _ledger_commands(env)}


def _simulation(root: Path, env: dict[str, str], missing: str | None) -> Simulation:
    def before_step(script: str) -> None:
        if missing and "claude-run ledger" in script:
            raise StopSimulation(missing)

    return Simulation(root=root, env=env, before_step=before_step)


def test_every_shell_step_is_valid_bash() -> None:
    scripts = []
    for name in ("github-actions.yml", "claude-code-action.yml"):
        gh = load_yaml(EXAMPLES / name)
        scripts += [s["run"] for job in gh["jobs"].values() for s in job["steps"] if "run" in s]
    action = load_yaml(EXAMPLES.parent.parent / "action.yml")
    scripts += [s["run"] for s in action["runs"]["steps"] if "run" in s]
    scripts += [p.read_text() for p in sorted((EXAMPLES.parent.parent / "action").glob("*.sh"))]
    gl = load_yaml(EXAMPLES / "gitlab-ci.yml")
    for job in gl.values():
        if isinstance(job, dict):
            for key in ("before_script", "script"):
                if key in job:
                    scripts.append("\n".join(job[key]))
    scripts.append((EXAMPLES / "claude-run-ci.sh").read_text())
    assert len(scripts) >= 8
    for script in scripts:
        proc = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
        assert proc.returncode == 0, f"{proc.stderr}\n{script}"


# --- GitHub Actions ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def github(sandbox: dict[str, Any]) -> dict[str, Any]:
    sim = _simulation(sandbox["tmp"] / "github", sandbox["env"], sandbox["missing"])
    workflow = load_yaml(EXAMPLES / "github-actions.yml")
    stopped = None
    try:
        outcome = run_github_workflow(sim, workflow, GitHubRun())
    except StopSimulation as exc:
        stopped, outcome = str(exc), {}
    return {"sim": sim, "workflow": workflow, "stopped": stopped, "outcome": outcome}


@pytest.mark.parametrize("task", ["review", "tests"])
def test_github_matrix_job_runs_records_and_writes_outputs(github: dict[str, Any], task: str) -> None:
    sim: Simulation = github["sim"]
    jobs = [r for r in sim.results if r.job == "claude"]
    # The claude-run action (action.yml) installs claude-run and Claude Code, once per matrix job.
    installs = [r.kind for r in jobs if r.name.startswith("Run the task / Install")]
    assert installs == ["install-skipped"] * 4
    # The matrix rows run in order; pick this task's steps by the outputs' record.
    runs = [r for r in jobs if r.name == "Run the task"]
    assert len(runs) == 2
    run = runs[["review", "tests"].index(task)]
    assert run.returncode == 0, run.stderr
    assert run.kind == "uses" and run.outputs["exit_code"] == "0"
    assert Path(run.outputs["result_file"]).read_text().strip() == RESULT["result"]
    out = run.outputs
    assert out["status"] == "success"
    assert (out["input_tokens"], out["output_tokens"]) == (str(TOKENS["input"]), str(TOKENS["output"]))
    assert out["cache_read_tokens"] == str(TOKENS["cache_read"])
    assert out["cache_creation_tokens"] == str(TOKENS["cache_creation"])
    assert float(out["cost_usd"]) == pytest.approx(COST, abs=1e-10)
    assert out["session_id"] == RESULT["session_id"]
    assert out["budget_exceeded"] == "false"
    assert f"| Cache read tokens | {TOKENS['cache_read']:,} |" in run.summary
    assert "| Daily budget | ok: $0.0" in run.summary
    used = [r for r in jobs if r.name == "Use the step outputs"][["review", "tests"].index(task)]
    assert (
        f"{task} ended success, ${out['cost_usd']}, {TOKENS['input']} in / {TOKENS['output']} out"
        in used.stdout
    )
    assert f"Claude said: {RESULT['result']}" in used.stdout
    # The artifact holds exactly this job's run, with its tags and GitHub context.
    art = sim.root / "artifacts" / "gh-9001-1" / f"claude-run-ledger-{task}" / "ledger.jsonl"
    (record,) = _records(art)
    assert record["id"] == out["record_id"]
    assert record["tags"] == {"task": task, "team": "platform"}
    assert record["tokens"] == {**record["tokens"], **TOKENS}
    ci = record["ci"]
    assert (ci["provider"], ci["workflow"], ci["job"], ci["run_id"], ci["pr"], ci["branch"]) == (
        "github",
        "claude",
        "claude",
        "9001",
        7,
        "fix-tests",
    )
    assert ci["url"] == "https://github.com/acme/widgets/actions/runs/9001"


def test_github_claude_args_reach_claude(sandbox: dict[str, Any], github: dict[str, Any]) -> None:
    runs = [
        json.loads(line) for line in Path(sandbox["env"]["CI_FAKE_CLAUDE_MARKER"]).read_text().splitlines()
    ]
    review = "Review the changes on this branch against main and list concrete problems."
    mine = [r["argv"] for r in runs if r["task"] == review]
    assert mine, runs
    argv = mine[0]
    assert argv[argv.index("--allowedTools") + 1] == "Bash Read Grep Glob"
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert argv[argv.index("--max-turns") + 1] == "20"


def test_github_report_merges_posts_and_carries_the_budget(
    sandbox: dict[str, Any], github: dict[str, Any]
) -> None:
    if github["stopped"]:
        pytest.skip(f"report job not run: {github['stopped']}")
    sim: Simulation = github["sim"]
    assert github["outcome"] == {"claude": True, "report": True}
    report_ws = sim.root / "runners" / "gh-9001-1" / "report-0" / "workspace"
    merged = _records(report_ws / "this-run.jsonl")
    assert len(merged) == 2
    assert _sum_tokens(merged) == {k: 2 * v for k, v in TOKENS.items()}
    step = sim.result("report", "Merge the ledgers and summarize")
    assert "Claude Code cost of claude run 9001" in step.summary
    (comment,) = [c for c in _calls(sandbox["calls"]) if c["cmd"] == "gh"]
    assert comment["args"] == ["pr", "comment", "7", "--repo", "acme/widgets", "--body-file", "summary.md"]
    assert "Claude Code cost of claude run 9001" in comment["body"]
    history = sim.root / "caches" / "claude-run-history-9001-1" / "ledger.jsonl"
    assert len(_records(history)) == 2

    # The next workflow run restores that history: with the budget below its spend, both jobs are
    # refused (exit 75) before claude starts, and say so in their outputs.
    marker = Path(sandbox["env"]["CI_FAKE_CLAUDE_MARKER"])
    spawned = len(marker.read_text().splitlines())
    sim.results.clear()
    outcome = run_github_workflow(
        sim,
        github["workflow"],
        GitHubRun(run_id="9002", overrides={"DAILY_BUDGET_USD": f"{2 * COST - 0.001}"}),
    )
    assert outcome["claude"] is False
    runs = [r for r in sim.results if r.name == "Run the task"]
    assert [r.outputs["exit_code"] for r in runs] == ["75", "75"]
    assert all(r.returncode != 0 for r in runs)  # fail_on_error: the action fails the job
    assert all(r.outputs["status"] == "refused" and r.outputs["budget_exceeded"] == "true" for r in runs)
    assert "daily budget exceeded for team=platform" in runs[0].stderr
    assert len(marker.read_text().splitlines()) == spawned


# --- GitLab CI ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gitlab(sandbox: dict[str, Any]) -> dict[str, Any]:
    sim = _simulation(sandbox["tmp"] / "gitlab", sandbox["env"], sandbox["missing"])
    pipeline = load_yaml(EXAMPLES / "gitlab-ci.yml")
    stopped = None
    try:
        outcome = run_gitlab_pipeline(sim, pipeline, GitLabPipeline(extra={"GITLAB_API_TOKEN": "glpat-fake"}))
    except StopSimulation as exc:
        stopped, outcome = str(exc), {}
    return {"sim": sim, "stopped": stopped, "outcome": outcome}


def test_gitlab_matrix_jobs_record_and_write_dotenv(gitlab: dict[str, Any]) -> None:
    sim: Simulation = gitlab["sim"]
    runs = [r for r in sim.results if r.job.startswith("claude: [")]
    assert len(runs) == 2
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert f"CLAUDE_RUN_CACHE_READ_TOKENS={TOKENS['cache_read']}" in r.stdout  # `cat claude-run.env`
    ledgers = sorted((sim.artifacts / "claude").glob("claude-*/ledgers/*.jsonl"))
    assert len(ledgers) == 2  # one file per job id: they do not overwrite each other downstream
    records = [rec for path in ledgers for rec in _records(path)]
    assert sorted(r["tags"]["task"] for r in records) == ["review", "tests"]
    assert _sum_tokens(records) == {k: 2 * v for k, v in TOKENS.items()}
    ci = records[0]["ci"]
    assert (ci["provider"], ci["run_id"], ci["pr"], ci["branch"]) == ("gitlab", "4242", 12, "fix-tests")
    assert ci["job"].startswith("claude: [")
    dotenv = sorted((sim.root / "dotenv").glob("claude-*.env"))
    assert len(dotenv) == 2
    values = parse_outputs(dotenv[0].read_text())
    assert float(values["CLAUDE_RUN_COST_USD"]) == pytest.approx(COST, abs=1e-10)
    assert values["CLAUDE_RUN_STATUS"] == "success"


def test_gitlab_report_merges_and_posts(sandbox: dict[str, Any], gitlab: dict[str, Any]) -> None:
    if gitlab["stopped"]:
        pytest.skip(f"report job not run: {gitlab['stopped']}")
    sim: Simulation = gitlab["sim"]
    assert gitlab["outcome"] == {"claude": True, "claude-report": True}
    work = sim.root / "runners" / "gl-4242" / "claude-report-0" / "project"
    merged = _records(work / "this-pipeline.jsonl")
    assert _sum_tokens(merged) == {k: 2 * v for k, v in TOKENS.items()}
    summary = (work / "summary.md").read_text()
    assert "Claude Code cost of pipeline 4242" in summary
    (post,) = [c for c in _calls(sandbox["calls"]) if c["cmd"] == "curl"]
    assert post["args"][-1] == "https://gitlab.example.com/api/v4/projects/99/merge_requests/12/notes"
    assert "body@summary.md" in post["args"]
    history = sim.caches / "claude-run-history" / ".claude-run" / "history" / "ledger.jsonl"
    assert len(_records(history)) == 2


# --- any other CI: the shell script ---------------------------------------------------------------------


def test_shell_script_under_buildkite(sandbox: dict[str, Any]) -> None:
    work = sandbox["tmp"] / "buildkite"
    work.mkdir()
    env = {
        **sandbox["env"],
        "CI": "true",
        "BUILDKITE": "true",
        "BUILDKITE_PIPELINE_SLUG": "widgets",
        "BUILDKITE_BUILD_NUMBER": "88",
        "BUILDKITE_JOB_ID": "job-1",
        "BUILDKITE_BRANCH": "fix-tests",
        "BUILDKITE_PULL_REQUEST": "5",
        "BUILDKITE_RETRY_COUNT": "0",
        "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/widgets/builds/88",
        "CLAUDE_RUN_TEAM": "platform",
    }
    script = str(EXAMPLES / "claude-run-ci.sh")
    proc = subprocess.run(
        [script, "review", "Review the diff", "--", "--model", "sonnet"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    (record,) = _records(work / "claude-run-out" / "ledger.jsonl")
    assert record["tokens"] == {**record["tokens"], **TOKENS}
    assert record["tags"] == {"task": "review", "team": "platform"}
    assert (record["ci"]["provider"], record["ci"]["pr"], record["ci"]["attempt"]) == ("buildkite", 5, 1)
    assert record["ci"]["url"] == "https://buildkite.com/acme/widgets/builds/88#job-1"
    if sandbox["missing"]:
        assert proc.returncode != 0  # it stops at the missing command, after recording the run
        pytest.skip(f"summary and history not made: {sandbox['missing']}")
    assert proc.returncode == 0, proc.stderr
    assert "Claude Code: review" in (work / "claude-run-out" / "summary.md").read_text()
    assert len(_records(work / ".claude-run" / "history" / "ledger.jsonl")) == 1
    # With the history over the budget, the next build is refused before claude starts.
    again = subprocess.run(
        [script, "review", "Review the diff"],
        cwd=work,
        env={**env, "CLAUDE_RUN_DAILY_BUDGET": f"{COST / 2}", "CLAUDE_RUN_OUT_DIR": "out2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 75, again.stderr
    assert not (work / "out2" / "ledger.jsonl").exists()
