"""Attribution per agent, tool and MCP server (`stream/attribution.py`,
`transcripts/attribution.py`), and `ledger summary --by agent|tool|mcp-server`, on real Claude
Code 2.1.330 output (tests/support/attribution_data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_run.stream import attribution
from claude_run.stream.events import parse_line
from claude_run.stream.usage import UsageFolder
from claude_run.telemetry.inbound.collector import Collector
from claude_run.transcripts.attribution import from_transcripts

DATA = Path(__file__).parent / "support" / "attribution_data"
SRC = str(Path(__file__).resolve().parents[1] / "src")
SONNET, HAIKU = "claude-sonnet-4-5", "claude-haiku-4-5"
# What the mock served (DATA/README.md): per agent, input, output, cache read, cache write, 1 h part.
MAIN = {"input": 85 + 122, "output": 19 + 26, "cache_read": 4202 + 4303, "cache_creation": 1526 + 1539}
SUB = {"input": 57 + 11, "output": 15 + 7, "cache_read": 700 + 500, "cache_creation": 300}


def stream() -> tuple[UsageFolder, attribution.StreamAgents]:
    folder, agents = UsageFolder(), attribution.StreamAgents()
    for line in (DATA / "subagent-stream.jsonl").read_bytes().splitlines():
        event = parse_line(line)
        if event is not None:
            folder.feed(event)
            agents.feed(event)
    return folder, agents


def collector(extra: list[dict[str, Any]] = ()) -> Collector:  # type: ignore[assignment]
    c = Collector()
    for body in json.loads((DATA / "subagent-otlp-logs.json").read_text()):
        c.feed("logs", body)
    for body in extra:
        c.feed("logs", body)
    return c


def record_tokens() -> dict[str, int]:
    return {k: MAIN[k] + SUB[k] for k in MAIN}


def pick(entry: dict[str, Any]) -> dict[str, int]:
    return {k: entry[k] for k in MAIN}


def test_telemetry_attributes_each_request_to_its_agent_with_claudes_cost() -> None:
    _folder, agents = stream()
    requests, calls = attribution.from_telemetry(collector(), agents)
    got = attribution.build("telemetry", requests, calls, "claude", record_tokens())
    assert got["source"] == "telemetry" and got["complete"] is True
    assert set(got["agents"]) == {"main", "general-purpose"}
    main, sub = got["agents"]["main"], got["agents"]["general-purpose"]
    assert pick(main) == MAIN and main["requests"] == 2 and main["cache_creation_1h"] == 539
    assert pick(sub) == SUB and sub["requests"] == 2 and sub["cache_creation_1h"] == 300
    # Claude's own per-request costs (the api_request events), summed: the result's per-model costs.
    result = [orjson.loads(x) for x in (DATA / "subagent-stream.jsonl").read_bytes().splitlines()][-1]
    assert main["cost_usd"] == pytest.approx(result["modelUsage"][SONNET]["costUSD"], rel=1e-9)
    assert sub["cost_usd"] == pytest.approx(result["modelUsage"][HAIKU]["costUSD"], rel=1e-9)
    assert main["cost_source"] == "claude"
    # Tools: calls and telemetry's durations; the subagent's Bash call, the main agent's Agent call.
    assert set(got["tools"]) == {"Agent", "Bash"}
    assert got["tools"]["Bash"]["calls"] == 1 and got["tools"]["Bash"]["duration_ms"] == 29
    assert got["long_context"] == {"over": 200000, "models": {}}


def test_the_stream_alone_misses_the_subagents_last_message() -> None:
    folder, agents = stream()
    requests, calls = attribution.from_stream(folder, agents)
    by_agent = {r.agent for r in requests}
    assert by_agent == {"main", "general-purpose"}  # parent_tool_use_id + subagent_type
    got = attribution.build("stream", *attribution_priced(requests, calls), record_tokens())
    assert got["complete"] is False and "long_context" not in got
    assert got["agents"]["main"]["input"] == MAIN["input"]
    assert got["agents"]["general-purpose"]["input"] == 57  # message 3 never reached stdout
    assert {c.name: c.agent for c in calls} == {"Agent": "main", "Bash": "general-purpose"}


def attribution_priced(
    requests: list[attribution.Request], calls: list[attribution.ToolCall]
) -> tuple[list[attribution.Request], list[attribution.ToolCall], str]:
    priced, source = attribution.priced(requests, {"cost_usd": 0.017452, "cost_source": "claude"})
    return priced, calls, source


def test_transcripts_with_subagents_folder(tmp_path: Path) -> None:
    """A session file and `<session>/subagents/agent-*.jsonl` with its `.meta.json`, as 2.1.330 lays
    them out; one request over 200k prompt tokens goes into `long_context`."""
    session = tmp_path / "0d2416cf.jsonl"
    sub = tmp_path / "0d2416cf" / "subagents"
    sub.mkdir(parents=True)

    def line(mid: str, model: str, usage: dict[str, int], content: list[dict[str, Any]], side: bool) -> bytes:
        return orjson.dumps(
            {
                "type": "assistant",
                "isSidechain": side,
                "timestamp": "2026-12-05T11:27:45.492Z",
                "requestId": f"req_{mid}",
                "sessionId": "0d2416cf",
                "message": {"id": mid, "model": model, "usage": usage, "content": content},
            }
        )

    spawn = {"type": "tool_use", "id": "toolu_1", "name": "Agent", "input": {"subagent_type": "Explore"}}
    big = {
        "input_tokens": 1000,
        "output_tokens": 50,
        "cache_read_input_tokens": 210000,
        "cache_creation_input_tokens": 0,
    }
    small = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 100,
        "cache_creation": {"ephemeral_1h_input_tokens": 100},
    }
    session.write_bytes(
        line("m1", SONNET, big, [spawn], False) + b"\n" + line("m1", SONNET, big, [spawn], False) + b"\n"
    )
    (sub / "agent-a1.jsonl").write_bytes(
        line(
            "m2",
            HAIKU,
            small,
            [{"type": "tool_use", "id": "toolu_2", "name": "mcp__docs__search", "input": {}}],
            True,
        )
        + b"\n"
        + orjson.dumps(
            {
                "type": "user",
                "message": {"content": [{"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True}]},
            }
        )
        + b"\n"
    )
    (sub / "agent-a1.meta.json").write_text('{"agentType": "Explore"}')
    requests, calls = from_transcripts(session)
    assert sorted((r.agent, r.model) for r in requests) == [("Explore", HAIKU), ("main", SONNET)]  # m1 once
    tokens = {"input": 1010, "output": 55, "cache_read": 210000, "cache_creation": 100}
    got = attribution.build("transcript", requests, calls, "estimate", tokens)
    assert got["complete"] is True
    assert got["long_context"]["models"] == {
        SONNET: {
            "requests": 1,
            "input": 1000,
            "output": 50,
            "cache_read": 210000,
            "cache_creation": 0,
            "cache_creation_1h": 0,
        }
    }
    assert got["tools"]["mcp__docs__search"] == {"calls": 1, "failures": 1}
    assert got["mcp_servers"]["docs"] == {"calls": 1, "failures": 1}
    assert got["agents"]["Explore"]["cache_creation_1h"] == 100


def _log(name: str, **attrs: Any) -> dict[str, Any]:
    values = [
        {"key": k, "value": {"intValue": v} if isinstance(v, int) else {"stringValue": str(v)}}
        for k, v in {"event.name": name, **attrs}.items()
    ]
    record = {
        "timeUnixNano": "1796470065600000000",
        "body": {"stringValue": f"claude_code.{name}"},
        "attributes": values,
    }
    return {"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"logRecords": [record]}]}]}


def test_mcp_servers_from_telemetry() -> None:
    """Shapes from the 2.1.330 binary (`strings`): an MCP tool's `tool_result` says `tool_name:
    mcp_tool` with `tool_parameters` naming `mcp_server_name`; an `api_request` Claude attributes to a
    server carries `mcp_server.name`. Not recorded from a run: no MCP server in the test rig."""
    extra = [
        _log(
            "tool_result",
            tool_name="mcp_tool",
            tool_use_id="toolu_9",
            success="true",
            duration_ms="120",
            tool_parameters='{"mcp_server_name":"docs","mcp_tool_name":"search"}',
        ),
        _log(
            "api_request",
            model=SONNET,
            input_tokens=10,
            output_tokens=2,
            cache_read_tokens=0,
            cache_creation_tokens=0,
            cost_usd="0.00006",
            request_id="req_x",
            query_source="sdk",
            **{"mcp_server.name": "docs"},
        ),
    ]
    requests, calls = attribution.from_telemetry(collector(extra), None)
    got = attribution.build("telemetry", requests, calls, "claude", None)
    assert got["complete"] is False  # no record totals given
    assert got["tools"]["mcp__docs__mcp_tool"] == {"calls": 1, "failures": 0, "duration_ms": 120}
    docs = got["mcp_servers"]["docs"]
    assert (docs["calls"], docs["requests"], docs["input"], docs["output"]) == (1, 1, 10, 2)
    assert docs["cost_usd"] == pytest.approx(0.00006)


# -- ledger summary --by agent|tool|mcp-server ----------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "summary", *args],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        timeout=60,
    )


def _rec(i: int, cost: float | None, attributed: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "v": 1,
        "id": f"01JATTR{i:04d}",
        "started_at": f"2025-06-0{i}T10:00:00.000Z",
        "mode": "non-interactive",
        "status": "success",
        "model": SONNET,
        "tokens": {"input": 300, "output": 60, "cache_read": 1000, "cache_creation": 400},
        "cost_usd": cost,
        "cost_source": "claude",
        "models": {},
    }
    if attributed is not None:
        out["attribution"] = attributed
    return out


ATTRIBUTED = {
    "source": "telemetry",
    "complete": True,
    "agents": {
        "main": {
            "requests": 3,
            "input": 200,
            "output": 40,
            "cache_read": 1000,
            "cache_creation": 400,
            "cost_usd": 0.004,
            "cost_source": "claude",
        },
        "Explore": {
            "requests": 2,
            "input": 100,
            "output": 20,
            "cache_read": 0,
            "cache_creation": 0,
            "cost_usd": 0.0006,
            "cost_source": "claude",
        },
    },
    "tools": {
        "Bash": {"calls": 3, "failures": 1, "duration_ms": 900},
        "mcp__docs__search": {"calls": 1, "failures": 0, "duration_ms": 100},
    },
    "mcp_servers": {"docs": {"calls": 1, "failures": 0, "duration_ms": 100}},
}


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.jsonl"
    estimated = json.loads(json.dumps(ATTRIBUTED))
    estimated["source"] = "transcript"
    for a in estimated["agents"].values():
        a["cost_source"] = "estimate"
    rows = [_rec(1, 0.0046, ATTRIBUTED), _rec(2, 0.0046, estimated), _rec(3, 0.01, None)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_summary_by_agent_totals_agree_with_by_day(ledger: Path) -> None:
    by_agent = orjson.loads(run("--by", "agent", "--format", "json", "--ledger", str(ledger)).stdout)
    rows = {r["key"]["agent"]: r for r in by_agent["rows"]}
    assert set(rows) == {"main", "Explore", "(not attributed)"}
    assert rows["main"]["runs"] == 2 and rows["main"]["requests"] == 6
    assert Decimal(str(rows["main"]["cost_usd"])) == Decimal("0.008")
    assert Decimal(str(rows["Explore"]["cost_usd"])) == Decimal("0.0012")
    assert rows["Explore"]["estimated_entries"] == 1  # one of its two records is a list-price estimate
    assert rows["(not attributed)"]["requests"] is None and rows["(not attributed)"]["input"] == 300
    by_day = orjson.loads(run("--format", "json", "--ledger", str(ledger)).stdout)
    assert by_agent["total"]["runs"] == by_day["total"]["runs"] == 3
    assert (
        Decimal(str(by_agent["total"]["cost_usd"]))
        == Decimal(str(by_day["total"]["cost_usd"]))
        == Decimal("0.0192")
    )
    assert by_agent["total"]["input"] == by_day["total"]["input"]
    text = run("--by", "agent", "--ledger", str(ledger)).stdout.decode()
    assert "$0.0012*" in text and "list-price estimates" in text and "1 run(s) carry no attribution" in text


def test_summary_by_tool_shows_calls_and_time_not_dollars(ledger: Path) -> None:
    got = orjson.loads(run("--by", "tool", "--format", "json", "--ledger", str(ledger)).stdout)
    rows = {r["key"]["tool"]: r for r in got["rows"]}
    assert rows["Bash"] == {
        "key": {"tool": "Bash"},
        "runs": 2,
        "calls": 6,
        "failures": 2,
        "duration_ms": 1800,
        "avg_ms_per_call": 300.0,
    }
    assert "cost_usd" not in rows["Bash"]
    text = run("--by", "tool", "--ledger", str(ledger)).stdout.decode()
    assert "cost" not in text.splitlines()[0] and "not dollars" in text
    mcp = orjson.loads(run("--by", "mcp-server,day", "--format", "json", "--ledger", str(ledger)).stdout)
    assert [r["key"] for r in mcp["rows"]] == [
        {"mcp-server": "docs", "day": "2025-06-01"},
        {"mcp-server": "docs", "day": "2025-06-02"},
    ]
    assert mcp["total"]["calls"] == 2


@pytest.mark.parametrize(
    "args",
    [
        ["--by", "agent,tool"],
        ["--by", "agent,model"],
        ["--by", "agent", "--model", "sonnet"],
        ["--by", "agnet"],
    ],
)
def test_summary_by_agent_bad_combinations_exit_2(ledger: Path, args: list[str]) -> None:
    proc = run(*args, "--ledger", str(ledger))
    assert proc.returncode == 2 and proc.stdout == b"" and proc.stderr.count(b"\n") == 1


def test_session_records_from_transcripts_and_telemetry_carry_attribution(tmp_path: Path) -> None:
    """The interactive mode / SessionEnd hook (`transcripts.session_fields`) and `telemetry serve`
    (`telemetry.sessions.session_record`) attribute their records too."""
    from claude_run.telemetry.inbound.sessions import session_record
    from claude_run.transcripts import session_fields

    session = tmp_path / "s1.jsonl"
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    session.write_bytes(
        orjson.dumps(
            {"type": "assistant", "timestamp": "2026-12-05T11:27:45.492Z", "requestId": "r1",
             "sessionId": "s1", "message": {"id": "m1", "model": SONNET, "usage": usage, "content": []}}
        )
        + b"\n"
    )  # fmt: skip
    fields = session_fields(session)
    assert fields["attribution"]["source"] == "transcript" and fields["attribution"]["complete"] is True
    assert fields["attribution"]["agents"]["main"]["requests"] == 1
    assert session_fields(session, 10).get("attribution") is None  # a resumed part: not split by run
    rec = session_record("8d2416cf-55f8-416f-8fea-e11aff45d009", collector(), "01JX", {})
    assert rec["attribution"]["source"] == "telemetry" and rec["attribution"]["complete"] is True
    assert set(rec["attribution"]["agents"]) == {"main", "general-purpose"}
