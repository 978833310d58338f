"""Synthetic ledger records for the telemetry exporters' tests."""

from __future__ import annotations

from typing import Any

MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")


def record(
    rid: str,
    *,
    project: str = "proj",
    model: str = MODELS[0],
    cost: float | None = 0.25,
    tokens: tuple[int, int, int, int] = (10, 20, 300, 40),
    status: str = "success",
    mode: str = "non-interactive",
    tags: dict[str, str] | None = None,
    session_id: str | None = None,
    supersedes: str | None = None,
    ended_at: str = "2026-11-23T10:00:00.000Z",
    duration_ms: int = 1000,
    requests: int | None = None,
) -> dict[str, Any]:
    inp, out, cr, cc = tokens
    usage = {"input": inp, "output": out, "cache_read": cr, "cache_creation": cc}
    rec: dict[str, Any] = {
        "v": 1,
        "id": rid,
        "mode": mode,
        "status": status,
        "project": project,
        "model": model,
        "tokens": dict(usage),
        "cost_usd": cost,
        "cost_source": "claude" if cost is not None else "unpriced",
        "models": {model: {**usage, "cost_usd": cost}},
        "tags": tags or {},
        "session_id": session_id or f"s-{rid}",
        "started_at": "2026-11-23T09:59:59.000Z",
        "ended_at": ended_at,
        "duration_ms": duration_ms,
    }
    if supersedes:
        rec["supersedes"] = supersedes
    if requests is not None:
        rec["telemetry"] = {"requests": {"count": requests, "by_model": {model: requests}}}
    return rec
