"""`ledger list`: one line per run."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from .timeparse import parse_ts


def _cost(rec: dict[str, Any]) -> str:
    from decimal import Decimal

    from .formats import usd
    from .units import is_priced

    cost = rec.get("cost_usd")
    if not is_priced(cost, rec.get("cost_source")):
        return "unpriced"
    return usd(Decimal(repr(cost)), 4)


def render_list(records: list[Any], tz: tzinfo) -> str:
    from tabulate import tabulate

    from ..display import fmt_duration, fmt_tokens
    from ..record import total_tokens

    if not records:
        return "no runs match\n"
    rows = []
    for rec in records:
        ts = parse_ts(rec.get("started_at"))
        when = datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M") if ts is not None else "?"
        tags = rec.get("tags") or {}
        rows.append(
            [
                rec.get("id", "")[:12],
                when,
                rec.get("status") or "",
                rec.get("mode") or "",
                rec.get("project") or "",
                (rec.get("git") or {}).get("branch") or "",
                rec.get("model") or "",
                fmt_tokens(total_tokens(rec.get("tokens") or {})),
                _cost(rec),
                fmt_duration(rec.get("duration_ms")),
                " ".join(f"{k}={v}" for k, v in sorted(tags.items())),
            ]
        )
    headers = [
        "id",
        "started",
        "status",
        "mode",
        "project",
        "branch",
        "model",
        "tokens",
        "cost",
        "time",
        "tags",
    ]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True) + "\n"
