"""Read one transcript file from a byte offset: the usage of each API message, and session facts.

Speed: a transcript is mostly lines that carry no usage (attachments, prompt snapshots, tool
results, request shapes), often tens of kilobytes each. They are skipped at C speed by searching the
raw bytes for `"usage"`; only the lines around a hit are JSON-decoded. The key can only occur
unescaped as an object key: inside a JSON string its quotes would be backslash-escaped.

Exactness: which lines count, and how, follows ccusage (v18, `data-loader`), so totals agree:
- a line counts when it has `timestamp` (ISO, `Z`) and `message.usage` with numeric
  `input_tokens` and `output_tokens`; whatever its `type`; optional fields, when present, must be
  well-formed (as its schema checks), else the whole line is ignored;
- messages are deduplicated by `message.id:requestId` when both are present; lines lacking either
  are never deduplicated;
- tokens are `input_tokens`, `output_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`;
- `usage.speed == "fast"` is reported as model `<model>-fast`; model `<synthetic>` is not a model.
One deliberate difference: of several copies of a message, ccusage keeps the first, we keep the one
with the largest usage (a streamed copy can carry partial counts). On Claude Code's own files the
copies are identical, so the totals agree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .packed import Packed

CHUNK = 4 << 20  # bytes read at a time: bounds memory whatever the file size

# (model, input, output, cache_read, cache_creation, cache_creation_1h, sidechain, timestamp, cost_usd)
# The timestamp is kept only on request (per-day totals): 200k messages' strings weigh 15 MB.
Msg = tuple[str, int, int, int, int, int, bool, "str | None", "float | None"]

_USAGE = b'"usage"'
_COST_STATE = b'"cost-state"'
_COMPACT = b'"compact_boundary"'
_TS_KEY = b'"timestamp":"'
_TS_BYTES = re.compile(rb'"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z)"')
# [0-9], not \d: a Python str pattern's \d also matches non-ASCII digits, a JS one does not.
_TS_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3})?Z")
_VERSION_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
SYNTHETIC = "<synthetic>"
_ABSENT: Any = object()


@dataclass
class FileScan:
    """What one read of one file found (a worker returns it to the parent: plain, picklable)."""

    path: str
    start: int
    end: int = 0  # offset just past the last complete line read
    messages: dict[str, Msg] = field(default_factory=dict)
    packed: Packed | None = None  # `messages` packed (see `pack`), for the trip between processes
    first_ts: str | None = None
    last_ts: str | None = None
    session_id: str | None = None
    cwd: str | None = None
    version: str | None = None
    branch: str | None = None
    entrypoint: str | None = None
    cost_state: dict[str, Any] | None = None
    compactions: int = 0  # `system/compact_boundary` lines (main transcripts only)
    bad_lines: int = 0
    error: str | None = None

    def pack(self) -> FileScan:
        from .packed import Packed

        self.packed = Packed.pack(self.messages)
        self.messages = {}
        return self

    def see_ts(self, ts: str) -> None:
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts


_NUM_TYPES = (int, float)  # `type(x) in` also rejects bool, as a JSON schema `number` does


def usage_entry(
    obj: dict[str, Any], sidechain_file: bool, keep_ts: bool = False
) -> tuple[str | None, Msg, str] | None:
    """(dedup key or None, message, timestamp) for a line that counts as usage; None for any other."""
    msg = obj.get("message")
    if type(msg) is not dict:
        return None
    usage = msg.get("usage")
    if type(usage) is not dict:
        return None
    ts = obj.get("timestamp")
    if type(ts) is not str or not _TS_RE.fullmatch(ts):
        return None
    inp: Any = usage.get("input_tokens")
    out: Any = usage.get("output_tokens")
    cc: Any = usage.get("cache_creation_input_tokens", 0)
    cr: Any = usage.get("cache_read_input_tokens", 0)
    if (
        type(inp) not in _NUM_TYPES
        or type(out) not in _NUM_TYPES
        or type(cc) not in _NUM_TYPES
        or type(cr) not in _NUM_TYPES
    ):
        return None
    speed = usage.get("speed", "standard")
    if speed != "standard" and speed != "fast":
        return None
    if not _valid_optionals(obj, msg):
        return None
    model = msg.get("model")
    name = model if type(model) is str else "unknown"
    if speed == "fast":
        name += "-fast"
    one_hour = 0
    split = usage.get("cache_creation")
    if type(split) is dict:
        hour: Any = split.get("ephemeral_1h_input_tokens")
        if type(hour) in _NUM_TYPES:
            one_hour = int(hour)
    cost = obj.get("costUSD")
    mid, rid = msg.get("id"), obj.get("requestId")
    key = f"{mid}:{rid}" if type(mid) is str and type(rid) is str else None
    side = obj.get("isSidechain") is True or sidechain_file
    entry: Msg = (name, int(inp), int(out), int(cr), int(cc), one_hour, side, ts if keep_ts else None, cost)
    return key, entry, ts


def _valid_optionals(obj: dict[str, Any], msg: dict[str, Any]) -> bool:
    """ccusage drops a line whose optional fields are present but malformed: do the same."""
    v = obj.get("sessionId", _ABSENT)
    if v is not _ABSENT and (type(v) is not str or not v):
        return False
    v = obj.get("requestId", _ABSENT)
    if v is not _ABSENT and (type(v) is not str or not v):
        return False
    v = msg.get("model", _ABSENT)
    if v is not _ABSENT and (type(v) is not str or not v):
        return False
    v = msg.get("id", _ABSENT)
    if v is not _ABSENT and (type(v) is not str or not v):
        return False
    v = obj.get("cwd", _ABSENT)
    if v is not _ABSENT and type(v) is not str:
        return False
    v = obj.get("version", _ABSENT)
    if v is not _ABSENT and (type(v) is not str or not _VERSION_RE.match(v)):
        return False
    v = obj.get("costUSD", _ABSENT)
    if v is not _ABSENT and type(v) not in _NUM_TYPES:
        return False
    v = obj.get("isApiErrorMessage", _ABSENT)
    if v is not _ABSENT and type(v) is not bool:
        return False
    content = msg.get("content", _ABSENT)
    if content is not _ABSENT:
        if type(content) is not list:
            return False
        for block in content:
            if type(block) is not dict:
                return False
            text = block.get("text", _ABSENT)
            if text is not _ABSENT and type(text) is not str:
                return False
    return True


def _may_grow(usage: object, old: Msg) -> bool:
    """False only when `usage` is well-formed and its total is not above the kept copy's."""
    if type(usage) is not dict:
        return False
    try:
        total = (
            usage["input_tokens"]
            + usage["output_tokens"]
            + usage.get("cache_read_input_tokens", 0)
            + usage.get("cache_creation_input_tokens", 0)
        )
    except (KeyError, TypeError):
        return False  # not a valid usage line: could not be counted anyway
    return bool(total > old[1] + old[2] + old[3] + old[4])


def is_compaction(obj: object) -> bool:
    """A `compact_boundary` line that stands for a compaction. Claude Code also writes a marker
    boundary (duration 0, anchored to itself) that summarizes nothing; it skips those, so do we."""
    if type(obj) is not dict or obj.get("type") != "system" or obj.get("subtype") != "compact_boundary":
        return False
    meta = obj.get("compactMetadata")
    if type(meta) is dict and meta.get("durationMs") == 0:
        kept = meta.get("preservedMessages")
        if type(kept) is dict and kept.get("anchorUuid") == obj.get("uuid"):
            return False
    return True


def bigger(new: Msg, old: Msg) -> bool:
    """A later copy replaces a kept one only when it reports more tokens (counts only grow)."""
    return new[1] + new[2] + new[3] + new[4] > old[1] + old[2] + old[3] + old[4]


def _meta(scan: FileScan, obj: dict[str, Any]) -> None:
    sid = obj.get("sessionId")
    if scan.session_id is None and isinstance(sid, str) and sid:
        scan.session_id = sid
    cwd = obj.get("cwd")
    if scan.cwd is None and isinstance(cwd, str) and cwd:
        scan.cwd = cwd
    version = obj.get("version")
    if isinstance(version, str) and version:
        scan.version = version  # the latest wins: Claude Code updates between resumes
    branch = obj.get("gitBranch")
    if isinstance(branch, str) and branch:
        scan.branch = branch
    entry = obj.get("entrypoint")
    if scan.entrypoint is None and isinstance(entry, str) and entry and obj.get("isSidechain") is not True:
        scan.entrypoint = entry


class _Reader:
    def __init__(self, scan: FileScan, ino: int, sidechain_file: bool, keep_ts: bool) -> None:
        self.scan = scan
        self.keep_ts = keep_ts
        self.ino = ino
        self.side = sidechain_file
        self.need_meta = True
        self.need_first = True

    def line(self, raw: bytes | memoryview, abs_offset: int) -> None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.scan.bad_lines += 1
            return
        if type(obj) is not dict:
            return
        scan = self.scan
        if self.need_first:
            _meta(scan, obj)
            self.need_first = scan.session_id is None or scan.cwd is None or scan.entrypoint is None
        else:
            # Only these change along a session (Claude Code updated, branch switched).
            version = obj.get("version")
            if type(version) is str and version:
                scan.version = version
            branch = obj.get("gitBranch")
            if type(branch) is str and branch:
                scan.branch = branch
        msg = obj.get("message")
        if type(msg) is not dict:
            if obj.get("type") == "cost-state":
                scan.cost_state = obj
            return
        mid, rid = msg.get("id"), obj.get("requestId")
        key = f"{mid}:{rid}" if type(mid) is str and type(rid) is str else None
        if key is not None:
            old = scan.messages.get(key)
            if old is not None and not _may_grow(msg.get("usage"), old):
                return  # a copy no larger than the one kept cannot change anything: skip checking it
        found = usage_entry(obj, self.side, self.keep_ts)
        if found is None:
            return
        entry = found[1]
        scan.see_ts(found[2])
        if key is None:
            scan.messages[f"@{self.ino}:{abs_offset}"] = entry
            return
        old = scan.messages.get(key)
        if old is None or bigger(entry, old):
            scan.messages[key] = entry

    def block(self, buf: bytes, base: int, hi: int) -> None:
        """Lines of buf[0:hi] (hi just past a newline); base is buf's offset in the file."""
        scan = self.scan
        if self.need_meta:
            self._first_meta(buf, base, hi)
        m = _TS_BYTES.search(buf, 0, hi)
        if m:
            scan.see_ts(m.group(1).decode())
        i = buf.rfind(_TS_KEY, 0, hi)
        if i >= 0:
            m = _TS_BYTES.match(buf, i)
            if m:
                scan.see_ts(m.group(1).decode())
        view = memoryview(buf)
        self._hits(buf, view, base, hi, _USAGE)
        if buf.find(_COST_STATE, 0, hi) >= 0:
            self._hits(buf, view, base, hi, _COST_STATE)
        if not self.side and buf.find(_COMPACT, 0, hi) >= 0:
            self._compactions(buf, hi)

    def _compactions(self, buf: bytes, hi: int) -> None:
        pos = 0
        while (i := buf.find(_COMPACT, pos, hi)) >= 0:
            start = buf.rfind(b"\n", 0, i) + 1
            end = buf.find(b"\n", i, hi)
            end = hi if end < 0 else end
            pos = end + 1
            try:
                obj = orjson.loads(buf[start:end])
            except orjson.JSONDecodeError:
                continue
            if is_compaction(obj):
                self.scan.compactions += 1

    def _hits(self, buf: bytes, view: memoryview, base: int, hi: int, needle: bytes) -> None:
        pos = 0
        while True:
            i = buf.find(needle, pos, hi)
            if i < 0:
                return
            start = buf.rfind(b"\n", 0, i) + 1
            end = buf.find(b"\n", i, hi)
            if end < 0:
                end = hi
            if needle is _USAGE or buf.find(_USAGE, start, end) < 0:
                # A cost-state line that also holds "usage" was already read in the usage pass.
                self.line(view[start:end], base + start)
            pos = end + 1

    def _first_meta(self, buf: bytes, base: int, hi: int) -> None:
        # Session facts (cwd, version, branch, entrypoint) from the first line carrying them,
        # so a session with no API message yet still has a project.
        i = buf.find(b'"cwd"', 0, hi)
        if i < 0:
            return
        start = buf.rfind(b"\n", 0, i) + 1
        end = buf.find(b"\n", i, hi)
        try:
            obj = orjson.loads(buf[start : end if end >= 0 else hi])
        except orjson.JSONDecodeError:
            return
        if isinstance(obj, dict):
            _meta(self.scan, obj)
            self.need_meta = False


def scan_file(
    path: str, start: int = 0, sidechain_file: bool = False, need_meta: bool = True, keep_ts: bool = False
) -> FileScan:
    """Read `path` from byte `start` to its last complete line (a torn tail is left for next time)."""
    scan = FileScan(path=path, start=start, end=start)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        scan.error = exc.strerror or str(exc)
        return scan
    try:
        reader = _Reader(scan, os.fstat(fh.fileno()).st_ino, sidechain_file, keep_ts)
        reader.need_meta = need_meta
        fh.seek(start)
        carry = b""
        base = start
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            buf = carry + chunk if carry else chunk
            last = buf.rfind(b"\n")
            if last < 0:
                carry = buf  # one line longer than a chunk: keep reading
                continue
            reader.block(buf, base, last + 1)
            base += last + 1
            carry = buf[last + 1 :]
        if carry.strip():
            # No newline at the end: a line being written, unless it is already a whole object
            # (ccusage reads such a line too).
            try:
                obj = orjson.loads(carry)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                reader.block(carry + b"\n", base, len(carry) + 1)
                base += len(carry)
        scan.end = base
    except OSError as exc:
        scan.error = exc.strerror or str(exc)
    finally:
        fh.close()
    return scan
