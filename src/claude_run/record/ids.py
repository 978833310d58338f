"""Identifiers made on the hot path (before claude is spawned): stdlib `os` and `time` only.

`uuid` and `secrets` would add ~10 ms of imports each to every run's start-up.
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now_ms: int | None = None) -> str:
    """A 26-char ULID: sortable by creation time, unique without coordination across CI runners."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = ((ms & ((1 << 48) - 1)) << 80) | int.from_bytes(os.urandom(10), "big")
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def uuid4() -> str:
    """A random (version 4) UUID string, as `str(uuid.uuid4())` gives."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
