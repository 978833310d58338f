"""A session's usage as record fields: tokens and cost per model, sidechain apart, facts.

Cost, per model, first that applies:
1. `claude`: the session's last `cost-state` line (Claude Code's own cumulative figures), when its
   token counts for that model equal the deduplicated transcript's (else it covers another span,
   e.g. only the process that resumed the session, and cannot be trusted for the whole);
2. `claude`: `costUSD` written on every message line by older Claude Code versions;
3. `estimate`: list prices per message (tiered prices apply per request);
4. `unpriced`: cost None, never $0.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ..record.build import main_model
from ..stream.contextwin import context_field
from .scan import SYNTHETIC, Msg
from .session import Session, TokenSums

# Below this many prompt tokens in one request no Anthropic model has a higher tier in genai-prices,
# so the cost is linear in the base rates; above it we ask genai-prices for that request alone.
_LINEAR_UP_TO = 200_000


def model_cost(model: str, messages: Iterable[Msg]) -> float | None:
    """List-price cost of a model's messages, or None when the model has no price."""
    from .. import pricing  # lazily: genai-prices loads pydantic

    rates = pricing.rates(model.removesuffix("-fast") if model.endswith("-fast") else model)
    if rates is None or model.endswith("-fast"):
        return None  # fast mode is billed at a premium genai-prices does not list: do not guess
    total = 0.0
    inp = out = read = w5 = w1 = 0
    for m in messages:
        if m[1] + m[3] + m[4] > _LINEAR_UP_TO:
            cost = pricing.message_cost(
                model, input=m[1], output=m[2], cache_read=m[3], cache_creation=m[4], cache_creation_1h=m[5]
            )
            if cost is None:
                return None
            total += cost
            continue
        inp += m[1]
        out += m[2]
        read += m[3]
        w1 += m[5]
        w5 += m[4] - m[5]
    return total + (
        inp * rates.input
        + out * rates.output
        + read * rates.cache_read
        + w5 * rates.cache_write_5m
        + w1 * rates.cache_write_1h
    )


def _state_cost(session: Session, model: str, sums: TokenSums) -> float | None:
    state = session.cost_state
    if not state:
        return None
    entry = state.get("models", {}).get(model)
    if not isinstance(entry, dict):
        return None
    same = (
        entry.get("inputTokens") == sums.input
        and entry.get("outputTokens") == sums.output
        and entry.get("cacheReadInputTokens") == sums.cache_read
        and entry.get("cacheCreationInputTokens") == sums.cache_creation
    )
    cost = entry.get("costUSD")
    if same and isinstance(cost, (int, float)) and not isinstance(cost, bool):
        return float(cost)
    return None


def usage_fields(session: Session) -> dict[str, Any]:
    """tokens, models (with cost each), cost_usd, cost_source, model, sidechain_tokens, notes."""
    per_model = session.per_model()
    by_model: dict[str, list[Msg]] = {}
    peak, peak_model = 0, None
    for m in session.iter_messages():
        if m[0] != SYNTHETIC:
            by_model.setdefault(m[0], []).append(m)
            # The largest main-thread request: a subagent's requests fill its own window.
            if not m[6] and m[1] + m[3] + m[4] > peak:
                peak, peak_model = m[1] + m[3] + m[4], m[0]
    models: dict[str, dict[str, Any]] = {}
    total = TokenSums()
    notes: list[str] = []
    for name in sorted(per_model):
        sums = per_model[name]
        msgs = by_model[name]
        entry: dict[str, Any] = dict(sums.as_dict())
        cost = _state_cost(session, name, sums)
        source = "claude"
        if cost is None and all(m[8] is not None for m in msgs):
            cost = float(sum(m[8] or 0.0 for m in msgs))
        if cost is None:
            cost = model_cost(name, msgs)
            source = "estimate" if cost is not None else "unpriced"
        entry["cost_usd"] = cost
        entry["cost_source"] = source
        entry["messages"] = sums.messages
        models[name] = entry
        for attr in ("input", "output", "cache_read", "cache_creation", "cache_creation_1h", "messages"):
            setattr(total, attr, getattr(total, attr) + getattr(sums, attr))
    sources = {m["cost_source"] for m in models.values()}
    unpriced = [n for n, m in models.items() if m["cost_usd"] is None]
    if not models:
        cost_usd: float | None = 0.0
        cost_source = "claude" if session.cost_state else "estimate"
    elif unpriced:
        # A partial sum would read as the session's cost: leave it unknown, per-model costs stay.
        cost_usd, cost_source = None, "unpriced"
        notes.append("no list price for " + ", ".join(unpriced))
    else:
        cost_usd = float(sum(m["cost_usd"] for m in models.values()))
        cost_source = "claude" if sources == {"claude"} else "estimate"
    main = main_model({name: (sums.output, sums.total) for name, sums in per_model.items()})
    fields: dict[str, Any] = {
        "model": main,
        "tokens": total.as_dict(),
        "models": models,
        "cost_usd": cost_usd,
        "cost_source": cost_source,
        "num_turns": total.messages,
    }
    context = context_field(peak, peak_model, session.compactions)
    if context is not None:
        fields["context"] = context
    side = session.sidechain()
    if side.messages:
        fields["sidechain_tokens"] = side.as_dict()
    if session.counted_elsewhere:
        notes.append(f"{session.counted_elsewhere} message(s) already counted in another session")
    if session.bad_lines:
        notes.append(f"{session.bad_lines} unreadable transcript line(s) skipped")
    if notes:
        fields["notes"] = notes
    return fields


def session_facts(session: Session) -> dict[str, Any]:
    """project, branch, version, interactivity: what the transcript says about where it ran."""
    cwd = session.cwd
    project = os.path.basename(cwd.rstrip("/\\")) if cwd else None
    entry = session.entrypoint
    return {
        "session_id": session.session_id or session.key,
        "claude_version": session.version,
        "project": project or session.project_dir,
        "git": {"branch": session.branch},
        "entrypoint": entry,
        # `cli` is the terminal UI; `sdk-cli` (claude -p), `sdk-ts`, `sdk-py`... are programmatic.
        "interactive": None if entry is None else entry == "cli",
    }
