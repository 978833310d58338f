"""How full a run's context window got: the largest request against the model's window.

A request's context is everything it sent: `input + cache_read + cache_creation` tokens (output is
not part of the prompt). The window is Claude's own figure, `modelUsage[model].contextWindow` of
the `result` event, when present; otherwise (a run without a result, an imported transcript) the
table below, which follows Claude Code 2.1.330: a model asked for with the `[1m]` suffix has a
1,000,000-token window, every other Claude model 200,000. A model the table does not know (not a
Claude model) gets no window and no percentage rather than a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..record.schema import ContextUse

LONG_WINDOW = 1_000_000
DEFAULT_WINDOW = 200_000
_CLAUDE_FAMILIES = ("claude", "opus", "sonnet", "haiku")


def table_window(model: str | None) -> int | None:
    """The documented fallback: 1M for `[1m]` models, 200k for other Claude models, else unknown."""
    if not model:
        return None
    name = model.lower()
    if "[1m]" in name:
        return LONG_WINDOW
    if any(family in name for family in _CLAUDE_FAMILIES):
        return DEFAULT_WINDOW
    return None


def reported_window(model: str | None, model_usage: Mapping[str, Any] | None) -> int | None:
    """Claude's own `contextWindow` for `model` in a `modelUsage` map, when it gave one."""
    if not model or not model_usage:
        return None
    entry = model_usage.get(model)
    if not isinstance(entry, Mapping):
        return None
    value = entry.get("contextWindow")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def percent(tokens: int, window: int | None) -> float | None:
    return round(tokens * 100 / window, 1) if window else None


def context_field(
    peak_tokens: int,
    model: str | None,
    compactions: int,
    model_usage: Mapping[str, Any] | None = None,
) -> ContextUse | None:
    """The record's `context`, or None when the run made no request and compacted nothing."""
    if peak_tokens <= 0 and compactions <= 0:
        return None
    window = reported_window(model, model_usage)
    source = "claude"
    if window is None:
        window, source = table_window(model), "table"
    out: ContextUse = {
        "peak_tokens": peak_tokens,
        "model": model,
        "window": window,
        "window_source": source if window is not None else None,
        "peak_pct": percent(peak_tokens, window),
        "compactions": compactions,
    }
    return out
