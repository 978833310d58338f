"""What a person sees on stderr: a live status line, the hybrid event view, a one-line summary.

stdout is reserved for the result (or the record with --json, or raw events with --raw), so every
byte here goes to stderr and a pipeline downstream sees only what it asked for.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ..stream.events import (
    AssistantEvent,
    Event,
    InitEvent,
    RateLimitEvent,
    ResultEvent,
    StreamEvent,
    UserEvent,
)
from ..text import fmt_duration, fmt_pct, fmt_tokens, fmt_usd, plural, terminal

if TYPE_CHECKING:
    from ..stream.usage import UsageFolder

_SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


_SHORT_WINDOW = {"five_hour": "5h", "seven_day": "7d"}


def quota_text(windows: list[tuple[str, float | None]]) -> str:
    """`5h 81% · 7d 33%`: the windows with a known utilization, in the order given."""
    parts = [f"{_SHORT_WINDOW.get(name, name)} {fmt_pct(u * 100)}" for name, u in windows if u is not None]
    return " · ".join(parts)


def live_limits(folder: UsageFolder) -> str:
    """The status line's tail: the latest request's context % and the quota windows, when known."""
    out = ""
    pct = folder.context_pct()
    if pct is not None:
        out += f" · ctx {fmt_pct(pct)}"
    tracker = folder.rate_limits
    if tracker.windows:
        quota = quota_text([(n, tracker.utilization(n)) for n in ("five_hour", "seven_day")])
        if quota:
            out += f" · {quota}"
    return out


class StatusLine:
    """A single self-overwriting line, drawn only on a terminal and at most ~10 times a second."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._shown = False
        self._frame = 0

    def update(
        self,
        elapsed: float,
        turns: int,
        tokens: int,
        cost: float | None,
        force: bool = False,
        extra: str = "",
    ) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        self._frame = (self._frame + 1) % len(_SPIN)
        cost_text = f" · ≈{fmt_usd(cost)}" if cost is not None else ""
        spin = _SPIN[self._frame]
        text = f"{spin} claude · {elapsed:5.1f}s · turn {turns} · {fmt_tokens(tokens)} tok{cost_text}{extra}"
        width = shutil.get_terminal_size((80, 20)).columns
        self.stream.write("\r\x1b[2K" + text[: max(width - 1, 10)])
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False


def _short(text: str, limit: int) -> str:
    text = text.replace("\r", "")
    if len(text) <= limit:
        return text
    return text[:limit] + f"… (+{len(text) - limit} chars)"


def _compact(obj: Any, limit: int = 300) -> str:
    import orjson

    try:
        return _short(orjson.dumps(obj).decode(), limit)
    except TypeError:
        return _short(repr(obj), limit)


class HybridView:
    """Every event, readable: the API traffic of a run as it happens (hybrid mode)."""

    def __init__(self, stream: TextIO | None = None, show_partial: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.show_partial = show_partial
        self._seen_blocks: set[tuple[str, int]] = set()

    def _out(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def show(self, event: Event) -> None:
        if isinstance(event, InitEvent):
            self._out(f"▶ session {event.session_id} · model {event.model} · claude {event.claude_version}")
        elif isinstance(event, AssistantEvent):
            self._assistant(event)
        elif isinstance(event, UserEvent):
            for block in event.content:
                if block.get("type") == "tool_result":
                    content = block.get("content")
                    if isinstance(content, list):
                        content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
                    flag = " (error)" if block.get("is_error") else ""
                    self._out(f"  ← tool result{flag}: {_short(str(content), 200)}")
        elif isinstance(event, StreamEvent):
            if event.kind == "message_delta" and event.usage is not None:
                self._out(f"  · message {event.message_id}: {event.usage.output} output tokens (final)")
            elif self.show_partial:
                self._out(f"  ~ {event.kind} {_compact(event.raw.get('event'), 160)}")
        elif isinstance(event, RateLimitEvent):
            windows = " · ".join(
                f"{w.name} {fmt_pct(w.utilization * 100) if w.utilization is not None else '?'}"
                + (f" ({w.status})" if w.status else "")
                for w in event.windows
            )
            self._out(f"  ⌛ quota {event.status or '?'}: {windows or 'no window detail'}")
        elif isinstance(event, ResultEvent):
            status = "error" if event.is_error else "ok"
            self._out(
                f"■ result {event.subtype} ({status}) · {plural(event.num_turns, 'turn')} · "
                f"cost {fmt_usd(event.total_cost_usd)} · {fmt_duration(event.duration_ms)}"
            )
            for model, mu in event.model_usage.items():
                if isinstance(mu, dict):
                    self._out(
                        f"  {model}: in {mu.get('inputTokens', 0)} · out {mu.get('outputTokens', 0)} · "
                        f"cache read {mu.get('cacheReadInputTokens', 0)} · "
                        f"cache write {mu.get('cacheCreationInputTokens', 0)} · {fmt_usd(mu.get('costUSD'))}"
                    )
        else:
            sub = event.raw.get("subtype")
            self._out(f"  · {event.type}{'/' + str(sub) if sub else ''}")

    def _assistant(self, event: AssistantEvent) -> None:
        u = event.usage
        key = event.message_id or "?"
        for i, block in enumerate(event.content):
            if (key, i) in self._seen_blocks:
                continue
            self._seen_blocks.add((key, i))
            kind = block.get("type")
            if kind == "text":
                self._out(f"◆ {event.model}: {_short(str(block.get('text', '')), 2000)}")
            elif kind == "tool_use":
                self._out(f"  → tool {block.get('name')} {_compact(block.get('input'), 400)}")
            elif kind == "thinking":
                self._out(f"  … thinking {_short(str(block.get('thinking', '')), 200)}")
        if (key, -1) not in self._seen_blocks:
            self._seen_blocks.add((key, -1))
            from ..stream.contextwin import percent, table_window

            ctx = u.input + u.cache_read + u.cache_creation
            pct = percent(ctx, table_window(event.model))
            ctx_text = (
                f" · ctx {fmt_pct(pct)}" if pct is not None and event.parent_tool_use_id is None else ""
            )
            self._out(
                f"  · message {key} · {event.model} · in {u.input} · cache read {u.cache_read} · "
                f"cache write {u.cache_creation}{ctx_text}"
            )


def summary_line(record: dict[str, Any]) -> str:
    tokens = record.get("tokens") or {}
    status = record.get("status", "?")
    mark = "✓" if status == "success" else "✗"
    cost = fmt_usd(record.get("cost_usd"))
    if record.get("cost_source") == "estimate":
        cost = "≈" + cost
    parts = [
        f"{mark} {status}",
        str(record.get("model") or "-"),
        f"in {fmt_tokens(tokens.get('input', 0))} out {fmt_tokens(tokens.get('output', 0))} "
        f"cache r {fmt_tokens(tokens.get('cache_read', 0))} w {fmt_tokens(tokens.get('cache_creation', 0))}",
        cost,
        fmt_duration(record.get("duration_ms")),
    ]
    if record.get("num_turns") is not None:
        parts.append(plural(record["num_turns"], "turn"))
    return " · ".join(terminal(part) for part in parts)
