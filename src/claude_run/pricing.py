"""List prices, for estimates and cache savings only: Claude's own reported cost always wins.

Prices come from `genai-prices` (Pydantic's offline price data). It pulls in pydantic, so it is
imported on first use: a plain tracked run whose `result` event carries Claude's cost never loads it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

# Per-token probes stay far below any long-context tier threshold, so they give the base rates.
_PROBE = 1000


@dataclass(frozen=True)
class Rates:
    """USD per token for one model at its base tier."""

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float


def _calc(model: str, when: datetime | None, **usage: int) -> float | None:
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # the package is a declared dependency; a broken install must not kill a run
        return None
    try:
        result = calc_price(Usage(**usage), model, provider_id="anthropic", genai_request_timestamp=when)
    except (LookupError, ValueError):
        return None
    return float(result.total_price)


def _model_key(model: str) -> str:
    # Claude Code reports e.g. "claude-sonnet-4-5[1m]" for the 1M-context variant; price the base model.
    return model.split("[", 1)[0].strip()


def message_cost(
    model: str,
    *,
    input: int = 0,
    output: int = 0,
    cache_read: int = 0,
    cache_creation: int = 0,
    cache_creation_1h: int = 0,
    when: datetime | None = None,
) -> float | None:
    """List-price cost of ONE API request (tiered prices apply per request, so never price a sum).

    `input` excludes cache tokens, as in the Messages API; `cache_creation_1h` is the part of
    `cache_creation` written with a one-hour TTL. None when the model has no known price.
    """
    usage: dict[str, int] = {
        "input_tokens": input + cache_read + cache_creation,
        "output_tokens": output,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_creation,
    }
    if cache_creation_1h:
        usage["cache_write_1h_tokens"] = min(cache_creation_1h, cache_creation)
        usage["cache_write_5m_tokens"] = cache_creation - usage["cache_write_1h_tokens"]
    return _calc(_model_key(model), when, **usage)


@functools.lru_cache(maxsize=256)
def rates(model: str) -> Rates | None:
    """Base per-token rates of a model, or None when genai-prices does not know it."""
    key = _model_key(model)
    inp = _calc(key, None, input_tokens=_PROBE)
    if inp is None:
        return None
    out = _calc(key, None, input_tokens=0, output_tokens=_PROBE) or 0.0
    read = _calc(key, None, input_tokens=_PROBE, cache_read_tokens=_PROBE) or 0.0
    w5 = _calc(key, None, input_tokens=_PROBE, cache_write_tokens=_PROBE) or 0.0
    w1h = _calc(key, None, input_tokens=_PROBE, cache_write_tokens=_PROBE, cache_write_1h_tokens=_PROBE) or w5
    return Rates(inp / _PROBE, out / _PROBE, read / _PROBE, w5 / _PROBE, w1h / _PROBE)


def cache_savings(model: str, cache_read_tokens: int) -> float | None:
    """What the cache reads saved against paying the full input price for the same tokens."""
    r = rates(model)
    if r is None:
        return None
    return cache_read_tokens * (r.input - r.cache_read)


#: Token kinds of a price table, in the record's names (`cache_write_5m` / `cache_write_1h` are the
#: two TTLs of `cache_creation`).
PRICE_KINDS: tuple[str, ...] = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


@dataclass(frozen=True)
class PriceTable:
    """A model's list prices in USD per million tokens, exact (Decimal), with its long-context tiers.

    `base[kind]`; `tiers`: (threshold, prices) pairs — a request whose prompt (input + cache read +
    cache write tokens) exceeds `threshold` pays `prices` for ALL of its tokens, as the API bills it.
    """

    model: str
    base: dict[str, Decimal]
    tiers: tuple[tuple[int, dict[str, Decimal]], ...] = ()


def price_table(model: str) -> PriceTable | None:
    """The list prices of `model` from genai-prices, or None when it has no known price."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return None
    key = _model_key(model)
    try:
        prices = calc_price(Usage(input_tokens=1), key, provider_id="anthropic").model.prices
    except (LookupError, ValueError):
        return None
    if not hasattr(prices, "input_mtok"):  # a time-dependent price list: take today's
        try:
            prices = calc_price(
                Usage(input_tokens=1), key, provider_id="anthropic", genai_request_timestamp=datetime.now()
            ).model.prices
        except (LookupError, ValueError):
            return None
    fields = {
        "input": getattr(prices, "input_mtok", None),
        "output": getattr(prices, "output_mtok", None),
        "cache_read": getattr(prices, "cache_read_mtok", None),
        "cache_write_5m": getattr(prices, "cache_write_mtok", None),
        "cache_write_1h": getattr(prices, "cache_write_1h_mtok", None)
        or getattr(prices, "cache_write_mtok", None),
    }
    base: dict[str, Decimal] = {}
    starts: set[int] = set()
    for kind, price in fields.items():
        base[kind] = _base_price(price)
        starts.update(int(t.start) for t in getattr(price, "tiers", None) or ())
    tiers = tuple(
        (start, {kind: _tier_price(price, start) for kind, price in fields.items()})
        for start in sorted(starts)
    )
    return PriceTable(model, base, tiers)


def _base_price(price: Any) -> Decimal:
    if price is None:
        return Decimal(0)
    return Decimal(str(getattr(price, "base", price)))


def _tier_price(price: Any, start: int) -> Decimal:
    """The price per MTok of `price` for a request above `start` tokens (its highest tier reached)."""
    best = _base_price(price)
    for tier in sorted(getattr(price, "tiers", None) or (), key=lambda t: t.start):
        if int(tier.start) <= start:
            best = Decimal(str(tier.price))
    return best
