"""Fold Claude Code's telemetry (OTLP events and metrics) into the per-run detail of a record.

What only telemetry knows: each API request (model, tokens, cost, duration, time to first token),
API errors and retries with their status codes, each tool call (name, success, duration), lines of
code added/removed, commits and pull requests. `api_request` events are the source of token and cost
totals (one event per request, exact); the `claude_code.token.usage` / `cost.usage` metrics are the
fallback when logs are missing.

Cumulative metrics are folded by keeping the latest value of each series (a series is the metric
name, its attributes and its start time); delta metrics are summed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .otlp import DELTA, AttrValue, LogEvent, MetricPoint, decode_logs, decode_metrics, to_float, to_int

TOKEN_ATTRS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_tokens",
    "cache_creation": "cache_creation_tokens",
}
# claude_code.token.usage's `type` attribute → our token kinds
METRIC_TOKEN_TYPES = {
    "input": "input",
    "output": "output",
    "cacheRead": "cache_read",
    "cacheCreation": "cache_creation",
}


@dataclass(frozen=True)
class ApiRequest:
    """One `api_request` event: what Claude Code measured for one Messages API call."""

    model: str
    input: int
    output: int
    cache_read: int
    cache_creation: int
    cost_usd: float
    duration_ms: int | None
    ttft_ms: int | None
    request_id: str | None
    time_ns: int
    session_id: str | None = None
    cache_creation_5m: int | None = None
    cache_creation_1h: int | None = None
    query_source: str | None = None  # `sdk` / `repl_main_thread` for the main thread
    # Attribution (stream/attribution.py): the subagent's type and id, the MCP server Claude
    # attributes the request to.
    agent_name: str | None = None
    agent_id: str | None = None
    mcp_server: str | None = None

    @property
    def main_thread(self) -> bool:
        """Not a subagent's, a compaction's or a side request: it shows the session's own context."""
        qs = self.query_source
        return qs is None or qs == "sdk" or qs.startswith("repl_main_thread")


@dataclass(frozen=True)
class ApiError:
    model: str | None
    status_code: int | None
    attempt: int | None
    duration_ms: int | None
    error: str | None


@dataclass(frozen=True)
class ToolResult:
    name: str
    success: bool
    duration_ms: int | None
    tool_use_id: str | None = None
    agent_id: str | None = None  # set when a subagent called it
    mcp_server: str | None = None


def _int(v: AttrValue) -> int | None:
    return to_int(v)


def _str(v: AttrValue) -> str | None:
    return v if isinstance(v, str) and v else None


def _bool(v: AttrValue) -> bool:
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() in ("true", "1", "yes")


def _mcp_server(params: AttrValue) -> str | None:
    """`tool_parameters` is a JSON object in a string; an MCP tool's names its `mcp_server_name`."""
    if not isinstance(params, str) or "mcp_server_name" not in params:
        return None
    import orjson

    try:
        obj = orjson.loads(params)
    except ValueError:
        return None
    return _str(obj.get("mcp_server_name")) if isinstance(obj, dict) else None


def percentile(values: list[int] | list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure shown is one that was measured)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _spread(values: list[int]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


def _series_key(point: MetricPoint) -> tuple[Any, ...]:
    attrs = tuple(sorted((k, repr(v)) for k, v in point.attributes.items()))
    return (point.name, attrs, point.start_ns)


@dataclass
class Collector:
    """Everything received for one run (or one session, for `telemetry serve`)."""

    api_requests: list[ApiRequest] = field(default_factory=list)
    api_errors: list[ApiError] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    events: int = 0
    compactions: int = 0  # `compaction` events that did not fail
    metric_points: int = 0
    session_ids: set[str] = field(default_factory=set)
    resource: dict[str, AttrValue] = field(default_factory=dict)
    first_ns: int = 0
    last_ns: int = 0
    _cumulative: dict[tuple[Any, ...], MetricPoint] = field(default_factory=dict)
    _delta: dict[tuple[Any, ...], float] = field(default_factory=dict)
    _seen_requests: set[str] = field(default_factory=set)

    # -- feeding -------------------------------------------------------------------------------
    def feed(self, kind: str, data: Mapping[str, Any]) -> None:
        """The receiver's sink: decode one OTLP body and fold it in (raises OtlpDecodeError)."""
        if kind == "logs":
            self.add_events(decode_logs(data))
        elif kind == "metrics":
            self.add_points(decode_metrics(data))

    def add_events(self, events: Iterable[LogEvent]) -> None:
        for ev in events:
            self.events += 1
            self._touch(ev.time_ns, ev.attributes, ev.resource)
            if ev.name == "api_request":
                self._api_request(ev)
            elif ev.name == "api_error":
                a = ev.attributes
                self.api_errors.append(
                    ApiError(
                        _str(a.get("model")),
                        _int(a.get("status_code")),
                        _int(a.get("attempt")),
                        _int(a.get("duration_ms")),
                        _str(a.get("error")),
                    )
                )
            elif ev.name == "compaction":
                if ev.attributes.get("success") is None or _bool(ev.attributes.get("success")):
                    self.compactions += 1
            elif ev.name == "tool_result":
                a = ev.attributes
                self.tool_results.append(
                    ToolResult(
                        _str(a.get("tool_name")) or "?",
                        _bool(a.get("success")),
                        _int(a.get("duration_ms")),
                        _str(a.get("tool_use_id")),
                        _str(a.get("agent_id")),
                        _mcp_server(a.get("tool_parameters")),
                    )
                )

    def add_points(self, points: Iterable[MetricPoint]) -> None:
        for p in points:
            self.metric_points += 1
            self._touch(p.time_ns, p.attributes, p.resource)
            key = _series_key(p)
            if p.temporality == DELTA:
                self._delta[key] = self._delta.get(key, 0.0) + p.value
            else:
                old = self._cumulative.get(key)
                if old is None or p.time_ns >= old.time_ns:
                    self._cumulative[key] = p

    def _touch(self, time_ns: int, attrs: Mapping[str, AttrValue], resource: Mapping[str, AttrValue]) -> None:
        sid = attrs.get("session.id")
        if isinstance(sid, str) and sid:
            self.session_ids.add(sid)
        if resource and not self.resource:
            self.resource = dict(resource)
        if time_ns:
            self.first_ns = min(self.first_ns, time_ns) if self.first_ns else time_ns
            self.last_ns = max(self.last_ns, time_ns)

    def _api_request(self, ev: LogEvent) -> None:
        a = ev.attributes
        rid = _str(a.get("request_id"))
        # An exporter retrying a body we did accept must not count a request twice.
        if rid is not None:
            if rid in self._seen_requests:
                return
            self._seen_requests.add(rid)
        cost = to_float(a.get("cost_usd"))
        if cost is None:
            micros = _int(a.get("cost_usd_micros"))
            cost = micros / 1e6 if micros is not None else 0.0
        self.api_requests.append(
            ApiRequest(
                model=_str(a.get("model")) or "unknown",
                input=_int(a.get("input_tokens")) or 0,
                output=_int(a.get("output_tokens")) or 0,
                cache_read=_int(a.get("cache_read_tokens")) or 0,
                cache_creation=_int(a.get("cache_creation_tokens")) or 0,
                cost_usd=cost,
                duration_ms=_int(a.get("duration_ms")),
                ttft_ms=_int(a.get("ttft_ms")),
                request_id=rid,
                time_ns=ev.time_ns,
                session_id=_str(a.get("session.id")),
                cache_creation_5m=_int(a.get("cache_creation_5m_tokens")),
                cache_creation_1h=_int(a.get("cache_creation_1h_tokens")),
                query_source=_str(a.get("query_source")),
                agent_name=_str(a.get("agent.name")),
                agent_id=_str(a.get("agent_id")),
                mcp_server=_str(a.get("mcp_server.name")),
            )
        )

    # -- reading -------------------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        return not (self.events or self.metric_points)

    def metric_total(self, name: str, **match: str) -> float | None:
        """Sum over a metric's series whose attributes match; None when the metric never arrived."""
        total = 0.0
        found = False
        for key, point in self._cumulative.items():
            if key[0] == name and all(point.attributes.get(k) == v for k, v in match.items()):
                total += point.value
                found = True
        for key, value in self._delta.items():
            if key[0] == name and all(dict(key[1]).get(k) == repr(v) for k, v in match.items()):
                total += value
                found = True
        return total if found else None

    def tokens(self) -> dict[str, int]:
        """Token totals: summed `api_request` events, else the token.usage metric."""
        if self.api_requests:
            return {kind: sum(getattr(r, kind) for r in self.api_requests) for kind in TOKEN_ATTRS}
        out: dict[str, int] = {}
        for mtype, kind in METRIC_TOKEN_TYPES.items():
            value = self.metric_total("claude_code.token.usage", type=mtype)
            out[kind] = round(value) if value is not None else 0
        return out

    def cost_usd(self) -> float | None:
        """Summed `api_request` costs, else the cost.usage metric; $0 when nothing was spent."""
        if self.api_requests:
            return math.fsum(r.cost_usd for r in self.api_requests)
        metric = self.metric_total("claude_code.cost.usage")
        if metric is None and not self.empty:
            return 0.0  # Claude Code exports no cost series until something costs money
        return metric

    def peak_context(self) -> tuple[int, str | None]:
        """(tokens, model) of the largest main-thread request: input + cache read + cache write."""
        peak, model = 0, None
        for r in self.api_requests:
            ctx = r.input + r.cache_read + r.cache_creation
            if ctx > peak and r.main_thread:
                peak, model = ctx, r.model
        return peak, model

    def models(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in self.api_requests:
            m = out.setdefault(
                r.model,
                {
                    "requests": 0,
                    "input": 0,
                    "output": 0,
                    "cache_read": 0,
                    "cache_creation": 0,
                    "cost_usd": 0.0,
                },
            )
            m["requests"] += 1
            for kind in TOKEN_ATTRS:
                m[kind] += getattr(r, kind)
            m["cost_usd"] = m["cost_usd"] + r.cost_usd
        return out

    def detail(self) -> dict[str, Any]:
        """The record's `telemetry` field."""
        reqs = self.api_requests
        by_model: dict[str, int] = {}
        for r in reqs:
            by_model[r.model] = by_model.get(r.model, 0) + 1
        status_counts: dict[str, int] = {}
        for e in self.api_errors:
            key = str(e.status_code) if e.status_code is not None else "none"
            status_counts[key] = status_counts.get(key, 0) + 1
        # An api_error's `attempt` counts the tries of that request; Claude Code 2.1.330 sends no event
        # for a 429/5xx that a later retry got past, so these are the retries telemetry can see.
        retries = sum(max((e.attempt or 1) - 1, 0) for e in self.api_errors)
        durations = [r.duration_ms for r in reqs if r.duration_ms is not None]
        ttfts = [r.ttft_ms for r in reqs if r.ttft_ms is not None]
        calls: dict[str, int] = {}
        failures: dict[str, int] = {}
        tool_ms = 0
        for t in self.tool_results:
            calls[t.name] = calls.get(t.name, 0) + 1
            if not t.success:
                failures[t.name] = failures.get(t.name, 0) + 1
            tool_ms += t.duration_ms or 0
        detail: dict[str, Any] = {
            "requests": {
                "count": len(reqs),
                "by_model": by_model,
                "api_errors": len(self.api_errors),
                "retries": retries,
                "error_status": status_counts,
                "duration_ms": _spread(durations),
                "ttft_ms": _spread(ttfts),
            },
            "tokens": self.tokens(),
            "cost_usd": self.cost_usd(),
            "tools": {"calls": calls, "failures": failures, "total_ms": tool_ms},
            "events": self.events,
            "metric_points": self.metric_points,
        }
        added = self.metric_total("claude_code.lines_of_code.count", type="added")
        removed = self.metric_total("claude_code.lines_of_code.count", type="removed")
        if added is not None or removed is not None:
            detail["lines"] = {"added": int(added or 0), "removed": int(removed or 0)}
        commits = self.metric_total("claude_code.commit.count")
        if commits is not None:
            detail["commits"] = int(commits)
        prs = self.metric_total("claude_code.pull_request.count")
        if prs is not None:
            detail["pull_requests"] = int(prs)
        if self.compactions:
            detail["compactions"] = self.compactions
        active = self.metric_total("claude_code.active_time.total")
        if active is not None:
            detail["active_time_s"] = round(active, 3)
        return detail


def agrees(
    detail: Mapping[str, Any], tokens: Mapping[str, Any] | None, cost_usd: float | None
) -> bool | None:
    """Do telemetry's token and cost totals equal the `result` event's? None when either side is missing."""
    t_tokens = detail.get("tokens")
    if not isinstance(t_tokens, Mapping) or not isinstance(tokens, Mapping):
        return None
    for kind in TOKEN_ATTRS:
        if int(t_tokens.get(kind) or 0) != int(tokens.get(kind) or 0):
            return False
    t_cost = detail.get("cost_usd")
    if cost_usd is None or t_cost is None:
        return None  # tokens agree, but there is no cost to compare
    return math.isclose(float(t_cost), float(cost_usd), rel_tol=1e-6, abs_tol=1e-9)
