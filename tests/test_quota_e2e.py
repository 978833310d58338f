"""Plan quota and context window, end to end: the REAL Claude Code CLI on a subscription-style login.

With `CLAUDE_CODE_OAUTH_TOKEN` (any value) instead of an API key, Claude Code turns the mock's
`anthropic-ratelimit-unified-*` headers into `rate_limit_event`s; the record must hold the last
state of each window exactly as the headers gave it, and its peak context must be the mock's
largest request (input + cache read + cache write).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from support.claude_cli import claude_env
from support.mock_anthropic import MockApiFactory, Usage, text, tool_use, unified_ratelimit_headers

pytestmark = pytest.mark.e2e

SRC = str(Path(__file__).resolve().parents[1] / "src")
SONNET = "claude-sonnet-4-5"
SMALL = Usage(input=85, cache_creation_5m=1526, cache_read=4202, output=19)
LARGE = Usage(input=122, cache_creation_5m=21_000, cache_creation_1h=539, cache_read=14_303, output=26)
BASH = tool_use("Bash", {"command": "echo tool-ran", "description": "print a word"}, usage=LARGE)


def _run(
    claude_bin: Path,
    home: Path,
    api_url: str,
    *args: str,
    oauth: bool = True,
    claude_args: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess[bytes], dict[str, Any]]:
    env = claude_env(home, api_url)
    if oauth:
        del env["ANTHROPIC_API_KEY"]
        env["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat01-mock-token"
    env.update({"PYTHONPATH": SRC, "XDG_DATA_HOME": str(home / "data")})
    ledger = home / "ledger.jsonl"
    argv = [sys.executable, "-m", "claude_run", "--claude-bin", str(claude_bin), "--track"]
    argv += ["--ledger", str(ledger), *args, "--", "--model", SONNET, *claude_args]
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=home / "project", timeout=120)
    lines = [orjson.loads(line) for line in ledger.read_bytes().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return proc, lines[0]


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_record_holds_the_headers_last_quota_and_the_largest_request(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    # Two requests whose headers differ: the record keeps the state of the last one.
    # (Claude Code drops a window whose reset is further away than the window is long.)
    plans = [
        unified_ratelimit_headers(five_hour=0.42, seven_day=0.17),
        unified_ratelimit_headers(five_hour=0.57, seven_day=0.19, five_hour_status="allowed"),
    ]
    served: list[dict[str, str]] = []

    def headers() -> dict[str, str]:
        served.append(plans[min(len(served), len(plans) - 1)])
        return served[-1]

    api = mock_api([BASH, text("done", usage=SMALL)], ratelimit_headers=headers)
    proc, rec = _run(
        claude_bin,
        claude_home,
        api.url,
        "run echo",
        "--warn-quota",
        "50",
        claude_args=("--allowedTools", "Bash"),
    )
    assert proc.returncode == 0, proc.stderr
    last = served[-1]
    windows = rec["rate_limits"]["windows"]
    p = "anthropic-ratelimit-unified-"
    assert windows["five_hour"]["utilization"] == float(last[p + "5h-utilization"])
    assert windows["seven_day"]["utilization"] == float(last[p + "7d-utilization"])
    assert windows["five_hour"]["resets_at"] == _iso(int(last[p + "5h-reset"]))
    assert windows["seven_day"]["resets_at"] == _iso(int(last[p + "7d-reset"]))
    assert windows["five_hour"]["status"] == last[p + "5h-status"]
    assert rec["rate_limits"]["status"] == last[p + "status"]
    assert rec["rate_limits"]["overage"] is False
    assert rec["started_at"] <= rec["rate_limits"]["seen_at"] <= rec["ended_at"]
    # The largest request the mock answered, as Claude counts a prompt.
    largest = max(s.usage.input + s.usage.cache_read + s.usage.cache_creation for s in api.served)
    context = rec["context"]
    assert context["peak_tokens"] == largest
    assert context["window"] == 200_000 and context["window_source"] == "claude"
    assert context["peak_pct"] == round(largest * 100 / 200_000, 1)
    assert context["compactions"] == 0
    # --warn-quota 50: crossed by the 5-hour window only (the 7-day stays under), once.
    warnings = [ln for ln in proc.stderr.decode().splitlines() if "warning:" in ln]
    assert len(warnings) == 1 and "5-hour quota" in warnings[0], proc.stderr
    assert any("5-hour quota" in n for n in rec["notes"])


def test_api_key_login_records_context_but_no_quota(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([text("hi", usage=SMALL)], ratelimit_headers=unified_ratelimit_headers())
    proc, rec = _run(claude_bin, claude_home, api.url, "say hi", "--warn-context", "1", oauth=False)
    assert proc.returncode == 0, proc.stderr
    assert "rate_limits" not in rec
    assert rec["context"]["peak_tokens"] == SMALL.input + SMALL.cache_read + SMALL.cache_creation
    assert b"warning: context at" in proc.stderr


def test_hybrid_view_shows_the_quota(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([text("hi", usage=SMALL)], ratelimit_headers=unified_ratelimit_headers(five_hour=0.64))
    proc, rec = _run(claude_bin, claude_home, api.url, "say hi", "--hybrid")
    assert proc.returncode == 0, proc.stderr
    assert "five_hour 64%" in proc.stderr.decode()
    assert rec["rate_limits"]["windows"]["five_hour"]["utilization"] == 0.64
