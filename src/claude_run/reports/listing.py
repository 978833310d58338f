"""`ledger list`: one line per run."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from ..query.timeparse import parse_ts


def _cost(rec: dict[str, Any]) -> str:
    from decimal import Decimal

    from .formats import usd

    cost = rec.get("cost_usd")
    if rec.get("cost_source") == "unpriced" or type(cost) not in (int, float):
        return "unpriced"
    return usd(Decimal(repr(cost)), 4)


def _text(value: object) -> str:
    from ..text import terminal  # a tag holding ESC sequences or newlines must not reach the terminal

    return terminal("" if value is None else value if isinstance(value, str) else str(value))


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _context(rec: dict[str, Any]) -> str:
    """The run's peak context as a share of the model's window (the record's `context`), if known."""
    pct = _obj(rec.get("context")).get("peak_pct")
    return f"{pct:.0f}%" if type(pct) in (int, float) and pct == pct else ""


def render_list(records: list[Any], tz: tzinfo) -> str:
    from tabulate import tabulate

    from ..record.schema import total_tokens
    from ..text import fmt_duration, fmt_tokens

    if not records:
        return "no runs match\n"
    rows = []
    for rec in records:
        ts = parse_ts(rec.get("started_at"))
        when = datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M") if ts is not None else "?"
        # Any field may hold anything in a hand-edited or foreign ledger: shown as text, or left out.
        tags = _obj(rec.get("tags"))
        duration = rec.get("duration_ms")
        rows.append(
            [
                _text(rec.get("id"))[:12],
                when,
                _text(rec.get("status")),
                _text(rec.get("mode")),
                _text(rec.get("project")),
                _text(_obj(rec.get("git")).get("branch")),
                _text(rec.get("model")),
                fmt_tokens(total_tokens(_obj(rec.get("tokens")))),
                _cost(rec),
                fmt_duration(duration if type(duration) in (int, float) else None),
                _context(rec),
                " ".join(f"{_text(k)}={_text(v)}" for k, v in sorted(tags.items())),
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
        "ctx",
        "tags",
    ]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True) + "\n"
