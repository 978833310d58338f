"""Rendering `ledger savings`: the actual cost against a baseline model (`--baseline`), or the
same figures read the other way (`--what-if`: what the runs would have cost on the model)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import orjson

from ..query.savings import SavingsReport, SavingsRow
from .formats import _num, pico, shorten, usd

FORMATS = ("table", "markdown", "json", "csv")


def _headers(report: SavingsReport, what_if: bool) -> list[str]:
    tokens = ["runs", "input", "output", "cache read", "cache write", "actual"]
    if what_if:
        return [*tokens, f"on {report.model}", "change", "change %"]
    return [*tokens, f"at {report.model}", "saved", "saved %"]


def _diff(row: SavingsRow, what_if: bool) -> tuple[Decimal | None, float | None]:
    """(saved, % of the baseline), or for a what-if (change, % of the actual cost)."""
    if not what_if:
        return row.saved, row.saved_pct
    if row.actual is None:
        return None, None
    change = row.baseline - row.actual
    return change, float(change / row.actual * 100) if row.actual else None


def _money(value: Decimal | None) -> str:
    """`usd`, with the sign in front of the dollar (a what-if that costs less: -$0.0110)."""
    return "-" + usd(-value) if value is not None and value < 0 else usd(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}%" if value < 0 else f"{value:.1f}%"


def _cells(row: SavingsRow, what_if: bool) -> list[str]:
    diff, pct = _diff(row, what_if)
    return [
        f"{row.runs:,}",
        f"{row.input:,}",
        f"{row.output:,}",
        f"{row.cache_read:,}",
        f"{row.cache_creation:,}",
        _money(row.actual),
        _money(row.baseline),
        _money(diff),
        _pct(pct),
    ]


def notes(report: SavingsReport) -> list[str]:
    """How the figures were made, in words (also in JSON)."""
    from ..stream.attribution import LONG_CONTEXT_OVER

    out: list[str] = []
    if report.tier is None:
        out.append(f"{report.model} has no long-context tier: per-request and total pricing agree")
    else:
        long = report.total.long_requests + report.unpriced_total.long_requests
        out.append(
            f"{report.model} charges more for a request over {LONG_CONTEXT_OVER:,} prompt tokens:"
            f" {report.per_request_runs:,} run(s) were priced per request ({long:,} such request(s)"
            " at the tier price)"
        )
        if report.totals_only_runs:
            out.append(
                f"{report.totals_only_runs:,} run(s) record totals only: priced at base prices, so a"
                " long request among them is priced low (an estimate)"
            )
    if report.unpriced_rows:
        out.append("usage of models without a price is shown apart: no actual cost, so no saving")
    return out


def to_json(report: SavingsReport, what_if: bool) -> bytes:
    def row(r: SavingsRow, with_key: bool = True) -> dict[str, Any]:
        diff, pct = _diff(r, what_if)
        out: dict[str, Any] = {"key": dict(zip(report.group_by, r.key, strict=True))} if with_key else {}
        out.update(
            runs=r.runs,
            input=r.input,
            output=r.output,
            cache_read=r.cache_read,
            cache_write=r.cache_creation,
            actual_usd=_num(r.actual),
            baseline_usd=_num(pico(r.baseline)),
            long_context_requests=r.long_requests,
        )
        if what_if:
            out.update(change_usd=_num(pico(diff)), change_pct=pct)
        else:
            out.update(saved_usd=_num(pico(diff)), saved_pct=pct)
        return out

    payload = {
        "mode": "what_if" if what_if else "baseline",
        "model": report.model,
        "prices_per_mtok": {k: _num(v) for k, v in report.prices.items()},
        "long_context_prices_per_mtok": {k: _num(v) for k, v in report.tier.items()} if report.tier else None,
        "group_by": list(report.group_by),
        "tz": report.tz,
        "rows": [row(r) for r in report.rows],
        "total": row(report.total, False),
        "unpriced": {
            "rows": [row(r) for r in report.unpriced_rows],
            "total": row(report.unpriced_total, False),
        },
        "per_request_runs": report.per_request_runs,
        "totals_only_runs": report.totals_only_runs,
        "notes": notes(report),
        "warnings": report.warnings,
    }
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n"


def to_text(report: SavingsReport, fmt: str, what_if: bool, title: str | None = None) -> str:
    from tabulate import tabulate

    from ..text import markdown_cell, terminal

    tablefmt = "github" if fmt == "markdown" else "simple"
    escape = markdown_cell if fmt == "markdown" else terminal
    dims = [escape(d) for d in report.group_by]
    headers = [*dims, *(escape(h) for h in _headers(report, what_if))]
    align = ["left"] * len(dims) + ["right"] * 9
    total_label = "**total**" if fmt == "markdown" else "total"
    pad = [""] * max(len(dims) - 1, 0)

    def table(rows: list[SavingsRow], total: SavingsRow) -> str:
        body = [[*(escape(shorten(k)) for k in r.key), *_cells(r, what_if)] for r in rows]
        body.append([total_label, *pad, *_cells(total, what_if)] if dims else _cells(total, what_if))
        return str(tabulate(body, headers=headers, tablefmt=tablefmt, colalign=align, disable_numparse=True))

    out: list[str] = []
    if title:
        out.append(f"### {markdown_cell(title)}\n" if fmt == "markdown" else terminal(title))
    out.append(table(report.rows, report.total))
    if report.unpriced_rows:
        heading = "Usage of models without a price (no actual cost; not included above)"
        out.append(f"\n**{heading}**\n" if fmt == "markdown" else f"\n{heading}:")
        out.append(table(report.unpriced_rows, report.unpriced_total))
    said = notes(report)
    out.append("\n" + "\n".join(f"_{n}_" if fmt == "markdown" else n for n in said))
    return "\n".join(out) + "\n"


def to_csv(report: SavingsReport, what_if: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    diff_name = "change" if what_if else "saved"
    w.writerow(
        [
            "priced",
            *report.group_by,
            "runs",
            "input",
            "output",
            "cache_read",
            "cache_write",
            "actual_usd",
            "baseline_usd",
            f"{diff_name}_usd",
            f"{diff_name}_pct",
            "long_context_requests",
        ]
    )

    def plain(value: Decimal | None) -> str:
        return "" if value is None else format(value.normalize() if value else Decimal(0), "f")

    def line(flag: str, key: tuple[str, ...], r: SavingsRow) -> None:
        diff, pct = _diff(r, what_if)
        w.writerow(
            [
                flag,
                *key,
                r.runs,
                r.input,
                r.output,
                r.cache_read,
                r.cache_creation,
                plain(r.actual),
                plain(pico(r.baseline)),
                plain(pico(diff)),
                "" if pct is None else f"{pct:.4f}",
                r.long_requests,
            ]
        )

    blank = ("total",) + ("",) * max(len(report.group_by) - 1, 0) if report.group_by else ()
    for r in report.rows:
        line("yes", r.key, r)
    line("yes", blank, report.total)
    for r in report.unpriced_rows:
        line("no", r.key, r)
    if report.unpriced_rows:
        line("no", blank, report.unpriced_total)
    return buf.getvalue()


def render(report: SavingsReport, fmt: str, what_if: bool, title: str | None = None) -> bytes:
    if fmt == "json":
        return to_json(report, what_if)
    if fmt == "csv":
        return to_csv(report, what_if).encode()
    return to_text(report, fmt, what_if, title).encode()
