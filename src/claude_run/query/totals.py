"""Totals of a group of units, and the cache-savings estimate (list prices, lazily loaded)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson

ZERO = Decimal(0)


@dataclass
class Totals:
    """Sums over runs. `cost` is the exact decimal sum of the costs as written in the ledger.

    `savings`: what the cache reads saved against paying the full input price for the same tokens,
    sum over models of cache_read * (input list price - cache-read list price); None when no model with
    cache reads has a known price. `savings_unpriced_tokens`: cache reads of models without a list price.
    """

    runs: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    cost: Decimal = ZERO
    savings: Decimal | None = None
    savings_unpriced_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_creation

    @property
    def avg_cost(self) -> Decimal | None:
        return self.cost / self.runs if self.runs else None

    @property
    def cache_hit_ratio(self) -> float | None:
        """cache_read / (input + cache_read + cache_creation): the share of prompt tokens read from cache."""
        prompt = self.input + self.cache_read + self.cache_creation
        return self.cache_read / prompt if prompt else None


def _prices_version() -> str:
    try:
        from importlib.metadata import version

        return version("genai-prices")
    except Exception:  # no metadata (vendored, zipapp): cache per process only
        return "unknown"


class SavingsRates:
    """Per-model (input - cache read) USD per token, cached in the index dir per genai-prices version.

    Loading genai-prices costs a few hundred ms (pydantic), so a warm report reads the cached figures.
    """

    def __init__(self, cache_dir: Path | None) -> None:
        self.path = cache_dir / "prices.json" if cache_dir else None
        self.version = _prices_version()
        self.delta: dict[str, str | None] = {}
        self._dirty = False
        if self.path is not None:
            try:
                raw = orjson.loads(self.path.read_bytes())
                if raw.get("version") == self.version and isinstance(raw.get("delta"), dict):
                    self.delta = raw["delta"]
            except (OSError, ValueError):
                pass

    def get(self, model: str) -> Decimal | None:
        if model not in self.delta:
            from .. import pricing

            r = pricing.rates(model)
            self.delta[model] = (
                None if r is None else str(Decimal(repr(r.input)) - Decimal(repr(r.cache_read)))
            )
            self._dirty = True
        d = self.delta[model]
        return None if d is None else Decimal(d)

    def save(self) -> None:
        if not self._dirty or self.path is None or not self.path.parent.is_dir():
            return
        with contextlib.suppress(OSError):
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".prices-", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps({"version": self.version, "delta": self.delta}))
            os.replace(tmp, self.path)
