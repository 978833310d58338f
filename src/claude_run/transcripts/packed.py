"""A compact form for many messages: keys, and one bytes buffer of fixed-size usage rows.

A message as a Python tuple of ints weighs ~250 bytes; as a row, 43. Reads travel from worker
processes, sessions sit in memory and in the state file in this form; a session is unpacked into a
dict only when a later read must be merged into it.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .scan import Msg

# model index, input, output, cache_read, cache_creation, cache_creation_1h, sidechain
ROW = struct.Struct("<H5qB")


@dataclass
class Packed:
    keys: list[str] = field(default_factory=list)
    rows: bytes = b""
    models: list[str] = field(default_factory=list)
    costs: dict[int, float] = field(default_factory=dict)  # row -> costUSD (older Claude versions)
    ts: list[str | None] | None = None  # per row, only when timestamps were kept

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def pack(cls, messages: dict[str, Msg]) -> Packed:
        index: dict[str, int] = {}
        out = bytearray()
        costs: dict[int, float] = {}
        keep_ts = any(m[7] is not None for m in messages.values())
        ts: list[str | None] | None = [] if keep_ts else None
        pack_into = ROW.pack
        for i, m in enumerate(messages.values()):
            mi = index.get(m[0])
            if mi is None:
                mi = index[m[0]] = len(index)
            out += pack_into(mi, m[1], m[2], m[3], m[4], m[5], 1 if m[6] else 0)
            if m[8] is not None:
                costs[i] = float(m[8])
            if ts is not None:
                ts.append(m[7])
        return cls(list(messages), bytes(out), list(index), costs, ts)

    def __iter__(self) -> Iterator[Msg]:
        models, costs, ts = self.models, self.costs, self.ts
        for i, (mi, a, b, c, d, e, side) in enumerate(ROW.iter_unpack(self.rows)):
            yield (models[mi], a, b, c, d, e, bool(side), ts[i] if ts else None, costs.get(i))

    def unpack(self) -> dict[str, Msg]:
        return dict(zip(self.keys, self, strict=True))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.keys, "r": base64.b64encode(self.rows).decode(), "m": self.models}
        if self.costs:
            out["c"] = {str(i): c for i, c in self.costs.items()}
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Packed:
        keys = [str(k) for k in raw.get("k") or []]
        rows = base64.b64decode(raw.get("r") or "")
        if len(rows) != len(keys) * ROW.size:
            raise ValueError("damaged packed messages")
        costs = {int(i): float(c) for i, c in (raw.get("c") or {}).items()}
        return cls(keys, rows, [str(m) for m in raw.get("m") or []], costs)
