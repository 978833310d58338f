"""Text leaving the program: figures written for people (tokens, dollars, durations), and made safe
for where it goes: a terminal, a Markdown table.

Ledger values (tags, project and branch names, models) come from command lines, environments and
other people's ledgers: an ESC sequence in a tag must not repaint the user's terminal, a `|` in a
project name must not break a PR comment's table, and raw HTML must not pass through Markdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal

# C0 controls, DEL and C1 controls: all invisible or active on a terminal.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
# Bidirectional overrides can reorder what a terminal shows (Trojan Source): shown as escapes too.
_CONTROL.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def terminal(text: str) -> str:
    """Control characters shown as visible escapes (`\\x1b`, `\\n`): nothing reaches the terminal raw."""
    return text.translate(_CONTROL)


_MARKDOWN = {ord("\\"): "\\\\", ord("|"): "\\|", ord("<"): "&lt;", ord(">"): "&gt;", ord("&"): "&amp;"}
_MARKDOWN.update({ord(c): "\\" + c for c in "`*_[]#"})


def markdown_cell(text: str) -> str:
    """A Markdown table cell: controls as escapes, `|` and Markdown syntax escaped, HTML as text."""
    return terminal(text).translate(_MARKDOWN)


# -- figures for people: the run's summary, reports, CI step summaries and the dashboard --
def fmt_tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def fmt_usd(value: float | Decimal | None, places: int = 2, *, none: str = "unpriced") -> str:
    """The one money format: `$0.00`, `$0.0153` (under a dollar, four places), `$12.34`."""
    if value is None:
        return none
    if value == 0:
        return "$0.00"
    if -1 < value < 1:
        return f"${value:.4f}"
    return f"${value:,.{places}f}"


def fmt_duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def fmt_pct(value: float) -> str:
    return f"{value:.0f}%" if value >= 10 else f"{value:.1f}%".replace(".0%", "%")


def plural(n: object, word: str) -> str:
    """`1 turn`, `2 turns`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
