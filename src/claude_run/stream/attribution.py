"""Where a run's money went: requests, tokens and cost per agent, calls per tool and MCP server.

The record's `attribution` field, from the best source the run has (README "The record"):
1. the built-in telemetry receiver: one `api_request` event per API call with Claude's own cost,
   `query_source` (`sdk` / `repl_main_thread…` on the main thread, `agent:builtin:TYPE` or
   `agent:custom` in a subagent), `agent.name`, `agent_id` and, when Claude attributes the
   request to one, `mcp_server.name`; `tool_result` events with the tool's duration and success;
2. else Claude's transcripts: the session file (main agent) and `<session>/subagents/agent-*.jsonl`
   (one per subagent, its type in `agent-*.meta.json`), final per-message usage, list prices;
3. else the stream: `assistant` events carry `parent_tool_use_id` (and `subagent_type`) for a
   subagent's messages, but a subagent's last message never reaches stdout, so this is partial.

Tools: a tool call's tokens are spent in the next request together with everything else in the
context, so no honest dollar figure exists per tool: tools get calls, failures and (telemetry)
durations. The `Agent`/`Task` tool's cost is its subagent's, under `agents`.

`long_context`, when the per-request figures add up to the record's tokens: per model, the
tokens of the requests whose prompt (input + cache read + cache write) exceeded 200k tokens, so a
repricing (`ledger savings`) can apply long-context tiers per request as the API does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import AssistantEvent, Event, TokenCounts, UserEvent

MAIN = "main"
SUBAGENT = "subagent"  # a subagent whose type nothing reported
LONG_CONTEXT_OVER = 200_000  # prompt tokens above which Anthropic's long-context tiers apply
SPAWN_TOOLS = ("Agent", "Task")  # 2.1.330 calls it Agent; older releases Task


@dataclass
class Request:
    """One API request, attributed."""

    agent: str
    model: str
    tokens: TokenCounts
    cost_usd: float | None  # None: no price known
    mcp_server: str | None = None


@dataclass
class ToolCall:
    name: str
    agent: str = MAIN
    failed: bool = False
    duration_ms: int | None = None


@dataclass
class StreamAgents:
    """What the stream tells about agents and tools, fed every event of a run (cheap: a few dict
    lookups per assistant or user event)."""

    agent_of_message: dict[str, str] = field(default_factory=dict)
    spawned: dict[str, str] = field(default_factory=dict)  # Agent tool_use id -> subagent type
    calls: dict[str, ToolCall] = field(default_factory=dict)  # tool_use id -> call

    def feed(self, event: Event) -> None:
        if isinstance(event, AssistantEvent):
            agent = self._agent(event.parent_tool_use_id, event.raw.get("subagent_type"))
            if event.message_id is not None:
                self.agent_of_message.setdefault(event.message_id, agent)
            for block in event.content:
                note_tool_use(block, agent, self.calls, self.spawned)
        elif isinstance(event, UserEvent):
            for block in event.content:
                note_tool_result(block, self.calls)
        elif event.type == "system" and event.raw.get("subtype") == "task_started":
            tid, kind = event.raw.get("tool_use_id"), event.raw.get("subagent_type")
            if isinstance(tid, str) and isinstance(kind, str) and kind:
                self.spawned.setdefault(tid, kind)

    def _agent(self, parent: str | None, kind: object) -> str:
        if parent is None:
            return MAIN
        if isinstance(kind, str) and kind:
            return kind
        return self.spawned.get(parent, SUBAGENT)


def note_tool_use(
    block: Mapping[str, Any], agent: str, calls: dict[str, ToolCall], spawned: dict[str, str]
) -> None:
    if block.get("type") not in ("tool_use", "server_tool_use", "mcp_tool_use"):
        return
    tid, name = block.get("id"), block.get("name")
    if not isinstance(tid, str) or not isinstance(name, str) or tid in calls:
        return
    calls[tid] = ToolCall(name, agent)
    inp = block.get("input")
    if name in SPAWN_TOOLS and isinstance(inp, dict):
        kind = inp.get("subagent_type")
        spawned.setdefault(tid, kind if isinstance(kind, str) and kind else SUBAGENT)


def note_tool_result(block: Mapping[str, Any], calls: dict[str, ToolCall]) -> None:
    if block.get("type") != "tool_result" or block.get("is_error") is not True:
        return
    call = calls.get(str(block.get("tool_use_id")))
    if call is not None:
        call.failed = True


def mcp_server_of(tool: str) -> str | None:
    """`mcp__SERVER__TOOL` (Claude Code's name for an MCP tool) -> SERVER."""
    if not tool.startswith("mcp__"):
        return None
    server = tool[5:].split("__", 1)[0]
    return server or None


# -- sources ---------------------------------------------------------------------------------------


def from_telemetry(
    collector: Any, stream: StreamAgents | None = None
) -> tuple[list[Request], list[ToolCall]]:
    """Requests from `api_request` events (Claude's own cost); tools from `tool_result` events,
    named as the stream named them (telemetry says `mcp_tool` for most MCP tools)."""
    names: dict[str, str] = {}
    requests: list[Request] = []
    for r in collector.api_requests:
        agent = _telemetry_agent(r)
        if r.agent_id:
            names[r.agent_id] = agent
        tokens = TokenCounts(
            r.input, r.output, r.cache_read, r.cache_creation, r.cache_creation_5m, r.cache_creation_1h
        )
        requests.append(Request(agent, r.model, tokens, r.cost_usd, r.mcp_server))
    known = stream.calls if stream is not None else {}
    calls: list[ToolCall] = []
    for t in collector.tool_results:
        seen = known.get(t.tool_use_id or "")
        name = seen.name if seen is not None else t.name
        if t.mcp_server and mcp_server_of(name) is None:
            name = f"mcp__{t.mcp_server}__{name}"
        agent = names.get(t.agent_id or "", SUBAGENT) if t.agent_id else MAIN
        calls.append(ToolCall(name, seen.agent if seen is not None else agent, not t.success, t.duration_ms))
    return requests, calls


def _telemetry_agent(r: Any) -> str:
    if r.main_thread:
        return MAIN
    if r.agent_name:
        return str(r.agent_name)
    qs = str(r.query_source or "")
    if qs.startswith("agent:"):
        return qs.rsplit(":", 1)[-1] if qs.count(":") >= 2 else SUBAGENT
    return f"({qs})"  # Claude's own side requests: compaction, titles, ...


def from_stream(folder: Any, stream: StreamAgents) -> tuple[list[Request], list[ToolCall]]:
    """Requests (unpriced: see `priced`) from the messages the stream showed (final output counts
    from `message_delta`). A subagent's last message never reaches stdout: usually incomplete."""
    requests = [
        Request(stream.agent_of_message.get(mid, SUBAGENT if m.sidechain else MAIN), m.model, m.tokens, None)
        for mid, m in folder.messages.items()
    ]
    return requests, list(stream.calls.values())


def priced(requests: list[Request], record: Mapping[str, Any]) -> tuple[list[Request], str]:
    """Costs for requests read without them, and what they are. One agent: the record's own cost
    (Claude's, when it had one). Several: each request at list price (an estimate), which loads
    the price table (~0.3 s) — only runs with subagents and without telemetry pay it."""
    cost = record.get("cost_usd")
    if len({r.agent for r in requests}) <= 1:
        source = str(record.get("cost_source") or ("unpriced" if cost is None else "claude"))
        if requests:
            requests[0].cost_usd = float(cost) if isinstance(cost, (int, float)) else None
            for r in requests[1:]:
                r.cost_usd = 0.0 if requests[0].cost_usd is not None else None
        return requests, source
    for r in requests:
        r.cost_usd = _price(r.model, r.tokens)
    return requests, "estimate"


def _price(model: str, t: TokenCounts) -> float | None:
    from .. import pricing

    return pricing.message_cost(
        model,
        input=t.input,
        output=t.output,
        cache_read=t.cache_read,
        cache_creation=t.cache_creation,
        cache_creation_1h=t.cache_creation_1h or 0,
    )


# -- the record field ------------------------------------------------------------------------------

_KINDS = ("input", "output", "cache_read", "cache_creation")


def _sums(requests: Iterable[Request]) -> dict[str, int]:
    out = dict.fromkeys(_KINDS, 0)
    out["cache_creation_1h"] = 0
    for r in requests:
        for k in _KINDS:
            out[k] += getattr(r.tokens, k)
        out["cache_creation_1h"] += min(r.tokens.cache_creation_1h or 0, r.tokens.cache_creation)
    return out


def build(
    source: str,
    requests: list[Request],
    calls: list[ToolCall],
    cost_source: str,
    record_tokens: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The record's `attribution` from attributed requests and tool calls. `cost_source`: what the
    requests' costs are (`claude` from telemetry, `estimate` at list prices)."""
    agents: dict[str, dict[str, Any]] = {}
    for r in requests:
        a = agents.setdefault(
            r.agent,
            {
                "requests": 0,
                **dict.fromkeys(_KINDS, 0),
                "cache_creation_1h": 0,
                "cost_usd": 0.0,
                "cost_source": cost_source,
            },
        )
        a["requests"] += 1
        for k in _KINDS:
            a[k] += getattr(r.tokens, k)
        a["cache_creation_1h"] += min(r.tokens.cache_creation_1h or 0, r.tokens.cache_creation)
        if r.cost_usd is None:
            if r.tokens.total:
                a["cost_source"] = "unpriced"
        elif a["cost_usd"] is not None:
            a["cost_usd"] += r.cost_usd
    for a in agents.values():
        if a["cost_source"] == "unpriced":
            a["cost_usd"] = None
        if not a["cache_creation_1h"]:
            del a["cache_creation_1h"]
    tools: dict[str, dict[str, Any]] = {}
    servers: dict[str, dict[str, Any]] = {}
    for c in calls:
        for bucket, name in ((tools, c.name), (servers, mcp_server_of(c.name))):
            if name is None:
                continue
            t = bucket.setdefault(name, {"calls": 0, "failures": 0})
            t["calls"] += 1
            t["failures"] += int(c.failed)
            if c.duration_ms is not None:
                t["duration_ms"] = t.get("duration_ms", 0) + c.duration_ms
    for r in requests:
        if r.mcp_server:
            s = servers.setdefault(r.mcp_server, {"calls": 0, "failures": 0})
            s["requests"] = s.get("requests", 0) + 1
            for k in _KINDS:
                s[k] = s.get(k, 0) + getattr(r.tokens, k)
            if r.cost_usd is not None:
                s["cost_usd"] = s.get("cost_usd", 0.0) + r.cost_usd
    sums = _sums(requests)
    complete = record_tokens is not None and all(int(record_tokens.get(k) or 0) == sums[k] for k in _KINDS)
    out: dict[str, Any] = {"source": source, "complete": complete, "agents": agents, "tools": tools}
    if servers:
        out["mcp_servers"] = servers
    if complete:
        out["long_context"] = long_context(requests)
    return out


def long_context(requests: Iterable[Request]) -> dict[str, Any]:
    """Per model, the tokens of the requests whose prompt exceeded `LONG_CONTEXT_OVER`."""
    models: dict[str, dict[str, int]] = {}
    for r in requests:
        t = r.tokens
        if t.input + t.cache_read + t.cache_creation <= LONG_CONTEXT_OVER:
            continue
        m = models.setdefault(r.model, {"requests": 0, **dict.fromkeys(_KINDS, 0), "cache_creation_1h": 0})
        m["requests"] += 1
        for k in _KINDS:
            m[k] += getattr(t, k)
        m["cache_creation_1h"] += min(t.cache_creation_1h or 0, t.cache_creation)
    return {"over": LONG_CONTEXT_OVER, "models": models}


def priced_calls(
    requests: list[Request], calls: list[ToolCall], record: Mapping[str, Any]
) -> tuple[list[Request], list[ToolCall], str]:
    requests, source = priced(requests, record)
    return requests, calls, source


def for_telemetry(collector: Any, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """A `telemetry serve` session's `attribution`."""
    if not collector.api_requests:
        return None
    tokens = record.get("tokens")
    requests, calls = from_telemetry(collector)
    return build("telemetry", requests, calls, "claude", tokens if isinstance(tokens, Mapping) else None)
