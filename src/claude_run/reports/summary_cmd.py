"""`claude-run ledger summary`, the most used report, without typer on its usual command lines.

The typer command (`commands/ledger_reports.summary`) and the fast path in `__main__` both call
`summary`; `parse` reads the usual command lines (each option with one value) and returns None for
anything else (`--help`, an unknown option, a missing value), which typer then handles and words.
Typer costs ~90 ms to import (it brings pydantic), a third of a warm report.
"""

from __future__ import annotations

#: --option → (keyword, repeatable)
OPTIONS = {
    "--by": ("by", True),
    "--since": ("since", False),
    "--until": ("until", False),
    "--project": ("project", True),
    "--model": ("model", False),
    "--status": ("status", True),
    "--tag": ("tag", True),
    "--tz": ("tz", False),
    "--format": ("fmt", False),
    "--title": ("title", False),
    "--ledger": ("ledger", False),
}


def parse(args: list[str]) -> dict[str, object] | None:
    """The keyword arguments of `summary` for a usual command line, else None."""
    out: dict[str, object] = {}
    i = 0
    while i < len(args):
        flag, eq, value = args[i].partition("=")
        spec = OPTIONS.get(flag)
        if spec is None:
            return None
        if not eq:
            i += 1
            if i >= len(args):
                return None
            value = args[i]
        if value.startswith("-"):
            return None  # a value typer reads its own way (or an option): let it decide
        key, repeatable = spec
        if repeatable:
            seen = out.setdefault(key, [])
            assert isinstance(seen, list)
            seen.append(value)
        elif key in out:
            return None
        else:
            out[key] = value
        i += 1
    return out


def summary(
    by: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    project: list[str] | None = None,
    model: str | None = None,
    status: list[str] | None = None,
    tag: list[str] | None = None,
    tz: str | None = None,
    fmt: str = "table",
    title: str | None = None,
    ledger: str | None = None,
) -> None:
    from ..gates import choice
    from ..query.grouping import parse_group_by
    from ..query.summary import aggregate
    from .command import context, filters, out, warn
    from .formats import FORMATS, render

    choice(fmt, FORMATS, "--format")
    path, zone = context(ledger, tz)
    group_by = parse_group_by(by, ("agent", "tool", "mcp-server"))
    narrow = filters(zone, since, until, project, model, status, tag)
    if {"agent", "tool", "mcp-server"} & set(group_by):
        from ..query.attribution import attribution_report
        from .attribution import render as render_attribution

        attributed = attribution_report(path, group_by, narrow, zone)
        warn(attributed.warnings)
        out(render_attribution(attributed, fmt, title))
        return
    report = aggregate(path, group_by, narrow, zone)
    warn(report.warnings)
    out(render(report, fmt, title))


def main(args: list[str]) -> int | None:
    """Run `ledger summary ARGS` without typer; None when typer should take the line instead."""
    from ..errors import ClaudeRunError

    kwargs = parse(args)
    if kwargs is None:
        return None
    try:
        summary(**kwargs)  # type: ignore[arg-type]
    except ClaudeRunError as exc:
        return exc.report()
    return 0
