"""Ledger records as OTLP/HTTP JSON (metrics and logs) for a team's OpenTelemetry Collector.

Mapping (OpenTelemetry GenAI semantic conventions, development status, where they fit):
- `gen_ai.client.token.usage` (histogram, `{token}`): one measurement per record and model and token
  kind, attributes `gen_ai.operation.name=chat`, `gen_ai.provider.name=anthropic` (and the older
  `gen_ai.system=anthropic` for dashboards built on semconv ≤ 1.36), `gen_ai.request.model`,
  `gen_ai.token.type` (`input` or `output`). Anthropic's convention counts cache reads and writes as
  input, so they are `input` points too, told apart by `claude_run.token.kind` (input, cache_read,
  cache_creation, output): sum by `gen_ai.token.type` for the convention's totals, by the kind for
  the split. Note a measurement is one run's usage of one model, not one API request.
- `claude_run.cost.usage` (sum, monotonic, `USD`) by `gen_ai.request.model`: priced usage only.
- `claude_run.runs` (sum, monotonic, `{run}`) by `claude_run.status` and `claude_run.mode`.
- one log record per run, `event.name=claude_run.run`, with its id, status, model, tokens and cost.
Every point also carries `claude_run.project` and the record's tags as `claude_run.tag.<key>`.

All points use DELTA temporality, start/end = the run's started_at/ended_at, so a Collector adds
runs from many machines together; `ledger push` remembers what it sent per endpoint, so pushing
again only sends new records. A record marked `_update` (the growth of a session already sent) adds
its usage but no run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...record.schema import parse_iso

TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
DELTA = 1
KIND_TO_TYPE = {"input": "input", "cache_read": "input", "cache_creation": "input", "output": "output"}


def _attr(key: str, value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        v: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}  # int64 is a JSON string in OTLP JSON
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def _attrs(items: Mapping[str, object]) -> list[dict[str, Any]]:
    return [_attr(k, v) for k, v in items.items() if v is not None]


def _ns(text: object, fallback: int = 0) -> int:
    if isinstance(text, str):
        try:
            return int(parse_iso(text).timestamp() * 1_000_000_000)
        except ValueError:
            return fallback
    return fallback


def _common(rec: Mapping[str, Any]) -> dict[str, object]:
    out: dict[str, object] = {"claude_run.project": rec.get("project") or "unknown"}
    tags = rec.get("tags")
    if isinstance(tags, dict):
        for k, v in sorted(tags.items()):
            out[f"claude_run.tag.{k}"] = str(v)
    return out


def _models(rec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    models = rec.get("models")
    if isinstance(models, dict) and models:
        return [(str(k), v) for k, v in models.items() if isinstance(v, dict)]
    tokens = rec.get("tokens")
    return [
        (
            str(rec.get("model") or "unknown"),
            {**(tokens if isinstance(tokens, dict) else {}), "cost_usd": rec.get("cost_usd")},
        )
    ]


def _bucket_counts(value: int) -> list[str]:
    counts = ["0"] * (len(TOKEN_BUCKETS) + 1)
    index = next((i for i, bound in enumerate(TOKEN_BUCKETS) if value <= bound), len(TOKEN_BUCKETS))
    counts[index] = "1"
    return counts


def resource(version: str, user: str | None) -> dict[str, Any]:
    return {
        "attributes": _attrs(
            {"service.name": "claude-run", "service.version": version, "claude_run.user": user}
        )
    }


def metrics_body(
    records: Iterable[Mapping[str, Any]], *, version: str, user: str | None = None
) -> dict[str, Any]:
    token_points: list[dict[str, Any]] = []
    cost_points: list[dict[str, Any]] = []
    run_points: list[dict[str, Any]] = []
    for rec in records:
        end = _ns(rec.get("ended_at"))
        start = _ns(rec.get("started_at"), end)
        common = _common(rec)
        priced = rec.get("cost_source") != "unpriced" and rec.get("cost_usd") is not None
        for model, usage in _models(rec):
            genai = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": model,
            }
            for kind, token_type in KIND_TO_TYPE.items():
                value = usage.get(kind)
                if not isinstance(value, int) or value <= 0:
                    continue
                token_points.append(
                    {
                        "attributes": _attrs(
                            {
                                **genai,
                                "gen_ai.token.type": token_type,
                                "claude_run.token.kind": kind,
                                **common,
                            }
                        ),
                        "startTimeUnixNano": str(start),
                        "timeUnixNano": str(end),
                        "count": "1",
                        "sum": float(value),
                        "min": float(value),
                        "max": float(value),
                        "bucketCounts": _bucket_counts(value),
                        "explicitBounds": [float(b) for b in TOKEN_BUCKETS],
                    }
                )
            cost = usage.get("cost_usd")
            if priced and isinstance(cost, (int, float)):
                cost_points.append(
                    {
                        "attributes": _attrs(
                            {"gen_ai.request.model": model, "gen_ai.provider.name": "anthropic", **common}
                        ),
                        "startTimeUnixNano": str(start),
                        "timeUnixNano": str(end),
                        "asDouble": float(cost),
                    }
                )
        if rec.get("_update"):
            continue  # the rest of a grown session: its usage counts, it is not another run
        run_points.append(
            {
                "attributes": _attrs(
                    {
                        "claude_run.status": rec.get("status") or "unknown",
                        "claude_run.mode": rec.get("mode") or "unknown",
                        **common,
                    }
                ),
                "startTimeUnixNano": str(start),
                "timeUnixNano": str(end),
                "asInt": "1",
            }
        )
    metrics: list[dict[str, Any]] = []
    if token_points:
        metrics.append(
            {
                "name": "gen_ai.client.token.usage",
                "description": "Number of input and output tokens used.",
                "unit": "{token}",
                "histogram": {"aggregationTemporality": DELTA, "dataPoints": token_points},
            }
        )
    if cost_points:
        metrics.append(
            {
                "name": "claude_run.cost.usage",
                "description": "Cost of priced usage, as Claude Code reported it.",
                "unit": "USD",
                "sum": {"aggregationTemporality": DELTA, "isMonotonic": True, "dataPoints": cost_points},
            }
        )
    if run_points:
        metrics.append(
            {
                "name": "claude_run.runs",
                "description": "Runs recorded by claude-run.",
                "unit": "{run}",
                "sum": {"aggregationTemporality": DELTA, "isMonotonic": True, "dataPoints": run_points},
            }
        )
    return {
        "resourceMetrics": [
            {
                "resource": resource(version, user),
                "scopeMetrics": [{"scope": {"name": "claude_run", "version": version}, "metrics": metrics}],
            }
        ]
    }


def logs_body(
    records: Iterable[Mapping[str, Any]], *, version: str, user: str | None = None
) -> dict[str, Any]:
    log_records = []
    for rec in records:
        end = _ns(rec.get("ended_at"))
        raw_tokens = rec.get("tokens")
        tokens: Mapping[str, Any] = raw_tokens if isinstance(raw_tokens, dict) else {}
        attrs: dict[str, object] = {
            "event.name": "claude_run.run",
            "claude_run.id": rec.get("id"),
            "claude_run.status": rec.get("status"),
            "claude_run.mode": rec.get("mode"),
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": rec.get("model"),
            "session.id": rec.get("session_id"),
            "gen_ai.usage.input_tokens": _int(tokens, "input")
            + _int(tokens, "cache_read")
            + _int(tokens, "cache_creation"),
            "gen_ai.usage.output_tokens": _int(tokens, "output"),
            "gen_ai.usage.cache_read.input_tokens": _int(tokens, "cache_read"),
            "gen_ai.usage.cache_creation.input_tokens": _int(tokens, "cache_creation"),
            "claude_run.cost_usd": float(rec["cost_usd"])
            if isinstance(rec.get("cost_usd"), (int, float))
            else None,
            "claude_run.cost_source": rec.get("cost_source"),
            "claude_run.duration_ms": rec.get("duration_ms")
            if isinstance(rec.get("duration_ms"), int)
            else None,
            **_common(rec),
        }
        log_records.append(
            {
                "timeUnixNano": str(end),
                "observedTimeUnixNano": str(end),
                "severityNumber": 9,
                "severityText": "INFO",
                "body": {"stringValue": "claude_run.run"},
                "attributes": _attrs(attrs),
            }
        )
    return {
        "resourceLogs": [
            {
                "resource": resource(version, user),
                "scopeLogs": [
                    {"scope": {"name": "claude_run", "version": version}, "logRecords": log_records}
                ],
            }
        ]
    }


def _int(tokens: Mapping[str, Any], key: str) -> int:
    value = tokens.get(key)
    return value if isinstance(value, int) else 0
