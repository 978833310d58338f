"""What a CI step hands to the rest of the pipeline: GitHub step outputs and step summary, a dotenv file.

- `$GITHUB_OUTPUT` set: append `name=value` lines (a value with a newline uses the multiline form
  `name<<DELIM`, value, `DELIM`, with a random delimiter that the value cannot contain).
- `$GITHUB_STEP_SUMMARY` set: append a Markdown table for the run.
- `$CLAUDE_RUN_DOTENV` set: write `CLAUDE_RUN_*=value` lines (a GitLab `artifacts:reports:dotenv`).

These files belong to the CI step, never to the ledger: a failure to write one is a warning on
stderr, not a lost run (the record is already in the ledger by then).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..budgets.check import BudgetState

OUTPUT_NAMES: tuple[str, ...] = (
    "status",
    "exit_code",
    "cost_usd",
    "cost_source",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "model",
    "num_turns",
    "duration_ms",
    "session_id",
    "record_id",
    "recorded",
    "budget_exceeded",
    "result",
)
RESULT_MAX_BYTES = 256 * 1024
SUMMARY_MAX_BYTES = 1024 * 1024  # GitHub refuses a step summary over 1 MiB
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def fmt_cost(cost: Any) -> str:
    """Full-precision-enough decimal (no float noise, no exponent); empty when unpriced."""
    if not isinstance(cost, (int, float)) or isinstance(cost, bool):
        return ""
    text = f"{float(cost):.10f}".rstrip("0").rstrip(".")
    return text or "0"


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore") + "\n[truncated by claude-run]"


def output_values(
    record: Mapping[str, Any],
    budget: BudgetState | None = None,
    *,
    recorded: bool,
    result_text: str | None = None,
) -> dict[str, str]:
    tokens = record.get("tokens") or {}

    def num(value: Any) -> str:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""

    return {
        "status": str(record.get("status") or ""),
        "exit_code": num(record.get("exit_code")),
        "cost_usd": fmt_cost(record.get("cost_usd")),
        "cost_source": str(record.get("cost_source") or ""),
        "input_tokens": num(tokens.get("input", 0)),
        "output_tokens": num(tokens.get("output", 0)),
        "cache_read_tokens": num(tokens.get("cache_read", 0)),
        "cache_creation_tokens": num(tokens.get("cache_creation", 0)),
        "model": str(record.get("model") or ""),
        "num_turns": num(record.get("num_turns")),
        "duration_ms": num(record.get("duration_ms")),
        "session_id": str(record.get("session_id") or ""),
        "record_id": str(record.get("id") or ""),
        "recorded": "true" if recorded else "false",
        "budget_exceeded": "true" if budget is not None and budget.exceeded else "false",
        "result": _truncate_utf8(result_text or "", RESULT_MAX_BYTES),
    }


def _delimiter() -> str:
    return f"ghadelimiter_{secrets.token_hex(16)}"


def format_outputs(values: Mapping[str, str], make_delimiter: Callable[[], str] = _delimiter) -> str:
    """The `$GITHUB_OUTPUT` file text for `values` (also valid for `$GITHUB_ENV`)."""
    out: list[str] = []
    for name, value in values.items():
        if not _NAME.match(name):
            raise ValueError(f"bad output name {name!r}")
        if "\n" not in value and "\r" not in value:
            out.append(f"{name}={value}\n")
            continue
        delim = make_delimiter()
        while delim in value:  # the runner ends the value at the first line equal to the delimiter
            delim = make_delimiter()
        out.append(f"{name}<<{delim}\n{value}\n{delim}\n")
    return "".join(out)


def parse_outputs(text: str) -> dict[str, str]:
    """Read a `$GITHUB_OUTPUT` file the way the Actions runner does (for tests and examples)."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ValueError(f"unterminated multiline value for {name!r}")
            i += 1
            values[name] = "\n".join(body)
        else:
            name, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"invalid output line {line!r}")
            values[name] = value
    return values


def _cell(value: Any) -> str:
    """Markdown table cell text: branch names and models come from outside, so no markup gets through."""
    from ..text import terminal

    text = terminal(str(value).replace("\r", " ").replace("\n", " "))  # ESC & co. as visible escapes
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("`", "\\`")


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


def summary_markdown(record: Mapping[str, Any], budget: BudgetState | None = None) -> str:
    from ..text import fmt_duration, fmt_usd

    tokens = record.get("tokens") or {}
    status = str(record.get("status") or "?")
    mark = "✅" if status == "success" else "❌"
    cost = fmt_usd(record.get("cost_usd"))
    if record.get("cost_source") == "estimate":
        cost = f"≈{cost} (estimate from list prices)"
    elif record.get("cost_usd") is None:
        cost = "unpriced (model without a known price)"
    tags = record.get("tags") or {}
    rows: list[tuple[str, str]] = [
        ("Status", f"{mark} {_cell(status)}"),
        ("Model", _cell(record.get("model") or "-")),
        ("Input tokens", _n(tokens.get("input", 0))),
        ("Output tokens", _n(tokens.get("output", 0))),
        ("Cache read tokens", _n(tokens.get("cache_read", 0))),
        ("Cache write tokens", _n(tokens.get("cache_creation", 0))),
        ("Cost", _cell(cost)),
        ("Duration", fmt_duration(record.get("duration_ms"))),
        ("Turns", _n(record.get("num_turns"))),
    ]
    if tags:
        rows.append(("Tags", ", ".join(f"`{_cell(k)}={_cell(v)}`" for k, v in sorted(tags.items()))))
    for p in budget.periods if budget is not None else []:
        state = "⚠️ **reached**" if p.exceeded else "ok"
        pct = f" ({p.spent / p.limit:.0%})" if p.limit else ""
        rows.append(
            (
                f"{p.period.capitalize()} budget",
                f"{state}: ${p.spent:.2f} of ${p.limit:.2f}{pct} since {p.start:%Y-%m-%d %H:%M %Z}"
                + (f", {p.before.unpriced} unpriced run(s) not counted" if p.before.unpriced else ""),
            )
        )
    rows.append(("Record", f"`{_cell(record.get('id') or '-')}`"))
    lines = [f"### claude-run: {_cell(status)}", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n\n"


def refusal_markdown(message: str) -> str:
    return f"### claude-run: refused\n\n⛔ {_cell(message)}\n\n"


def dotenv_text(values: Mapping[str, str]) -> str:
    """`CLAUDE_RUN_<NAME>=value` lines; multiline values are left out (dotenv reports cannot hold them)."""
    return "".join(
        f"CLAUDE_RUN_{name.upper()}={value}\n"
        for name, value in values.items()
        if "\n" not in value and "\r" not in value
    )


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def _replace(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _write_all(env: Mapping[str, str], values: dict[str, str], summary: str) -> list[str]:
    warnings: list[str] = []
    targets: list[tuple[str, Callable[[str, str], None], str]] = []
    if env.get("GITHUB_OUTPUT"):
        targets.append((env["GITHUB_OUTPUT"], _append, format_outputs(values)))
    if env.get("GITHUB_STEP_SUMMARY"):
        if len(summary.encode()) > SUMMARY_MAX_BYTES:
            summary = summary.encode()[:SUMMARY_MAX_BYTES].decode(errors="ignore")
        targets.append((env["GITHUB_STEP_SUMMARY"], _append, summary))
    if env.get("CLAUDE_RUN_DOTENV"):
        targets.append((env["CLAUDE_RUN_DOTENV"], _replace, dotenv_text(values)))
    for path, write, text in targets:
        try:
            write(path, text)
        except OSError as exc:
            warnings.append(f"cannot write CI file {path}: {exc.strerror or exc}")
    return warnings


def write_for_run(
    record: Mapping[str, Any],
    budget: BudgetState | None,
    env: Mapping[str, str],
    *,
    recorded: bool,
    result_text: str | None = None,
) -> list[str]:
    """Write every CI file the environment asks for; returns warnings (one line each) for stderr."""
    if not (env.get("GITHUB_OUTPUT") or env.get("GITHUB_STEP_SUMMARY") or env.get("CLAUDE_RUN_DOTENV")):
        return []
    values = output_values(record, budget, recorded=recorded, result_text=result_text)
    return _write_all(env, values, summary_markdown(record, budget))


def write_for_refusal(message: str, env: Mapping[str, str]) -> list[str]:
    """A run refused by a budget: `status=refused`, `budget_exceeded=true`, so later steps can branch."""
    if not (env.get("GITHUB_OUTPUT") or env.get("GITHUB_STEP_SUMMARY") or env.get("CLAUDE_RUN_DOTENV")):
        return []
    values = dict.fromkeys(OUTPUT_NAMES, "")
    values.update({"status": "refused", "recorded": "false", "budget_exceeded": "true", "exit_code": "75"})
    return _write_all(env, values, refusal_markdown(message))
