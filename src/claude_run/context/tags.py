"""`--tag KEY=VALUE` parsing, on the hot path (validated before claude starts): no `re` needed."""

from __future__ import annotations

from ..errors import UsageError

TYPE_CHECKING = False  # on the hot path: typing and collections.abc are for mypy only
if TYPE_CHECKING:
    from collections.abc import Iterable

_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/-")
MAX_KEY = 64
MAX_VALUE = 512


def parse_tags(items: Iterable[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs; a later key wins. Keys are short identifiers so reports can group by them."""
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or len(key) > MAX_KEY or not set(key) <= _KEY_CHARS:
            raise UsageError(f"bad --tag {item!r}: expected KEY=VALUE, KEY of letters, digits and _.:/-")
        if len(value) > MAX_VALUE:
            raise UsageError(f"bad --tag {key}: value longer than {MAX_VALUE} characters")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
            # An ESC sequence or a newline would end up in every report that prints the tag.
            raise UsageError(f"bad --tag {key}: control characters (newline, ESC, ...) are not allowed")
        tags[key] = value
    return tags
