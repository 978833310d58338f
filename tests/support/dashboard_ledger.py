"""Known ledgers for the dashboard tests: records shaped like `runner.build_run_record` writes them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from claude_run.ledger.store import append_lines, encode
from claude_run.record.schema import SCHEMA_VERSION, iso_utc, new_id


def make_record(
    *,
    when: datetime,
    model: str | None = "claude-sonnet-4-5",
    project: str | None = "alpha",
    branch: str | None = "main",
    tokens: tuple[int, int, int, int] = (100, 50, 1000, 200),
    cost: float | None = 0.01,
    cost_source: str | None = None,
    status: str = "success",
    tags: dict[str, str] | None = None,
    duration_ms: int | None = 12_345,
    ci_url: str | None = None,
    models: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ts = when.timestamp()
    inp, out, read, write = tokens
    rec: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "id": new_id(int(ts * 1000)),
        "started_at": iso_utc(ts),
        "ended_at": iso_utc(ts + (duration_ms or 0) / 1000),
        "mode": "non-interactive",
        "status": status,
        "exit_code": 0 if status == "success" else 1,
        "tags": dict(tags or {}),
        "task_sha256": None,
        "user": "0123456789abcdef",
        "source": "run",
        "claude_run_version": "0.1.0",
        "session_id": "s-" + new_id()[-8:],
        "claude_version": "2.1.330",
        "model": model,
        "tokens": {"input": inp, "output": out, "cache_read": read, "cache_creation": write},
        "cost_usd": cost,
        "cost_source": cost_source or ("claude" if cost is not None else "unpriced"),
        "models": models
        if models is not None
        else (
            {
                model: {
                    "input": inp,
                    "output": out,
                    "cache_read": read,
                    "cache_creation": write,
                    "cost_usd": cost,
                    "cost_source": cost_source or ("claude" if cost is not None else "unpriced"),
                }
            }
            if model
            else {}
        ),
        "duration_ms": duration_ms,
        "duration_api_ms": duration_ms,
        "num_turns": 3,
        "subtype": "success" if status == "success" else "error_during_execution",
        "is_error": status != "success",
        "terminal_reason": None,
        "api_error_status": None,
        "project": project,
        "cwd_sha256": None,
        "git": {"branch": branch, "commit": "0" * 40, "remote": None},
        "ci": {"provider": "github", "workflow": "spend", "job": "review", "url": ci_url} if ci_url else None,
    }
    return rec


def known_records(today: datetime) -> list[dict[str, Any]]:
    """Three days, two priced models plus one unknown model, projects, tags and an unpriced run."""
    noon = today.replace(hour=12, minute=0, second=0, microsecond=0)
    d0, d1, d2 = noon - timedelta(days=2), noon - timedelta(days=1), noon
    return [
        make_record(
            when=d0,
            model="claude-sonnet-4-5",
            project="alpha",
            tokens=(1000, 500, 20000, 3000),
            cost=0.125,
            tags={"team": "web"},
        ),
        make_record(
            when=d0 + timedelta(hours=1),
            model="claude-haiku-4-5",
            project="beta",
            branch="feat/x",
            tokens=(400, 100, 0, 0),
            cost=0.0009,
            tags={"team": "data"},
            status="error",
        ),
        make_record(
            when=d1,
            model="claude-sonnet-4-5",
            project="alpha",
            tokens=(2000, 1500, 50000, 0),
            cost=1.5,
            tags={"team": "web", "pr": "42"},
            ci_url="https://github.com/acme/app/actions/runs/1",
        ),
        make_record(
            when=d1 + timedelta(hours=2),
            model="claude-opus-4-1",
            project="beta",
            branch="main",
            tokens=(300, 2000, 10000, 500),
            cost=2.75,
            cost_source="estimate",
        ),
        make_record(
            when=d2,
            model="mystery-model-9",
            project="gamma",
            tokens=(700, 300, 1000, 0),
            cost=None,
            tags={"team": "web"},
        ),
        make_record(
            when=d2 + timedelta(minutes=5),
            model="claude-haiku-4-5",
            project="alpha",
            tokens=(1234, 5678, 0, 0),
            cost=0.031415,
        ),
    ]


def write_ledger(path: Path, records: list[dict[str, Any]]) -> Path:
    append_lines(path, [encode(r) for r in records], fsync=False)
    return path


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def with_quota(
    rec: dict[str, Any], five_hour: float | None, seven_day: float | None, seen: datetime
) -> dict[str, Any]:
    """`rec` with the `rate_limits` a subscription run records (built by the run's own tracker)."""
    from claude_run.stream.events import RateLimitEvent, WindowState
    from claude_run.stream.ratelimits import RateLimitTracker

    reset = int(seen.timestamp()) + 3600
    windows = tuple(
        WindowState(name, value, reset, "allowed")
        for name, value in (("five_hour", five_hour), ("seven_day", seven_day))
        if value is not None
    )
    tracker = RateLimitTracker()
    tracker.feed(
        RateLimitEvent({"type": "rate_limit_event"}, "allowed", "five_hour", False, windows), seen.timestamp()
    )
    field = tracker.field()
    assert field is not None
    return {**rec, "rate_limits": field}
