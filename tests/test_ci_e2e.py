"""A CI step with the REAL Claude Code CLI against the mock Messages API: outputs, summary, budgets.

The figures checked are the mock's: what it served (tokens) and their list price (Claude's cost).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from claude_run.ci.outputs import parse_outputs
from support.claude_cli import claude_env
from support.mock_anthropic import MockAnthropic, MockApiFactory, Usage, list_cost, text

pytestmark = pytest.mark.e2e

SRC = str(Path(__file__).resolve().parents[1] / "src")
USAGE = Usage(input=122, cache_creation_5m=1000, cache_creation_1h=539, cache_read=4303, output=26)


def _step(
    claude_bin: Path, home: Path, api: MockAnthropic, n: int, *args: str
) -> subprocess.CompletedProcess[str]:
    """One GitHub Actions step: fresh output and summary files, GitHub's variables."""
    env = claude_env(home, api.url)
    env.update(
        {
            "PYTHONPATH": SRC,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "acme/widgets",
            "GITHUB_RUN_ID": "31337",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_WORKFLOW": "claude",
            "GITHUB_JOB": "review",
            "GITHUB_REF": "refs/pull/9/merge",
            "GITHUB_HEAD_REF": "fix-tests",
            "GITHUB_OUTPUT": str(home / f"output-{n}"),
            "GITHUB_STEP_SUMMARY": str(home / f"summary-{n}"),
        }
    )
    return subprocess.run(
        [
            *(sys.executable, "-m", "claude_run", "--claude-bin", str(claude_bin), "--track"),
            *("--ledger", str(home / "ledger.jsonl"), *args, "--", "--model", "claude-sonnet-4-5"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=home / "project",
        timeout=120,
    )


def test_ci_step_outputs_and_budget_with_the_real_cli(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([text("first line\nsecond line", usage=USAGE), text("again", usage=USAGE)])
    one_run = list_cost("claude-sonnet-4-5", USAGE)
    budget = f"{one_run * 1.5:.6f}"  # room for one run, not for two
    proc = _step(claude_bin, claude_home, api, 1, "say two lines", "--budget-daily", budget)
    assert proc.returncode == 0, proc.stderr
    first_cost = api.list_cost()  # of what the mock served
    assert first_cost == pytest.approx(one_run, rel=1e-9)
    out = parse_outputs((claude_home / "output-1").read_text())
    served = api.total_usage()
    assert (out["input_tokens"], out["output_tokens"]) == (str(served.input), str(served.output))
    assert (out["cache_read_tokens"], out["cache_creation_tokens"]) == (
        str(served.cache_read),
        str(served.cache_creation),
    )
    assert float(out["cost_usd"]) == pytest.approx(first_cost, rel=1e-9)
    assert out["status"] == "success" and out["cost_source"] == "claude"
    assert out["result"] == "first line\nsecond line"  # the multiline form, read back as the runner does
    assert out["budget_exceeded"] == "false"
    summary = (claude_home / "summary-1").read_text()
    assert f"| Cache read tokens | {served.cache_read:,} |" in summary

    # The second step gets what is left as claude's --max-budget-usd and crosses it: claude stops
    # itself (issue 14), the step says so.
    crossing = _step(claude_bin, claude_home, api, 3, "say two lines", "--budget-daily", budget)
    assert crossing.returncode == 76, crossing.stderr
    out = parse_outputs((claude_home / "output-3").read_text())
    assert (out["status"], out["budget_exceeded"]) == ("budget_exceeded", "true")
    assert "daily budget reached" in crossing.stderr
    assert "| Daily budget | ⚠️ **reached**" in (claude_home / "summary-3").read_text()
    record, _ = [orjson.loads(line) for line in (claude_home / "ledger.jsonl").read_bytes().splitlines()]
    assert record["id"] == parse_outputs((claude_home / "output-1").read_text())["record_id"]
    assert record["ci"]["provider"] == "github" and record["ci"]["pr"] == 9
    assert record["ci"]["url"] == "https://github.com/acme/widgets/actions/runs/31337"

    # The next step is refused before claude starts: the mock sees no new request.
    requests = len(api.messages_requests())
    again = _step(claude_bin, claude_home, api, 2, "say two lines", "--budget-daily", budget)
    assert again.returncode == 75
    assert again.stderr.count("\n") == 1 and "daily budget exceeded" in again.stderr
    assert len(api.messages_requests()) == requests
    refused = parse_outputs((claude_home / "output-2").read_text())
    assert (refused["status"], refused["budget_exceeded"]) == ("refused", "true")
