"""One session's usage, folded from the reads of its files (main transcript and subagents').

A session keeps every deduplicated message (key -> usage) so that a later read can continue exactly:
a copy with larger usage replaces the kept one, a copy already counted is not counted again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .packed import Packed
from .scan import SYNTHETIC, FileScan, Msg, bigger


@dataclass
class TokenSums:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    cache_creation_1h: int = 0
    messages: int = 0

    def add(self, m: Msg) -> None:
        self.input += m[1]
        self.output += m[2]
        self.cache_read += m[3]
        self.cache_creation += m[4]
        self.cache_creation_1h += m[5]
        self.messages += 1

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_creation

    def as_dict(self) -> dict[str, int]:
        out = {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_creation": self.cache_creation,
        }
        if self.cache_creation_1h:
            out["cache_creation_1h"] = self.cache_creation_1h
            out["cache_creation_5m"] = self.cache_creation - self.cache_creation_1h
        return out


@dataclass
class Session:
    key: str
    project_dir: str | None = None
    session_id: str | None = None
    cwd: str | None = None
    version: str | None = None
    branch: str | None = None
    entrypoint: str | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    # Deduplicated messages: packed (compact) until a read must be merged in, then a dict.
    packed: Packed | None = None
    unpacked: dict[str, Msg] | None = None
    cost_state: dict[str, Any] | None = None  # the last `cost-state` line's modelUsage and total
    compactions: int = 0  # compact_boundary lines read (main transcript)
    bad_lines: int = 0
    counted_elsewhere: int = 0  # copies of messages already counted in another session (resumes)
    record_id: str | None = None  # the latest record written for this session
    tracked: bool = False  # recorded by a claude-run run: never imported

    def fold(self, scan: FileScan, owners: dict[str, str]) -> bool:
        """Add one read; `owners` maps every counted message key to its session. True if usage changed."""
        changed = False
        for attr in ("session_id", "cwd", "entrypoint"):
            if getattr(self, attr) is None and getattr(scan, attr) is not None:
                setattr(self, attr, getattr(scan, attr))
        if scan.version:
            self.version = scan.version
        if scan.branch:
            self.branch = scan.branch
        for ts in (scan.first_ts, scan.last_ts):
            if ts is not None:
                if self.first_ts is None or ts < self.first_ts:
                    self.first_ts = ts
                if self.last_ts is None or ts > self.last_ts:
                    self.last_ts = ts
        if scan.cost_state is not None:
            self.cost_state = _cost_state(scan.cost_state)
            changed = True
        self.bad_lines += scan.bad_lines
        self.compactions += scan.compactions
        if self.packed is None and self.unpacked is None and scan.packed is not None:
            # The common case (a session's first read): keep the read's packed rows as they are.
            theirs = scan.packed
            conflicts = False
            for key in theirs.keys:
                if key[0] == "@":
                    continue
                owner = owners.get(key)
                if owner is None:
                    owners[key] = self.key
                elif owner != self.key:
                    conflicts = True
            if not conflicts:
                self.packed = theirs
                scan.packed = None
                return changed or bool(theirs.keys)
            for key in theirs.keys:
                if key[0] != "@" and owners.get(key) != self.key:
                    self.counted_elsewhere += 1
            self.unpacked = {
                k: m
                for k, m in zip(theirs.keys, theirs, strict=True)
                if owners.get(k, self.key) == self.key or k[0] == "@"
            }
            scan.packed = None
            return True
        incoming = scan.packed.unpack() if scan.packed is not None else scan.messages
        mine = self.messages
        for key, entry in incoming.items():
            if key[0] == "@":  # no id to deduplicate by: every such line counts
                mine[key] = entry
                changed = True
                continue
            owner = owners.get(key)
            if owner is None:
                owners[key] = self.key
                mine[key] = entry
                changed = True
            elif owner == self.key:
                if bigger(entry, mine[key]):
                    mine[key] = entry
                    changed = True
            else:
                self.counted_elsewhere += 1
        return changed

    @property
    def messages(self) -> dict[str, Msg]:
        """The messages as a dict (unpacked on first use, to merge a read into them)."""
        if self.unpacked is None:
            self.unpacked = self.packed.unpack() if self.packed is not None else {}
            self.packed = None
        return self.unpacked

    def iter_messages(self) -> Iterator[Msg]:
        if self.unpacked is not None:
            return iter(self.unpacked.values())
        return iter(self.packed) if self.packed is not None else iter(())

    def message_keys(self) -> list[str]:
        if self.unpacked is not None:
            return list(self.unpacked)
        return self.packed.keys if self.packed is not None else []

    def count(self) -> int:
        return len(self.unpacked) if self.unpacked is not None else len(self.packed or ())

    def per_model(self) -> dict[str, TokenSums]:
        out: dict[str, TokenSums] = {}
        for m in self.iter_messages():
            if m[0] == SYNTHETIC:
                continue
            sums = out.get(m[0])
            if sums is None:
                sums = out[m[0]] = TokenSums()
            sums.add(m)
        return out

    def sidechain(self) -> TokenSums:
        sums = TokenSums()
        for m in self.iter_messages():
            if m[6] and m[0] != SYNTHETIC:
                sums.add(m)
        return sums

    # -- state file (JSON-able) --

    def to_state(self) -> dict[str, Any]:
        return {
            "p": self.project_dir,
            "sid": self.session_id,
            "cwd": self.cwd,
            "ver": self.version,
            "br": self.branch,
            "ep": self.entrypoint,
            "t0": self.first_ts,
            "t1": self.last_ts,
            "m": (self.packed or Packed.pack(self.unpacked or {})).to_json(),
            "cs": self.cost_state,
            "bad": self.bad_lines,
            "cb": self.compactions,
            "dup": self.counted_elsewhere,
            "rid": self.record_id,
            "tr": self.tracked,
        }

    @classmethod
    def from_state(cls, key: str, raw: dict[str, Any]) -> Session:
        packed = Packed.from_json(raw.get("m") or {})
        return cls(
            key=key,
            project_dir=raw.get("p"),
            session_id=raw.get("sid"),
            cwd=raw.get("cwd"),
            version=raw.get("ver"),
            branch=raw.get("br"),
            entrypoint=raw.get("ep"),
            first_ts=raw.get("t0"),
            last_ts=raw.get("t1"),
            packed=packed,
            cost_state=raw.get("cs"),
            bad_lines=int(raw.get("bad") or 0),
            compactions=int(raw.get("cb") or 0),
            counted_elsewhere=int(raw.get("dup") or 0),
            record_id=raw.get("rid"),
            tracked=bool(raw.get("tr")),
        )


def _cost_state(obj: dict[str, Any]) -> dict[str, Any]:
    models = obj.get("modelUsage")
    total = obj.get("totalCostUSD")
    return {
        "total": total if isinstance(total, (int, float)) and not isinstance(total, bool) else None,
        "models": models if isinstance(models, dict) else {},
        "unknown_cost": obj.get("hasUnknownModelCost") is True,
    }
