"""The ledger row: one versioned schema, defined in one place.

A record is a plain JSON object (one compact line in the ledger). Writers produce the current
`SCHEMA_VERSION`; readers accept older versions and ignore fields they do not know, so a newer
claude-run's ledger stays readable by an older one (it warns once, see `ledger.store`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal, TypedDict

from .modes import HYBRID as HYBRID  # re-exported: the schema is where readers look for them
from .modes import IMPORTED as IMPORTED
from .modes import INTERACTIVE as INTERACTIVE
from .modes import MODES as MODES
from .modes import NON_INTERACTIVE as NON_INTERACTIVE
from .modes import RUN_MODES as RUN_MODES
from .modes import TELEMETRY as TELEMETRY

SCHEMA_VERSION = 1

STATUSES: tuple[str, ...] = ("success", "error", "budget_exceeded", "interrupted", "timeout", "crashed")
CostSource = Literal["claude", "estimate", "unpriced"]

TOKEN_KINDS: tuple[str, ...] = ("input", "output", "cache_read", "cache_creation")


class Tokens(TypedDict, total=False):
    input: int
    output: int
    cache_read: int
    cache_creation: int
    # The 5-minute / 1-hour split of cache writes, kept when Claude reports it (they are priced apart).
    cache_creation_5m: int
    cache_creation_1h: int


class ModelUsage(TypedDict, total=False):
    input: int
    output: int
    cache_read: int
    cache_creation: int
    cache_creation_5m: int
    cache_creation_1h: int
    cost_usd: float | None
    cost_source: CostSource


class GitInfo(TypedDict, total=False):
    branch: str | None
    commit: str | None
    remote: str | None


class QuotaWindow(TypedDict, total=False):
    utilization: float | None  # a fraction of the window; above 1 happens
    resets_at: str | None
    status: str | None  # allowed | allowed_warning | rejected
    seen_at: str


class RateLimits(TypedDict, total=False):
    """The plan quota as the run's last `rate_limit_event`s reported it (subscription logins)."""

    seen_at: str
    status: str | None
    limiting: str | None
    overage: bool | None
    windows: dict[str, QuotaWindow]


class ContextUse(TypedDict, total=False):
    peak_tokens: int
    model: str | None
    window: int | None
    window_source: str | None  # claude | table
    peak_pct: float | None
    compactions: int


class AgentUsage(TypedDict, total=False):
    requests: int
    input: int
    output: int
    cache_read: int
    cache_creation: int
    cache_creation_1h: int
    cost_usd: float | None
    cost_source: CostSource


class ToolUse(TypedDict, total=False):
    calls: int
    failures: int
    duration_ms: int  # telemetry only


class Attribution(TypedDict, total=False):
    """Where the run's money went (built by `stream/attribution.py`, `transcripts/attribution.py`)."""

    source: str  # telemetry | transcript | stream
    complete: bool  # the agents' tokens add up to the record's
    agents: dict[str, AgentUsage]  # `main`, or a subagent's type
    tools: dict[str, ToolUse]
    mcp_servers: dict[str, dict[str, Any]]  # ToolUse, plus AgentUsage figures Claude attributed
    long_context: dict[str, Any]  # `over` (prompt tokens) and per model the tokens of such requests


class Record(TypedDict, total=False):
    v: int
    id: str
    started_at: str
    ended_at: str
    mode: str
    status: str
    exit_code: int | None
    session_id: str | None
    claude_version: str | None
    model: str | None
    tokens: Tokens
    cost_usd: float | None
    cost_source: str
    models: dict[str, ModelUsage]
    duration_ms: int | None
    duration_api_ms: int | None
    wall_ms: int | None
    num_turns: int | None
    subtype: str | None
    is_error: bool | None
    terminal_reason: str | None
    api_error_status: int | None
    project: str | None
    cwd_sha256: str | None
    git: GitInfo
    ci: dict[str, Any] | None
    tags: dict[str, str]
    task_sha256: str | None
    task: str
    user: str | None
    source: str
    supersedes: str | None
    notes: list[str]
    telemetry: dict[str, Any]
    telemetry_agrees: bool | None  # telemetry totals equal the result event's
    rate_limits: RateLimits
    context: ContextUse
    attribution: Attribution  # where the money went
    claude_run_version: str


def named_target(rec: Mapping[str, Any]) -> str | None:
    """The id a record names in `supersedes`: a non-empty string, else none (a number or an object
    there names nothing). Writers and maintenance use it; which records count is the read
    engine's rule (`query.fold`)."""
    target = rec.get("supersedes")
    return target if type(target) is str and target else None


def claimed_session(rec: Mapping[str, Any]) -> str | None:
    """The session a record accounts for, so that an import of it would not count (`query.fold`,
    rule 3): a non-empty string `session_id` on a record that is not itself `imported`."""
    sid = rec.get("session_id")
    if isinstance(sid, str) and sid and rec.get("mode") != IMPORTED:
        return sid
    return None


def new_id(now_ms: int | None = None) -> str:
    """A new record id (a ULID); see `claude_run.record.ids`."""
    from .ids import new_id as _new_id

    return _new_id(now_ms)


def iso_utc(ts: float) -> str:
    """UTC ISO-8601 with milliseconds and a Z suffix: sorts lexically, parses everywhere."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """Parse the timestamps we write (and Claude's), always returning an aware UTC datetime."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def empty_tokens() -> Tokens:
    return {"input": 0, "output": 0, "cache_read": 0, "cache_creation": 0}


def total_tokens(tokens: Tokens | dict[str, Any]) -> int:
    total = 0
    for kind in TOKEN_KINDS:
        value = tokens.get(kind)
        total += value if isinstance(value, int) else 0
    return total


@functools.lru_cache(maxsize=1)
def user_hash() -> str:
    """A stable, non-reversible tag for who ran it (user@host), so a shared ledger can be split by person."""
    import getpass
    import hashlib
    import socket

    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # getpass raises various errors in odd containers; the hash is a nicety
        who = f"uid{os.getuid() if hasattr(os, 'getuid') else 0}"
    return hashlib.sha256(who.encode()).hexdigest()[:16]


def upgrade(raw: dict[str, Any]) -> Record:
    """Bring an older record up to the current shape, filling what reports rely on.

    Records are read far more often than written, so this stays cheap: only missing keys are set.
    """
    rec: dict[str, Any] = raw
    tokens = rec.get("tokens")
    if not isinstance(tokens, dict):
        rec["tokens"] = empty_tokens()
    if not isinstance(rec.get("models"), dict):
        rec["models"] = {}
    if not isinstance(rec.get("tags"), dict):
        rec["tags"] = {}
    if not isinstance(rec.get("git"), dict):
        rec["git"] = {}
    rec.setdefault("cost_source", "unpriced" if rec.get("cost_usd") is None else "claude")
    return rec  # type: ignore[return-value]


def is_record(raw: object) -> bool:
    """The minimum for a line to count as a record: an object with a version and an id."""
    return isinstance(raw, dict) and isinstance(raw.get("v"), int) and isinstance(raw.get("id"), str)


# Bounds past which a record cannot be true (docs/ledger.md, "verify"): one run costing more than
# $100,000, or more than ten billion tokens of one kind, is a corrupted or forged line. `ledger
# verify` reports it (`implausible`) and the read engine keeps it out of every total, with a
# warning (`query/schema.py`).
MAX_RUN_COST_USD = 100_000.0
MAX_RUN_TOKENS = 10_000_000_000


def implausible(rec: dict[str, Any]) -> str | None:
    """Why a well-formed record cannot be true (a negative, non-finite or absurd cost or token
    count), or None. `ledger verify` reports these; readers keep them out of totals."""
    cost = rec.get("cost_usd")
    if cost is not None:
        if isinstance(cost, bool) or not isinstance(cost, (int, float)):
            return f"cost_usd is not a number ({str(cost)[:40]!r})"
        if cost != cost or cost in (float("inf"), float("-inf")):
            return f"cost_usd is not finite ({cost})"
        if cost < 0:
            return f"negative cost_usd ({cost})"
        if cost > MAX_RUN_COST_USD:
            return f"absurd cost_usd ({cost:.6g} > {MAX_RUN_COST_USD:,.0f} for one run)"
    tokens = rec.get("tokens")
    if isinstance(tokens, dict):
        for kind, count in tokens.items():
            if count is None:
                continue
            if isinstance(count, bool) or not isinstance(count, (int, float)):
                return f"tokens.{kind} is not a number ({str(count)[:40]!r})"
            if count != count or count in (float("inf"), float("-inf")):
                return f"tokens.{kind} is not finite"
            if count < 0:
                return f"negative tokens.{kind} ({count})"
            if count > MAX_RUN_TOKENS:
                return f"absurd tokens.{kind} ({count:.6g} > {MAX_RUN_TOKENS:,} for one run)"
    elif tokens is not None:
        return "tokens is not an object"
    return None
