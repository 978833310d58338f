"""Fold a run's events into its totals: the `result` event is the truth, messages are the fallback.

Traps this handles, each seen in real Claude Code 2.1.330 output (shared samples):
- An `assistant` event's `output_tokens` is the count at message start; the final count arrives in
  the `message_delta` stream event (or only in the `result`).
- One message can arrive as several `assistant` events (one per content block): dedupe by id.
- Several `result` events (stream-json input): `total_cost_usd` and `modelUsage` are cumulative, so
  the last one is the run's total; summing them double-counts.
- A budget stop's `result.usage` is all zeros while its `modelUsage` holds the real figures, and a
  multi-prompt run's `usage` covers the last prompt only: tokens come from `modelUsage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..record.build import main_model
from ..record.schema import ContextUse
from .contextwin import context_field, percent, reported_window, table_window
from .events import (
    AssistantEvent,
    CompactEvent,
    Event,
    InitEvent,
    RateLimitEvent,
    ResultEvent,
    StreamEvent,
    TokenCounts,
)
from .ratelimits import RateLimitTracker


@dataclass
class MessageUsage:
    model: str
    tokens: TokenCounts
    sidechain: bool = False


@dataclass
class ModelTotals:
    tokens: TokenCounts
    cost_usd: float | None
    cost_source: str  # claude | estimate | unpriced


@dataclass
class RunTotals:
    """What the record needs about usage and cost, however the run ended."""

    tokens: TokenCounts
    models: dict[str, ModelTotals]
    cost_usd: float | None
    cost_source: str
    model: str | None
    from_result: bool
    notes: list[str] = field(default_factory=list)


class UsageFolder:
    """Consumes events one at a time; cheap enough to run on every line of a long session."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # stamps rate_limit_events, which carry no time of their own
        self.session_id: str | None = None
        self.init_model: str | None = None
        self.claude_version: str | None = None
        self.messages: dict[str, MessageUsage] = {}
        self.order: list[str] = []
        self.result: ResultEvent | None = None
        self.result_count = 0
        self.turns = 0
        self._anon = 0
        self._after_result = 0  # index in `order` of the first message after the last result
        self._priced: dict[str, tuple[TokenCounts, float | None]] = {}  # live_spend's per-message cache
        # Context: the latest and the largest main-thread request (input + cache read + cache write).
        self.context_tokens = 0
        self.context_model: str | None = None
        self.peak_context = 0
        self.peak_model: str | None = None
        self.compactions = 0
        self.rate_limits = RateLimitTracker()

    def feed(self, event: Event) -> None:
        if self.session_id is None and event.session_id:
            self.session_id = event.session_id
        if isinstance(event, InitEvent):
            self.init_model = self.init_model or event.model
            self.claude_version = self.claude_version or event.claude_version
        elif isinstance(event, AssistantEvent):
            if event.synthetic:
                return
            self._observe(event.message_id, event.model, event.usage, event.parent_tool_use_id is not None)
        elif isinstance(event, StreamEvent):
            if event.usage is not None:
                self._observe(event.message_id, event.model, event.usage, False)
        elif isinstance(event, ResultEvent):
            self.result = event
            self.result_count += 1
            self._after_result = len(self.order)
        elif isinstance(event, RateLimitEvent):
            self.rate_limits.feed(event, self.clock())
        elif isinstance(event, CompactEvent):
            self.compactions += 1

    def _observe(self, message_id: str | None, model: str | None, usage: TokenCounts, side: bool) -> None:
        if message_id is None:
            self._anon += 1
            message_id = f"anon-{self._anon}"
        known = self.messages.get(message_id)
        if known is None:
            known = self.messages[message_id] = MessageUsage(
                model or self.init_model or "unknown", usage, side
            )
            self.order.append(message_id)
            if not side:  # Claude's num_turns counts the main thread's messages, not a subagent's
                self.turns += 1
        else:
            known.tokens = known.tokens.merge_max(usage)
            if model and known.model == "unknown":
                known.model = model
            known.sidechain = known.sidechain or side
        if not known.sidechain:
            # A subagent's requests fill its own window, not the session's.
            t = known.tokens
            ctx = t.input + t.cache_read + t.cache_creation
            if ctx:
                self.context_tokens, self.context_model = ctx, known.model
                if ctx > self.peak_context:
                    self.peak_context, self.peak_model = ctx, known.model

    # -- live figures (status line) -----------------------------------------------------------------

    def live_tokens(self) -> TokenCounts:
        total = TokenCounts()
        for m in self.messages.values():
            total = total + m.tokens
        return total

    def live_cost(self, rates: Callable[[str], Any] | None = None) -> float | None:
        """Claude's cumulative cost once a result arrived; before it, with `rates` (pricing.rates,
        whose first call imports the price table: the caller warms it off the event loop), the
        messages so far at list price. None when no model of them has a price."""
        if self.result is not None:
            return self.result.total_cost_usd
        if rates is None:
            return None
        total: float | None = None
        for m in self.messages.values():
            r = rates(m.model)
            if r is None:
                continue
            t = m.tokens
            one_hour = min(t.cache_creation_1h or 0, t.cache_creation)
            total = (total or 0.0) + (
                t.input * r.input
                + t.output * r.output
                + t.cache_read * r.cache_read
                + (t.cache_creation - one_hour) * r.cache_write_5m
                + one_hour * r.cache_write_1h
            )
        return total

    @property
    def answered(self) -> bool:
        """A result came and no message since: claude is done with its prompt (and about to exit)."""
        return self.result is not None and self._after_result == len(self.order)

    def live_spend(self) -> tuple[float, bool]:
        """(spend so far, whether every message seen could be priced), for budgets shared across runs.

        Claude's cumulative figure from the last `result`, plus list-price estimates of the messages
        seen since (all of them before the first result). Imports the price data: budgeted runs only.
        """
        spent = 0.0
        if self.result is not None and self.result.total_cost_usd is not None:
            spent = self.result.total_cost_usd
        priced = True
        for message_id in self.order[self._after_result :]:
            m = self.messages[message_id]
            known = self._priced.get(message_id)
            if known is None or known[0] != m.tokens:
                known = (m.tokens, _message_cost(m))
                self._priced[message_id] = known
            if known[1] is None:
                priced = priced and not m.tokens.total
            else:
                spent += known[1]
        return spent, priced

    def model_usage(self) -> dict[str, Any] | None:
        return self.result.model_usage if self.result is not None else None

    def context_pct(self) -> float | None:
        """The latest request's share of its model's window (it drops after a compaction)."""
        if not self.context_tokens:
            return None
        model = self.context_model
        window = reported_window(model, self.model_usage()) or table_window(model)
        return percent(self.context_tokens, window)

    def peak_context_pct(self) -> float | None:
        model = self.peak_model
        window = reported_window(model, self.model_usage()) or table_window(model)
        return percent(self.peak_context, window)

    def context_field(self, compactions: int = 0) -> ContextUse | None:
        """The record's `context`; `compactions` seen elsewhere (telemetry) count when higher."""
        return context_field(
            self.peak_context, self.peak_model, max(self.compactions, compactions), self.model_usage()
        )

    # -- final --------------------------------------------------------------------------------------

    def totals(self) -> RunTotals:
        if self.result is not None:
            return self._from_result(self.result)
        return self._from_messages()

    def _from_result(self, result: ResultEvent) -> RunTotals:
        models: dict[str, ModelTotals] = {}
        for name, raw in result.model_usage.items():
            if not isinstance(raw, dict):
                continue
            cost = raw.get("costUSD")
            cost_f = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
            models[name] = ModelTotals(
                TokenCounts.from_model_usage(raw), cost_f, "claude" if cost_f is not None else "unpriced"
            )
        notes: list[str] = []
        if models:
            tokens = TokenCounts()
            for m in models.values():
                tokens = tokens + m.tokens
        else:
            # No per-model breakdown (an API error, or an older CLI): the usage block is all there is.
            tokens = result.usage
            if tokens.total and self.main_model():
                name = self.main_model() or "unknown"
                models[name] = ModelTotals(tokens, result.total_cost_usd, "claude")
        cost = result.total_cost_usd
        source = "claude" if cost is not None else "unpriced"
        if cost is None:
            notes.append("the result event carried no total_cost_usd")
        return RunTotals(tokens, models, cost, source, self.main_model(models), True, notes)

    def _from_messages(self) -> RunTotals:
        models: dict[str, ModelTotals] = {}
        for m in self.messages.values():
            cost = _message_cost(m)
            entry = models.get(m.model)
            if entry is None:
                models[m.model] = ModelTotals(m.tokens, cost, "estimate" if cost is not None else "unpriced")
                continue
            entry.tokens = entry.tokens + m.tokens
            if cost is None or entry.cost_usd is None:
                entry.cost_usd, entry.cost_source = None, "unpriced"
            else:
                entry.cost_usd += cost
        tokens = TokenCounts()
        for e in models.values():
            tokens = tokens + e.tokens
        priced = [e.cost_usd for e in models.values() if e.cost_usd is not None]
        unpriced = sorted(n for n, e in models.items() if e.cost_usd is None and e.tokens.total)
        notes = ["no result event: tokens from per-message usage, cost from list prices"]
        if unpriced:
            notes.append("no list price for " + ", ".join(unpriced))
        if priced:
            cost_total: float | None = sum(priced)
            source = "estimate"
        else:
            cost_total = None if unpriced else 0.0
            source = "unpriced" if unpriced else "estimate"
        return RunTotals(tokens, models, cost_total, source, self.main_model(models), False, notes)

    def main_model(self, models: dict[str, ModelTotals] | None = None) -> str | None:
        """The record's main model (`record.build.main_model`) over the run's models; before any
        usage is known, the model the session started on."""
        if models:
            return main_model({name: (m.tokens.output, m.tokens.total) for name, m in models.items()})
        if self.messages:
            per: dict[str, tuple[int, int]] = {}
            for m in self.messages.values():
                output, total = per.get(m.model, (0, 0))
                per[m.model] = (output + m.tokens.output, total + m.tokens.total)
            return main_model(per)
        return self.init_model


def _message_cost(m: MessageUsage) -> float | None:
    """List price of one message (one API request); None when its model has no known price."""
    from .. import pricing  # only runs that ended without a result, or budgeted runs, pay for prices

    return pricing.message_cost(
        m.model,
        input=m.tokens.input,
        output=m.tokens.output,
        cache_read=m.tokens.cache_read,
        cache_creation=m.tokens.cache_creation,
        cache_creation_1h=m.tokens.cache_creation_1h or 0,
    )


def result_status(result: ResultEvent | None) -> str:
    """The record's status as the events tell it: no `result` means the run never finished."""
    if result is None:
        return "crashed"
    if result.subtype == "error_max_budget_usd" or result.terminal_reason == "budget_exhausted":
        return "budget_exceeded"
    if result.is_error or (result.subtype and result.subtype != "success"):
        return "error"
    return "success"


def usage_record_fields(folder: UsageFolder) -> tuple[dict[str, Any], list[str]]:
    """The record fields a run's events decide, and the notes they call for.

    One reading for every record built from stream-json events: a tracked run's live stream and a
    claude-code-action execution file (the same messages, saved as a JSON array).
    """
    totals = folder.totals()
    result = folder.result
    notes = list(totals.notes)
    if folder.result_count > 1:
        notes.append(f"{folder.result_count} result events; totals from the last (they are cumulative)")
    fields: dict[str, Any] = {
        "session_id": folder.session_id,
        "claude_version": folder.claude_version,
        "model": totals.model or folder.init_model,
        "tokens": totals.tokens.as_dict(),
        "cost_usd": totals.cost_usd,
        "cost_source": totals.cost_source,
        "models": model_usage_dict(totals),
        "duration_ms": result.duration_ms if result else None,
        "duration_api_ms": result.duration_api_ms if result else None,
        "num_turns": result.num_turns if result else folder.turns,
        "subtype": result.subtype if result else None,
        "is_error": result.is_error if result else None,
        "terminal_reason": result.terminal_reason if result else None,
        "api_error_status": result.api_error_status if result else None,
    }
    return fields, notes


def model_usage_dict(totals: RunTotals) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, m in totals.models.items():
        entry: dict[str, Any] = dict(m.tokens.as_dict())
        entry["cost_usd"] = m.cost_usd
        entry["cost_source"] = m.cost_source
        out[name] = entry
    return out
