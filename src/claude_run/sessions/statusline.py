"""`claude-run statusline`: one short line for Claude Code's status bar, from the JSON it pipes in.

    Sonnet 4.5 · session $0.0072 · today $1.23/$5.00 · ctx 3% · 5h 81% ↻14:30

Claude runs the command on every refresh and shows the first line it prints, so this path is
start-up critical and must never fail loudly: no typer, anyio or orjson here (stdlib `json`), the
ledger is read through `daytotals` (today's figures from the bytes appended since the last refresh),
and any bad input or error still prints one short line and exits 0.

Configuration (flags in the settings.json command, else environment):
  --segments LIST    CLAUDE_RUN_STATUSLINE_SEGMENTS  model,session,today,context,quota (also: week)
  --color WHEN       CLAUDE_RUN_STATUSLINE_COLOR     auto (default: colour unless NO_COLOR), always, never
  --colors K=C,...   CLAUDE_RUN_STATUSLINE_COLORS    per segment, sep, warn, alert: a name or SGR codes
  --budget-daily USD CLAUDE_RUN_BUDGET_DAILY         shown beside today's spend, coloured as it fills
  --tz ZONE          CLAUDE_RUN_BUDGET_TZ            day boundary (default UTC, as --budget-tz)
  --ledger PATH      CLAUDE_RUN_LEDGER               the ledger (else the data dir)
"""

from __future__ import annotations

import json
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SEGMENTS = ("model", "session", "today", "context", "quota", "week")
DEFAULT_SEGMENTS = ("model", "session", "today", "context", "quota")
SEP = " · "
MAX_MODEL = 28
# A new (replaced, rotated) ledger larger than this is read in full by a detached process rather
# than during the refresh: ~0.3 s of reading on a slow machine; Claude may cut a slow command short.
INLINE_READ_MAX = 8 << 20
# Fractions of a limit at which a figure turns to the warn / alert colour.
LEVELS = {"today": (0.8, 1.0), "context": (0.7, 0.9), "quota": (0.8, 0.95), "week": (0.8, 0.95)}
NAMED = {
    "none": "",
    "bold": "1",
    "dim": "2",
    "black": "30",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
    "white": "37",
    "gray": "90",
    "grey": "90",
}
DEFAULT_COLORS = {
    "model": "36",
    "session": "",
    "today": "",
    "context": "",
    "quota": "",
    "week": "",
    "sep": "2",
    "warn": "33",
    "alert": "1;31",
}
USAGE = (
    "usage: claude-run statusline [--segments LIST] [--color auto|always|never] [--colors K=C,...]"
    " [--budget-daily USD] [--tz ZONE] [--ledger PATH]  (reads Claude's status JSON on stdin)"
)


class StatusError(Exception):
    """A bad option or setting: shown, shortened, as the status line itself."""


class Config:
    """What to show and how. Plain class: dataclasses costs ~8 ms to import on this path."""

    def __init__(self) -> None:
        self.segments: tuple[str, ...] = DEFAULT_SEGMENTS
        self.color = True
        self.colors = dict(DEFAULT_COLORS)
        self.budget_daily: float | None = None
        self.tz = "UTC"
        self.ledger: str | None = None


def _sgr(text: str) -> str:
    value = NAMED.get(text.strip().lower())
    if value is not None:
        return value
    code = text.strip()
    if code and all(part.isdigit() and len(part) <= 3 for part in code.split(";")):
        return code
    raise StatusError(f"unknown colour {text!r}")


def _usd_limit(text: str) -> float:
    from ..errors import UsageError
    from ..gates import number

    try:
        return number(text, "--budget-daily", low=0, low_open=True)
    except UsageError as exc:
        raise StatusError(exc.message) from None


def parse_config(args: list[str], env: Mapping[str, str]) -> Config:
    """Flags first, then the environment. Raises StatusError for anything it cannot read."""
    given: dict[str, str] = {}
    flags = ("--segments", "--color", "--colors", "--budget-daily", "--tz", "--ledger")
    it = iter(args)
    for arg in it:
        if arg in ("-h", "--help"):
            raise StatusError(USAGE)
        name, eq, value = arg.partition("=")
        if name not in flags:
            raise StatusError(f"unknown option {arg!r}")
        if not eq:
            nxt = next(it, None)
            if nxt is None:
                raise StatusError(f"{name} needs a value")
            value = nxt
        given[name] = value

    def setting(flag: str, var: str) -> str | None:
        if flag in given:
            return given[flag]
        value = env.get(var, "").strip()
        return value or None

    cfg = Config()
    segments = setting("--segments", "CLAUDE_RUN_STATUSLINE_SEGMENTS")
    if segments is not None:
        names = tuple(s.strip() for s in segments.split(",") if s.strip())
        bad = [s for s in names if s not in SEGMENTS]
        if bad:
            raise StatusError(f"unknown segment {bad[0]!r} (known: {','.join(SEGMENTS)})")
        cfg.segments = names
    when = (setting("--color", "CLAUDE_RUN_STATUSLINE_COLOR") or "auto").lower()
    if when not in ("auto", "always", "never"):
        raise StatusError(f"--color must be auto, always or never, got {when!r}")
    # https://no-color.org: any non-empty NO_COLOR turns colour off unless asked for explicitly.
    cfg.color = when == "always" or (when == "auto" and not env.get("NO_COLOR") and env.get("TERM") != "dumb")
    colors = setting("--colors", "CLAUDE_RUN_STATUSLINE_COLORS")
    if colors:
        for item in colors.split(","):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in DEFAULT_COLORS:
                raise StatusError(f"--colors wants KEY=COLOUR with KEY in {','.join(DEFAULT_COLORS)}")
            cfg.colors[key] = _sgr(value)
    budget = setting("--budget-daily", "CLAUDE_RUN_BUDGET_DAILY")
    if budget is not None:
        cfg.budget_daily = _usd_limit(budget)
    cfg.tz = setting("--tz", "CLAUDE_RUN_BUDGET_TZ") or "UTC"
    cfg.ledger = setting("--ledger", "CLAUDE_RUN_LEDGER")
    return cfg


# -- reading Claude's JSON: every field may be missing, of the wrong type, or absurd ------------------
def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number


def _get(data: object, *path: str) -> object:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def fmt_money(usd: float) -> str:
    """Short whatever the size: $0.0072, $1.23, $123, $12.3k, $4.5M, $1.2e+15."""
    if usd < 0:
        return "-" + fmt_money(-usd)
    if usd < 1:
        return f"${usd:.4f}" if usd else "$0.00"
    if usd < 100:
        return f"${usd:.2f}"
    if usd < 10_000:
        return f"${usd:.0f}"
    if usd < 1e6:
        return f"${usd / 1e3:.1f}k"
    if usd < 1e9:
        return f"${usd / 1e6:.1f}M"
    return f"${usd:.2g}"


def fmt_pct(pct: float) -> str:
    if pct >= 1000:
        return ">999%"
    if pct <= 0:
        return "0%"
    return f"{pct:.0f}%" if pct >= 1 else "<1%"


def session_cost(data: object) -> float | None:
    return _num(_get(data, "cost", "total_cost_usd"))


def context_pct(data: object) -> float | None:
    used = _num(_get(data, "context_window", "used_percentage"))
    if used is not None:
        return used
    size = _num(_get(data, "context_window", "context_window_size"))
    usage = _get(data, "context_window", "current_usage")
    if not size or size <= 0 or not isinstance(usage, dict):
        return None
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    tokens = sum(_num(usage.get(k)) or 0.0 for k in keys)
    return 100.0 * tokens / size


class Figures:
    """Today's spend as the status line shows it: the ledger's, with this session counted once.
    `usd` None: a detached process is reading a new ledger in full, the figure comes later."""

    def __init__(self, usd: float | None, unpriced: int) -> None:
        self.usd = usd
        self.unpriced = unpriced


def today_figures(data: object, cfg: Config, now: float) -> Figures:
    from ..budgets.daytotals import load_today
    from ..errors import LedgerError
    from ..gates import check_ledger
    from ..paths import ledger_file

    tz = None
    if cfg.tz.upper() not in ("UTC", "Z"):
        from ..budgets.check import zone
        from ..errors import UsageError

        try:
            tz = zone(cfg.tz)
        except UsageError:
            raise StatusError(f"unknown time zone {cfg.tz!r}") from None
    ledger = ledger_file(cfg.ledger)
    try:
        check_ledger(ledger, reading=False)  # a directory, a symlink, someone else's file: refused
    except LedgerError as exc:
        reason = exc.message.replace(f" {ledger}", "")  # the path is long, the reason short
        short = reason if len(reason) <= 60 else reason[:59] + "…"
        raise StatusError(f"today: {short}") from None
    today = load_today(ledger, now, tz, cfg.tz.upper() if tz is None else cfg.tz, inline_max=INLINE_READ_MAX)
    if today is None:
        return Figures(None, 0)
    sid = _get(data, "session_id")
    live = session_cost(data)
    usd, unpriced, recorded = today.spend(sid if isinstance(sid, str) and sid else None)
    if live is not None:
        # The session's records (if already in the ledger) give way to Claude's live figure, which
        # includes them: counted once, never twice.
        usd += max(live - recorded, 0.0)
    return Figures(usd, unpriced)


def _paint(text: str, code: str, cfg: Config) -> str:
    if not cfg.color or not code:
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def _level(name: str, fraction: float, cfg: Config) -> str:
    warn, alert = LEVELS[name]
    if fraction >= alert:
        return cfg.colors["alert"]
    if fraction >= warn:
        return cfg.colors["warn"]
    return cfg.colors[name]


def _reset_clock(value: object, now: float) -> str:
    at = _num(value)
    if at is None or not 0 < at < 1e11:
        return ""
    if at - now > 86400:
        return " ↻" + time.strftime("%a %H:%M", time.localtime(at))
    return " ↻" + time.strftime("%H:%M", time.localtime(at))


def render(data: object, cfg: Config, now: float, figures: Figures | None) -> str:
    """The line, from whatever parts of `data` are usable; a segment without data is left out."""
    parts: list[str] = []
    for name in cfg.segments:
        text, code = "", cfg.colors.get(name, "")
        if name == "model":
            model = _get(data, "model", "display_name") or _get(data, "model", "id") or _get(data, "model")
            if isinstance(model, str) and model.strip():
                from ..text import terminal

                text = terminal(" ".join(model.split()))  # no escape sequence reaches the status bar
                text = text if len(text) <= MAX_MODEL else text[: MAX_MODEL - 1] + "…"
        elif name == "session":
            cost = session_cost(data)
            if cost is not None:
                text = f"session {fmt_money(cost)}"
        elif name == "today" and figures is not None and figures.usd is None:
            text = "today …"
        elif name == "today" and figures is not None and figures.usd is not None:
            lower = "≥" if figures.unpriced else ""  # unpriced runs add an unknown amount
            text = f"today {lower}{fmt_money(figures.usd)}"
            if cfg.budget_daily is not None:
                text += f"/{fmt_money(cfg.budget_daily)}"
                code = _level("today", figures.usd / cfg.budget_daily, cfg)
        elif name == "context":
            pct = context_pct(data)
            if pct is not None:
                text = f"ctx {fmt_pct(pct)}"
                code = _level("context", pct / 100, cfg)
        elif name in ("quota", "week"):
            window = _get(data, "rate_limits", "five_hour" if name == "quota" else "seven_day")
            pct = _num(_get(window, "used_percentage"))
            if pct is not None:
                label = "5h" if name == "quota" else "7d"
                text = f"{label} {fmt_pct(pct)}{_reset_clock(_get(window, 'resets_at'), now)}"
                code = _level(name, pct / 100, cfg)
        if text:
            parts.append(_paint(text, code, cfg))
    return _paint(SEP, cfg.colors["sep"], cfg).join(parts) or "claude-run: no status data"


def status_line(args: list[str], raw: bytes, env: Mapping[str, str], now: float | None = None) -> str:
    """The whole command as a function: never raises, always one line."""
    now = time.time() if now is None else now
    try:
        cfg = parse_config(args, env)
    except StatusError as exc:
        return f"claude-run statusline: {exc}"
    try:
        data: Any = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return "claude-run: no status (the input is not a JSON object)"
    figures = None
    note = ""
    if "today" in cfg.segments:
        try:
            figures = today_figures(data, cfg, now)
        except StatusError as exc:
            note = f" · {exc}"
        except Exception as exc:  # the ledger unreadable, a symlink, a damaged segment: say so briefly
            note = " · today: ledger unreadable" + (f" ({exc})" if env.get("CLAUDE_RUN_DEBUG") else "")
    try:
        return render(data, cfg, now, figures) + note
    except Exception:
        return "claude-run: no status (unexpected input)"


def main(args: list[str]) -> int:
    try:
        raw = sys.stdin.buffer.read() if sys.stdin is not None else b""
    except (OSError, ValueError):
        raw = b""
    try:
        line = status_line(args, raw, os.environ)
    except BaseException:  # not even KeyboardInterrupt may break Claude's status bar
        line = "claude-run: no status"
    try:
        sys.stdout.write(line.replace("\n", " ") + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    return 0
