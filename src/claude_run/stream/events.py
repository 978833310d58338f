"""stream-json lines → typed events.

Claude Code's stream-json output is one JSON object per line. We type only what accounting and
display need and keep the raw object for everything else (hybrid display, `--raw` tee). Unknown
event types pass through as `OtherEvent`: a newer CLI must never break a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class TokenCounts:
    """Usage as the Messages API reports it: `input` excludes both kinds of cache tokens."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    cache_creation_5m: int | None = None
    cache_creation_1h: int | None = None

    @classmethod
    def from_api(cls, usage: object) -> TokenCounts:
        """From a Messages API `usage` object (snake_case keys)."""
        if not isinstance(usage, dict):
            return cls()
        split = usage.get("cache_creation")
        five = one = None
        if isinstance(split, dict):
            five = _int(split.get("ephemeral_5m_input_tokens"))
            one = _int(split.get("ephemeral_1h_input_tokens"))
        return cls(
            input=_int(usage.get("input_tokens")),
            output=_int(usage.get("output_tokens")),
            cache_read=_int(usage.get("cache_read_input_tokens")),
            cache_creation=_int(usage.get("cache_creation_input_tokens")),
            cache_creation_5m=five,
            cache_creation_1h=one,
        )

    @classmethod
    def from_model_usage(cls, usage: object) -> TokenCounts:
        """From a `modelUsage` entry of a result event or cost-state line (camelCase keys)."""
        if not isinstance(usage, dict):
            return cls()
        five = usage.get("cacheCreationEphemeral5mInputTokens")
        one = usage.get("cacheCreationEphemeral1hInputTokens")
        return cls(
            input=_int(usage.get("inputTokens")),
            output=_int(usage.get("outputTokens")),
            cache_read=_int(usage.get("cacheReadInputTokens")),
            cache_creation=_int(usage.get("cacheCreationInputTokens")),
            cache_creation_5m=_int(five) if five is not None else None,
            cache_creation_1h=_int(one) if one is not None else None,
        )

    def merge_max(self, other: TokenCounts) -> TokenCounts:
        """Two reports of the SAME message: each field's largest value is the latest (counts only grow)."""
        return TokenCounts(
            input=max(self.input, other.input),
            output=max(self.output, other.output),
            cache_read=max(self.cache_read, other.cache_read),
            cache_creation=max(self.cache_creation, other.cache_creation),
            cache_creation_5m=_max_opt(self.cache_creation_5m, other.cache_creation_5m),
            cache_creation_1h=_max_opt(self.cache_creation_1h, other.cache_creation_1h),
        )

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            input=self.input + other.input,
            output=self.output + other.output,
            cache_read=self.cache_read + other.cache_read,
            cache_creation=self.cache_creation + other.cache_creation,
            cache_creation_5m=_add_opt(self.cache_creation_5m, other.cache_creation_5m),
            cache_creation_1h=_add_opt(self.cache_creation_1h, other.cache_creation_1h),
        )

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_creation

    def as_dict(self) -> dict[str, int]:
        out = {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_creation": self.cache_creation,
        }
        if self.cache_creation_5m is not None or self.cache_creation_1h is not None:
            out["cache_creation_5m"] = self.cache_creation_5m or 0
            out["cache_creation_1h"] = self.cache_creation_1h or 0
        return out


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value):
        return max(int(value), 0)
    return 0


def _max_opt(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _add_opt(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Event:
    raw: dict[str, Any]

    @property
    def type(self) -> str:
        t = self.raw.get("type")
        return t if isinstance(t, str) else ""

    @property
    def session_id(self) -> str | None:
        return _str(self.raw.get("session_id"))


@dataclass(frozen=True)
class InitEvent(Event):
    model: str | None = None
    claude_version: str | None = None
    cwd: str | None = None


@dataclass(frozen=True)
class AssistantEvent(Event):
    """One assistant message snapshot. Its `usage.output_tokens` is the count at message START."""

    message_id: str | None = None
    model: str | None = None
    usage: TokenCounts = field(default_factory=TokenCounts)
    content: tuple[dict[str, Any], ...] = ()
    parent_tool_use_id: str | None = None

    @property
    def synthetic(self) -> bool:
        # Claude Code invents assistant messages for API errors; they were never billed.
        return self.model == "<synthetic>"


@dataclass(frozen=True)
class UserEvent(Event):
    content: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class StreamEvent(Event):
    """`--include-partial-messages`: one raw Messages API SSE event, tagged with its message id."""

    kind: str = ""
    message_id: str | None = None
    model: str | None = None
    usage: TokenCounts | None = None


@dataclass(frozen=True)
class ResultEvent(Event):
    subtype: str | None = None
    is_error: bool = False
    result_text: str | None = None
    total_cost_usd: float | None = None
    model_usage: dict[str, Any] = field(default_factory=dict)
    usage: TokenCounts = field(default_factory=TokenCounts)
    duration_ms: int | None = None
    duration_api_ms: int | None = None
    num_turns: int | None = None
    terminal_reason: str | None = None
    api_error_status: int | None = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class WindowState:
    """One quota window as a `rate_limit_event` reported it (a subscription login's 5-hour, 7-day...)."""

    name: str
    utilization: float | None = None  # fraction of the window used; above 1 happens
    resets_at: int | None = None  # epoch seconds
    status: str | None = None  # allowed | allowed_warning | rejected


@dataclass(frozen=True)
class RateLimitEvent(Event):
    """`rate_limit_event`: emitted on OAuth (subscription) logins when the quota headers change."""

    status: str | None = None  # whether requests are refused (the limiting window's status)
    limiting: str | None = None  # `rateLimitType`: the window that currently limits
    overage: bool | None = None  # `isUsingOverage`
    windows: tuple[WindowState, ...] = ()


@dataclass(frozen=True)
class CompactEvent(Event):
    """`system/compact_boundary`: Claude compacted the conversation (auto or /compact)."""

    trigger: str | None = None
    pre_tokens: int | None = None


@dataclass(frozen=True)
class OtherEvent(Event):
    pass


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _fraction(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _epoch(value: object) -> int | None:
    fraction = _fraction(value)
    # Beyond year 9999 no datetime can hold it: treat it as no reset time rather than fail later.
    return round(fraction) if fraction is not None and fraction < 253_402_300_800 else None


def _window(name: str, raw: dict[str, Any]) -> WindowState:
    return WindowState(
        name, _fraction(raw.get("utilization")), _epoch(raw.get("resetsAt")), _str(raw.get("status"))
    )


def rate_limit_event(raw: dict[str, Any]) -> RateLimitEvent:
    """Type a `rate_limit_event`; odd shapes give empty fields, never an exception."""
    info = raw.get("rate_limit_info")
    info = info if isinstance(info, dict) else {}
    limiting = _str(info.get("rateLimitType"))
    status = _str(info.get("status"))
    unified = info.get("unifiedWindows")
    windows: tuple[WindowState, ...] = ()
    if isinstance(unified, dict):
        windows = tuple(
            _window(k, v) for k, v in unified.items() if isinstance(k, str) and isinstance(v, dict)
        )
    elif limiting is not None and _fraction(info.get("utilization")) is not None:
        # Without the per-window detail the top-level fields describe the limiting window.
        windows = (_window(limiting, info),)
    overage = info.get("isUsingOverage")
    return RateLimitEvent(
        raw,
        status=status,
        limiting=limiting,
        overage=overage if isinstance(overage, bool) else None,
        windows=windows,
    )


def _blocks(message: object) -> tuple[dict[str, Any], ...]:
    if not isinstance(message, dict):
        return ()
    content = message.get("content")
    if isinstance(content, str):
        return ({"type": "text", "text": content},)
    if isinstance(content, list):
        return tuple(b for b in content if isinstance(b, dict))
    return ()


def from_dict(raw: dict[str, Any]) -> Event:
    """Type one decoded stream-json object. Never raises on odd shapes: fields default."""
    kind = raw.get("type")
    if kind == "assistant":
        msg = raw.get("message")
        msg = msg if isinstance(msg, dict) else {}
        return AssistantEvent(
            raw,
            message_id=_str(msg.get("id")),
            model=_str(msg.get("model")),
            usage=TokenCounts.from_api(msg.get("usage")),
            content=_blocks(msg),
            parent_tool_use_id=_str(raw.get("parent_tool_use_id")),
        )
    if kind == "stream_event":
        ev = raw.get("event")
        ev = ev if isinstance(ev, dict) else {}
        sub = _str(ev.get("type")) or ""
        message_id = _str(raw.get("api_message_id"))
        model = None
        usage: TokenCounts | None = None
        if sub == "message_start" and isinstance(ev.get("message"), dict):
            message = ev["message"]
            message_id = message_id or _str(message.get("id"))
            model = _str(message.get("model"))
            usage = TokenCounts.from_api(message.get("usage"))
        elif sub == "message_delta" and isinstance(ev.get("usage"), dict):
            usage = TokenCounts.from_api(ev["usage"])
        return StreamEvent(raw, kind=sub, message_id=message_id, model=model, usage=usage)
    if kind == "result":
        mu = raw.get("modelUsage")
        cost = raw.get("total_cost_usd")
        errors = raw.get("errors")
        return ResultEvent(
            raw,
            subtype=_str(raw.get("subtype")),
            is_error=raw.get("is_error") is True,
            result_text=_str(raw.get("result")),
            total_cost_usd=float(cost)
            if isinstance(cost, (int, float)) and not isinstance(cost, bool)
            else None,
            model_usage=mu if isinstance(mu, dict) else {},
            usage=TokenCounts.from_api(raw.get("usage")),
            duration_ms=_opt_int(raw.get("duration_ms")),
            duration_api_ms=_opt_int(raw.get("duration_api_ms")),
            num_turns=_opt_int(raw.get("num_turns")),
            terminal_reason=_str(raw.get("terminal_reason")),
            api_error_status=_opt_int(raw.get("api_error_status")),
            errors=tuple(e for e in errors if isinstance(e, str)) if isinstance(errors, list) else (),
        )
    if kind == "user":
        return UserEvent(raw, content=_blocks(raw.get("message")))
    if kind == "system":
        subtype = raw.get("subtype")
        if subtype == "init":
            return InitEvent(
                raw,
                model=_str(raw.get("model")),
                claude_version=_str(raw.get("claude_code_version")),
                cwd=_str(raw.get("cwd")),
            )
        if subtype == "compact_boundary":
            meta = raw.get("compact_metadata")
            meta = meta if isinstance(meta, dict) else {}
            return CompactEvent(
                raw, trigger=_str(meta.get("trigger")), pre_tokens=_opt_int(meta.get("pre_tokens"))
            )
    if kind == "rate_limit_event":
        return rate_limit_event(raw)
    return OtherEvent(raw)


def parse_line(line: bytes | str) -> Event | None:
    """One stream-json line → event; None for anything that is not a JSON object (noise, torn tail)."""
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    return from_dict(raw)
