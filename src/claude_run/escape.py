"""Text leaving the program, made safe for where it goes: a terminal, a Markdown table, HTML.

Ledger values (tags, project and branch names, models) come from command lines, environments and
other people's ledgers: an ESC sequence in a tag must not repaint the user's terminal, a `|` in a
project name must not break a PR comment's table, and raw HTML must not pass through Markdown.
"""

from __future__ import annotations

import html

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


def html_text(text: str) -> str:
    """HTML text or attribute value (the report already escapes this way; one place for it)."""
    return html.escape(terminal(text), quote=True)
