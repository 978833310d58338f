"""`claude-run ledger quota`: plan utilization as Claude reported it, the ledger's 5-hour windows, burn
rate and when the 5-hour window runs out. The maths is `claude_run.stream.quota` (pure); this is I/O."""

from __future__ import annotations

import sys
from datetime import datetime, timezone, tzinfo
from typing import Annotated, Any

import typer

from ..stream.quota import QuotaReport, report
from ..text import fmt_duration, fmt_tokens, fmt_usd

NO_UTILIZATION = (
    "no plan utilization: Claude Code reports it (rate_limit_event) only on a subscription (Pro/Max) "
    "login; these runs used an API key, a cloud provider, or were imported"
)


def quota(
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    recent: Annotated[
        int, typer.Option("--windows", help="How many 5-hour windows before the current.", min=0)
    ] = 4,
    tz: Annotated[
        str | None, typer.Option("--tz", help="Time zone to show times in (default: local).")
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", help="Ledger file (default: $CLAUDE_RUN_LEDGER, then the data dir)."),
    ] = None,
) -> None:
    """Plan quota: the latest 5-hour and 7-day utilization, spend per 5-hour window, burn rate, projection."""
    from ..errors import UsageError
    from ..paths import ledger_path
    from ..query.records import iter_selected
    from ..query.timeparse import resolve_tz

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, got {fmt!r}")
    zone = resolve_tz(tz)
    path = ledger_path(ledger)
    from ..gates import check_ledger

    # A directory, symlink or another user's file is refused like everywhere; a missing ledger is
    # this report's "No runs in the ledger." (its tests ask for that).
    check_ledger(path, reading=False)
    warnings: list[str] = []
    # The counted records (the read engine's fold), whole: the quota reads `rate_limits` too.
    records = list(iter_selected(path, warnings=warnings)) if path.exists() else []
    for warning in warnings:
        sys.stderr.write(f"claude-run: warning: {warning}\n")
    rep = report(records, datetime.now(timezone.utc), recent)
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(as_json(rep), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(render(rep, zone))
    sys.stdout.flush()


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    from ..record.schema import iso_utc

    return iso_utc(t.timestamp())


def as_json(rep: QuotaReport) -> dict[str, Any]:
    now = rep.now
    windows = {
        name: {
            "utilization": o.utilization,
            "resets_at": _iso(o.resets_at),
            "status": o.status,
            "seen_at": _iso(o.seen_at),
            "age_s": round((now - o.seen_at).total_seconds(), 1),
            "expired": o.expired(now),
        }
        for name, o in rep.windows.items()
    }
    p = rep.projection
    out: dict[str, Any] = {
        "now": _iso(now),
        "windows": windows,
        "burn": {"span_h": 1, "cost_usd_per_h": rep.burn_cost_per_h, "tokens_per_h": rep.burn_tokens_per_h},
        "projection": None
        if p is None
        else {
            "at": _iso(p.at),
            "reason": p.reason,
            "utilization_now": p.utilization_now,
            "utilization_per_h": p.per_hour,
        },
        "five_hour_windows": [
            {
                "start": _iso(b.start),
                "end": _iso(b.end),
                "current": b.current,
                "runs": b.runs,
                "tokens": b.tokens,
                "cost_usd": b.cost,
                "unpriced_runs": b.unpriced,
            }
            for b in rep.blocks
        ],
        "runs": rep.runs,
    }
    if not rep.windows:
        out["note"] = NO_UTILIZATION
    return out


def _ago(seconds: float) -> str:
    return "just now" if seconds < 1 else f"{fmt_duration(seconds * 1000)} ago"


def _at(t: datetime, now: datetime, zone: tzinfo) -> str:
    local = t.astimezone(zone)
    same_day = local.date() == now.astimezone(zone).date()
    text = local.strftime("%H:%M %Z" if same_day else "%a %d %b %H:%M %Z").strip()
    delta = (t - now).total_seconds()
    rel = f"in {fmt_duration(delta * 1000)}" if delta >= 0 else f"{fmt_duration(-delta * 1000)} ago"
    return f"{text} ({rel})"


def render(rep: QuotaReport, zone: tzinfo) -> str:
    from ..stream.alerts import window_label

    now = rep.now
    lines: list[str] = []
    if rep.windows:
        lines.append("Plan quota (as Claude Code last reported it)")
        for name in sorted(rep.windows, key=lambda n: (n != "five_hour", n != "seven_day", n)):
            o = rep.windows[name]
            used = f"{o.utilization * 100:.0f} %" if o.utilization is not None else "?"
            seen = f"seen {_ago((now - o.seen_at).total_seconds())}"
            if o.expired(now):
                assert o.resets_at is not None
                reset = _at(o.resets_at, now, zone)
                lines.append(f"  {window_label(name):<10} {used:>6} then; reset {reset}, no figure since")
                continue
            reset = f"resets {_at(o.resets_at, now, zone)}" if o.resets_at is not None else "reset unknown"
            lines.append(f"  {window_label(name):<10} {used:>6}  {o.status or '-':<15} {reset} · {seen}")
    else:
        lines.append(NO_UTILIZATION)
    burn_tokens = fmt_tokens(round(rep.burn_tokens_per_h))
    lines.append(f"Burn rate (last hour): {fmt_usd(rep.burn_cost_per_h)}/h · {burn_tokens} tokens/h")
    p = rep.projection
    if p is not None:
        if p.reason == "reached":
            lines.append("Projection: the 5-hour window is at 100 %")
        elif p.at is not None:
            lines.append(f"Projection: the 5-hour window reaches 100 % at {_at(p.at, now, zone)}")
        elif p.reason == "not before reset":
            lines.append("Projection: not before reset")
        else:
            lines.append(f"Projection: none ({p.reason})")
    if rep.blocks:
        lines.append("5-hour windows in the ledger (UTC hours; a run counts in the window it started in)")
        lines.append(f"  {'window':<34} {'runs':>5} {'tokens':>8} {'cost':>10}")
        for b in rep.blocks:
            start, end = b.start.astimezone(zone), b.end.astimezone(zone)
            span = f"{start:%a %d %b %H:%M}-{end:%H:%M}" + (" (current)" if b.current else "")
            cost = fmt_usd(b.cost) + ("+" if b.unpriced else "")
            lines.append(f"  {span:<34} {b.runs:>5} {fmt_tokens(b.tokens):>8} {cost:>10}")
    elif not rep.runs:
        lines.append("No runs in the ledger.")
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    app.command("quota")(quota)
