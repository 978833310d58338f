"""Rendering reports: table and markdown (tabulate), JSON (exact numbers), CSV."""

from __future__ import annotations

import csv
import io
from decimal import Context, Decimal
from typing import Any

import orjson

from ..query.summary import Report, ReportRow
from ..query.totals import Totals
from ..text import fmt_usd

FORMATS = ("table", "markdown", "json", "csv")
COLUMNS = (
    "runs",
    "input",
    "output",
    "cache_read",
    "cache_write",
    "total_tokens",
    "cost_usd",
    "avg_cost_usd",
    "cache_hit_ratio",
    "cache_savings_usd",
)
HEADERS = (
    "runs",
    "input",
    "output",
    "cache read",
    "cache write",
    "total",
    "cost",
    "avg/run",
    "cache hit",
    "saved",
)


def _num(value: Decimal | None) -> Any:
    """A JSON number with exactly the decimal digits of the sum (orjson has no Decimal support)."""
    if value is None:
        return None
    text = format(value.normalize() if value != 0 else Decimal(0), "f")
    return orjson.Fragment(text.encode())


def totals_values(t: Totals, priced: bool = True) -> dict[str, Any]:
    """The columns of one row; money as Decimal (exact cost sum; averages and savings to 1e-12 USD)."""
    out: dict[str, Any] = {
        "runs": t.runs,
        "input": t.input,
        "output": t.output,
        "cache_read": t.cache_read,
        "cache_write": t.cache_creation,
        "total_tokens": t.total_tokens,
        "cache_hit_ratio": t.cache_hit_ratio,
    }
    if priced:
        out["cost_usd"] = t.cost
        out["avg_cost_usd"] = pico(t.avg_cost)
        out["cache_savings_usd"] = pico(t.savings)
        if t.savings_unpriced_tokens:
            out["cache_read_without_price"] = t.savings_unpriced_tokens
    return out


def pico(value: Decimal | None) -> Decimal | None:
    """Round to 1e-12 USD. The context's precision grows with the value: a default 28-digit context
    raises InvalidOperation for sums above ~1e16 USD (absurd, but a ledger can hold anything)."""
    if value is None:
        return None
    if not value.is_finite():
        return value
    digits = max(value.adjusted() + 14, 28)
    return value.quantize(Decimal("1e-12"), context=Context(prec=digits))


def totals_dict(t: Totals, priced: bool = True) -> dict[str, Any]:
    return {k: _num(v) if isinstance(v, Decimal) else v for k, v in totals_values(t, priced).items()}


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize() if value != 0 else Decimal(0), "f")
    return str(value)


def to_json(report: Report) -> bytes:
    def key(r: ReportRow) -> dict[str, str]:
        return dict(zip(report.group_by, r.key, strict=True))

    payload = {
        "group_by": list(report.group_by),
        "tz": report.tz,
        "rows": [{"key": key(r), **totals_dict(r.priced)} for r in report.priced_rows],
        "total": totals_dict(report.total),
        "unpriced": {
            "rows": [{"key": key(r), **totals_dict(r.unpriced, priced=False)} for r in report.unpriced_rows],
            "total": totals_dict(report.unpriced_total, priced=False),
        },
        "warnings": report.warnings,
    }
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n"


def usd(value: Decimal | None, places: int = 2) -> str:
    """`text.fmt_usd`, with a dash for a missing figure as report tables show it."""
    return fmt_usd(value, places, none="—")


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _saved(t: Totals) -> str:
    text = usd(t.savings)
    return text + "*" if t.savings_unpriced_tokens else text


def _cells(t: Totals) -> list[Any]:
    return [
        f"{t.runs:,}",
        f"{t.input:,}",
        f"{t.output:,}",
        f"{t.cache_read:,}",
        f"{t.cache_creation:,}",
        f"{t.total_tokens:,}",
        usd(t.cost),
        usd(t.avg_cost),
        ratio(t.cache_hit_ratio),
        _saved(t),
    ]


def _unpriced_cells(t: Totals) -> list[Any]:
    return [
        f"{t.runs:,}",
        f"{t.input:,}",
        f"{t.output:,}",
        f"{t.cache_read:,}",
        f"{t.cache_creation:,}",
        f"{t.total_tokens:,}",
    ]


def _label(dim: str) -> str:
    return dim


def to_text(report: Report, fmt: str, title: str | None = None) -> str:
    from tabulate import tabulate

    from ..text import markdown_cell, terminal

    tablefmt = "github" if fmt == "markdown" else "simple"
    # Labels come from the ledger (tags, projects, branches): escaped for the terminal or the table,
    # and a very long one shortened (the middle elided) so one label never makes the table 250
    # columns wide. JSON and CSV keep every label whole.
    escape = markdown_cell if fmt == "markdown" else terminal

    def safe(label: str) -> str:
        return escape(shorten(label))

    dims = [safe(_label(d)) for d in report.group_by]
    rows: list[list[Any]] = [[*map(safe, r.key), *_cells(r.priced)] for r in report.priced_rows]
    pad = [""] * max(len(dims) - 1, 0)
    total_label = "**total**" if fmt == "markdown" else "total"
    rows.append([total_label, *pad, *_cells(report.total)] if dims else _cells(report.total))
    align = ["left"] * len(dims) + ["right"] * len(HEADERS)
    out: list[str] = []
    if title and fmt == "markdown":
        out.append(f"### {markdown_cell(title)}\n")
    elif title:
        out.append(terminal(title))
    out.append(
        tabulate(rows, headers=[*dims, *HEADERS], tablefmt=tablefmt, colalign=align, disable_numparse=True)
    )
    unpriced = report.unpriced_rows
    if unpriced:
        urows: list[list[Any]] = [[*map(safe, r.key), *_unpriced_cells(r.unpriced)] for r in unpriced]
        urows.append(
            [total_label, *pad, *_unpriced_cells(report.unpriced_total)]
            if dims
            else _unpriced_cells(report.unpriced_total)
        )
        heading = "Unpriced usage (no known cost; not included above)"
        out.append(f"\n**{heading}**\n" if fmt == "markdown" else f"\n{heading}:")
        out.append(
            tabulate(
                urows,
                headers=[*dims, *HEADERS[:6]],
                tablefmt=tablefmt,
                colalign=align[: len(dims) + 6],
                disable_numparse=True,
            )
        )
    notes = []
    if report.total.savings_unpriced_tokens:
        notes.append(
            f"* saved: excludes {report.total.savings_unpriced_tokens:,} cache-read tokens of models"
            " without a list price"
        )
    if "model" in report.group_by and _several_models(report):
        notes.append("a run that used several models counts in each model's row and once in the total")
    if notes:
        out.append("\n" + "\n".join(("_" + n + "_") if fmt == "markdown" else n for n in notes))
    return "\n".join(out) + "\n"


LABEL_MAX = 48


def shorten(label: str, limit: int = LABEL_MAX) -> str:
    """`label` if short enough, else its start and end around an ellipsis (branches and tags often
    differ at the end: `feature/...-1234`)."""
    if len(label) <= limit:
        return label
    head = (limit - 1) * 2 // 3
    return label[:head] + "…" + label[len(label) - (limit - 1 - head) :]


def _several_models(report: Report) -> bool:
    """Some run shows in more than one model row (other dimensions give a run one row each)."""
    priced = sum(r.priced.runs for r in report.rows) > report.total.runs
    return priced or sum(r.unpriced.runs for r in report.rows) > report.unpriced_total.runs


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["priced", *report.group_by, *COLUMNS])

    def line(flag: str, key: tuple[str, ...], t: Totals, priced: bool) -> None:
        d = totals_values(t, priced)
        w.writerow([flag, *key, *(_plain(d.get(c)) for c in COLUMNS)])

    for r in report.priced_rows:
        line("yes", r.key, r.priced, True)
    line("yes", ("total",) + ("",) * max(len(report.group_by) - 1, 0), report.total, True)
    for r in report.unpriced_rows:
        line("no", r.key, r.unpriced, False)
    if report.unpriced_rows:
        line("no", ("total",) + ("",) * max(len(report.group_by) - 1, 0), report.unpriced_total, False)
    return buf.getvalue()


def render(report: Report, fmt: str, title: str | None = None) -> bytes:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report).encode()
    return to_text(report, fmt, title).encode()


__all__ = ["FORMATS", "ReportRow", "render", "to_csv", "to_json", "to_text", "totals_dict", "usd"]
