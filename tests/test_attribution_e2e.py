"""The REAL Claude Code CLI runs a subagent on another model; the record's attribution per agent
equals what the mock served to each agent, and `ledger savings` reprices it exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from support.claude_cli import claude_env
from support.mock_anthropic import (
    LIST_PRICES,
    MockAnthropic,
    MockApiFactory,
    Usage,
    list_cost,
    text,
    tool_use,
)

pytestmark = pytest.mark.e2e

SRC = str(Path(__file__).resolve().parents[1] / "src")
SONNET, HAIKU, OPUS = "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"
U1 = Usage(input=85, cache_creation_5m=1526, cache_read=4202, output=19)
U2 = Usage(input=122, cache_creation_5m=1000, cache_creation_1h=539, cache_read=4303, output=26)
U3 = Usage(input=57, cache_creation_1h=300, cache_read=700, output=15)
U4 = Usage(input=11, cache_read=500, output=7)
SPAWN = {
    "description": "say a word",
    "prompt": "Run echo banana.",
    "subagent_type": "general-purpose",
    "model": "haiku",
    "run_in_background": False,  # foreground: the requests come in a fixed order
}


def script() -> list[Any]:
    """The main agent (Sonnet) spawns a subagent on Haiku, which runs Bash and answers."""
    return [
        tool_use("Agent", SPAWN, usage=U1),
        tool_use("Bash", {"command": "echo banana", "description": "say"}, usage=U3, for_model=HAIKU),
        text("banana", usage=U4, for_model=HAIKU),
        text("it said banana", usage=U2),
    ]


def tracked_run(claude_bin: Path, home: Path, api: MockAnthropic, *own: str) -> dict[str, Any]:
    env = claude_env(home, api.url, ANTHROPIC_DEFAULT_HAIKU_MODEL=HAIKU)
    env.update({"PYTHONPATH": SRC, "XDG_DATA_HOME": str(home / "data")})
    ledger = home / "ledger.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "claude_run", "--claude-bin", str(claude_bin), "--track",
         "--ledger", str(ledger), *own, "ask a subagent",
         "--", "--model", SONNET, "--allowedTools", "Agent Bash"],
        capture_output=True, env=env, cwd=home / "project", timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (record,) = [orjson.loads(line) for line in ledger.read_bytes().splitlines()]
    return record


def served_by_agent(api: MockAnthropic) -> dict[str, tuple[Usage, int]]:
    """Each agent used one model here: the main agent Sonnet, the subagent Haiku."""
    out: dict[str, tuple[Usage, int]] = {}
    for s in api.served:
        agent = "main" if s.model == SONNET else "general-purpose"
        usage, n = out.get(agent, (Usage(), 0))
        out[agent] = (usage + s.usage, n + 1)
    return out


def assert_agents_equal_served(attribution: dict[str, Any], api: MockAnthropic) -> None:
    served = served_by_agent(api)
    assert set(attribution["agents"]) == set(served) == {"main", "general-purpose"}
    for agent, (usage, requests) in served.items():
        got = attribution["agents"][agent]
        assert got["requests"] == requests, agent
        assert (got["input"], got["output"], got["cache_read"], got["cache_creation"]) == (
            usage.input, usage.output, usage.cache_read, usage.cache_creation
        ), agent  # fmt: skip
        assert got.get("cache_creation_1h", 0) == usage.cache_creation_1h, agent
        model = SONNET if agent == "main" else HAIKU
        assert got["cost_usd"] == pytest.approx(list_cost(model, usage), rel=1e-9), agent
    assert attribution["complete"] is True
    assert attribution["tools"]["Agent"]["calls"] == 1 and attribution["tools"]["Bash"]["calls"] == 1


def test_subagent_attribution_from_telemetry(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api(script())
    record = tracked_run(claude_bin, claude_home, api)
    attribution = record["attribution"]
    assert attribution["source"] == "telemetry"
    assert_agents_equal_served(attribution, api)
    assert attribution["agents"]["main"]["cost_source"] == "claude"
    assert attribution["tools"]["Bash"]["duration_ms"] >= 0  # telemetry timed it
    assert attribution["long_context"] == {"over": 200000, "models": {}}

    env = {**os.environ, "PYTHONPATH": SRC}
    ledger = str(claude_home / "ledger.jsonl")
    by_agent = subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "summary", "--by", "agent", "--format", "json",
         "--ledger", ledger], capture_output=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    rows = {r["key"]["agent"]: r for r in orjson.loads(by_agent.stdout)["rows"]}
    for agent, (usage, requests) in served_by_agent(api).items():
        assert (rows[agent]["requests"], rows[agent]["input"], rows[agent]["output"]) == (
            requests, usage.input, usage.output
        )  # fmt: skip

    # The same run at Opus 4.1's list prices: the mock's own price table, not genai-prices.
    saved = subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "savings", "--baseline", OPUS, "--format", "json",
         "--ledger", ledger], capture_output=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    report = orjson.loads(saved.stdout)
    opus = LIST_PRICES[OPUS].cost(api.total_usage())
    assert float(report["total"]["baseline_usd"]) == pytest.approx(opus, rel=1e-12)
    assert float(report["total"]["actual_usd"]) == pytest.approx(api.list_cost(), rel=1e-9)
    rows = {r["key"]["model"]: r for r in report["rows"]}
    haiku = sum((s.usage for s in api.served if s.model == HAIKU), Usage())
    assert float(rows[HAIKU]["baseline_usd"]) == pytest.approx(LIST_PRICES[OPUS].cost(haiku), rel=1e-12)
    assert report["per_request_runs"] == 1 and report["totals_only_runs"] == 0


def test_subagent_attribution_from_transcripts_without_telemetry(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api(script())
    record = tracked_run(claude_bin, claude_home, api, "--no-telemetry")
    attribution = record["attribution"]
    # The stream never shows the subagent's last message: the transcripts (subagents/) have it.
    assert attribution["source"] == "transcript"
    assert_agents_equal_served(attribution, api)
    assert attribution["agents"]["general-purpose"]["cost_source"] == "estimate"
    assert "duration_ms" not in attribution["tools"]["Bash"]
    assert Decimal(str(record["cost_usd"])) > 0
