"""Rendering `ledger summary --by agent|tool|mcp-server` (`query.attribution`)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import orjson

from ..query.attribution import UNATTRIBUTED, AttributionReport, AttributionRow
from .formats import _num, shorten, usd


def _columns(kind: str) -> list[tuple[str, str]]:
    """(JSON/CSV name, heading) per column of a kind."""
    if kind == "agent":
        return [
            ("runs", "runs"),
            ("requests", "requests"),
            ("input", "input"),
            ("output", "output"),
            ("cache_read", "cache read"),
            ("cache_write", "cache write"),
            ("cost_usd", "cost"),
        ]
    tools = [
        ("runs", "runs"),
        ("calls", "calls"),
        ("failures", "failures"),
        ("duration_ms", "time"),
        ("avg_ms_per_call", "avg/call"),
    ]
    if kind == "tool":
        return tools
    return [*tools, ("requests", "requests"), ("cost_usd", "cost")]


def values(r: AttributionRow) -> dict[str, Any]:
    avg = r.duration_ms / r.timed_calls if r.duration_ms is not None and r.timed_calls else None
    return {
        "runs": r.runs,
        "requests": r.requests,
        "input": r.input,
        "output": r.output,
        "cache_read": r.cache_read,
        "cache_write": r.cache_creation,
        "cost_usd": r.cost,
        "calls": r.calls,
        "failures": r.failures,
        "duration_ms": r.duration_ms,
        "avg_ms_per_call": None if avg is None else round(avg, 1),
    }


def _cell(name: str, value: Any, row: AttributionRow) -> str:
    if value is None:
        return "—"
    if name == "cost_usd":
        return usd(value) + ("*" if row.estimated else "") + ("†" if row.unpriced else "")
    if name in ("duration_ms", "avg_ms_per_call"):
        return f"{value / 1000:,.2f}s"
    return f"{value:,}"


def notes(report: AttributionReport) -> list[str]:
    out: list[str] = []
    if any(r.estimated for r in report.rows):
        out.append("* includes list-price estimates (attribution read from transcripts or the stream)")
    if any(r.unpriced for r in report.rows):
        out.append("† some usage has no known price and is not in the cost")
    if report.kind == "tool":
        out.append(
            "tools show calls and time, not dollars: a tool's output is paid for in the next request,"
            " together with the rest of the context"
        )
    if report.unattributed_runs:
        where = f"in {UNATTRIBUTED}" if report.kind == "agent" else "not shown"
        out.append(f"{report.unattributed_runs:,} run(s) carry no attribution ({where})")
    return out


def to_json(report: AttributionReport) -> bytes:
    names = [n for n, _ in _columns(report.kind)]

    def row(r: AttributionRow, key: bool = True) -> dict[str, Any]:
        v = values(r)
        out: dict[str, Any] = {"key": dict(zip(report.group_by, r.key, strict=True))} if key else {}
        for n in names:
            out[n] = _num(v[n]) if isinstance(v[n], Decimal) else v[n]
        if report.kind != "tool":
            out["estimated_entries"] = r.estimated
        return out

    payload = {
        "group_by": list(report.group_by),
        "tz": report.tz,
        "rows": [row(r) for r in report.rows],
        "total": row(report.total, False),
        "unattributed_runs": report.unattributed_runs,
        "notes": notes(report),
        "warnings": report.warnings,
    }
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n"


def to_text(report: AttributionReport, fmt: str, title: str | None = None) -> str:
    from tabulate import tabulate

    from ..text import markdown_cell, terminal

    escape = markdown_cell if fmt == "markdown" else terminal
    cols = _columns(report.kind)
    dims = [escape(d) for d in report.group_by]
    body = [
        [*(escape(shorten(k)) for k in r.key), *(_cell(n, values(r)[n], r) for n, _ in cols)]
        for r in report.rows
    ]
    pad = [""] * max(len(dims) - 1, 0)
    label = "**total**" if fmt == "markdown" else "total"
    body.append([label, *pad, *(_cell(n, values(report.total)[n], report.total) for n, _ in cols)])
    out: list[str] = []
    if title:
        out.append(f"### {markdown_cell(title)}\n" if fmt == "markdown" else terminal(title))
    out.append(
        tabulate(
            body,
            headers=[*dims, *(h for _, h in cols)],
            tablefmt="github" if fmt == "markdown" else "simple",
            colalign=["left"] * len(dims) + ["right"] * len(cols),
            disable_numparse=True,
        )
    )
    said = notes(report)
    if said:
        out.append("\n" + "\n".join(f"_{n}_" if fmt == "markdown" else n for n in said))
    return "\n".join(out) + "\n"


def to_csv(report: AttributionReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = [n for n, _ in _columns(report.kind)]
    w.writerow([*report.group_by, *names])
    blank = ("total",) + ("",) * (len(report.group_by) - 1)
    for r in [*report.rows, report.total]:
        v = values(r)
        cells = [
            "" if v[n] is None else format(v[n], "f") if isinstance(v[n], Decimal) else v[n] for n in names
        ]
        w.writerow([*(r.key or blank), *cells])
    return buf.getvalue()


def render(report: AttributionReport, fmt: str, title: str | None = None) -> bytes:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report).encode()
    return to_text(report, fmt, title).encode()
