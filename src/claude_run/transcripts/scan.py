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
from typing import Any, TypeGuard

import orjson

CHUNK = 4 << 20  # bytes read at a time: bounds memory whatever the file size

# (model, input, output, cache_read, cache_creation, cache_creation_1h, sidechain, timestamp, cost_usd)
Msg = tuple[str, int, int, int, int, int, bool, str, "float | None"]

_USAGE = b'"usage"'
_COST_STATE = b'"cost-state"'
_TS_KEY = b'"timestamp":"'
_TS_BYTES = re.compile(rb'"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z)"')
_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z")
_VERSION_RE = re.compile(r"\d+\.\d+\.\d+")
SYNTHETIC = "<synthetic>"


@dataclass
class FileScan:
    """What one read of one file found (a worker returns it to the parent: plain, picklable)."""

    path: str
    start: int
    end: int = 0  # offset just past the last complete line read
    messages: dict[str, Msg] = field(default_factory=dict)
    first_ts: str | None = None
    last_ts: str | None = None
    session_id: str | None = None
    cwd: str | None = None
    version: str | None = None
    branch: str | None = None
    entrypoint: str | None = None
    cost_state: dict[str, Any] | None = None
    bad_lines: int = 0
    error: str | None = None

    def see_ts(self, ts: str) -> None:
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts


def _num(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _nonempty(value: object) -> bool:
    return isinstance(value, str) and value != ""


def usage_entry(obj: dict[str, Any], sidechain_file: bool) -> tuple[str | None, Msg] | None:
    """(dedup key or None, message) for a line that counts as usage; None for any other line."""
    msg = obj.get("message")
    if not isinstance(msg, dict):
        return None
    usage = msg.get("usage")
    if not isinstance(usage, dict):
        return None
    ts = obj.get("timestamp")
    if not isinstance(ts, str) or not _TS_RE.fullmatch(ts):
        return None
    inp, out = usage.get("input_tokens"), usage.get("output_tokens")
    if not _num(inp) or not _num(out):
        return None
    cc, cr = usage.get("cache_creation_input_tokens", 0), usage.get("cache_read_input_tokens", 0)
    if not _num(cc) or not _num(cr):
        return None
    speed = usage.get("speed")
    if speed is not None and speed not in ("standard", "fast"):
        return None
    if "speed" in usage and speed is None:
        return None
    if not _valid_optionals(obj, msg):
        return None
    model = msg.get("model")
    name = model if isinstance(model, str) else "unknown"
    if speed == "fast":
        name += "-fast"
    one_hour = 0
    split = usage.get("cache_creation")
    if isinstance(split, dict):
        hour = split.get("ephemeral_1h_input_tokens")
        if isinstance(hour, (int, float)) and not isinstance(hour, bool):
            one_hour = int(hour)
    cost = obj.get("costUSD")
    mid, rid = msg.get("id"), obj.get("requestId")
    key = f"{mid}:{rid}" if isinstance(mid, str) and isinstance(rid, str) else None
    side = obj.get("isSidechain") is True or sidechain_file
    entry: Msg = (name, int(inp), int(out), int(cr), int(cc), one_hour, side, ts, cost)
    return key, entry


def _valid_optionals(obj: dict[str, Any], msg: dict[str, Any]) -> bool:
    """ccusage drops a line whose optional fields are present but malformed: do the same."""
    for key in ("sessionId", "requestId"):
        if key in obj and not _nonempty(obj[key]):
            return False
    for key in ("model", "id"):
        if key in msg and not _nonempty(msg[key]):
            return False
    if "cwd" in obj and not isinstance(obj["cwd"], str):
        return False
    if "version" in obj:
        v = obj["version"]
        if not isinstance(v, str) or not _VERSION_RE.match(v):
            return False
    if "costUSD" in obj and not _num(obj["costUSD"]):
        return False
    if "isApiErrorMessage" in obj and not isinstance(obj["isApiErrorMessage"], bool):
        return False
    if "content" in msg:
        content = msg["content"]
        if not isinstance(content, list):
            return False
        for block in content:
            if not isinstance(block, dict):
                return False
            if "text" in block and not isinstance(block["text"], str):
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
    def __init__(self, scan: FileScan, ino: int, sidechain_file: bool) -> None:
        self.scan = scan
        self.ino = ino
        self.side = sidechain_file
        self.need_meta = True

    def line(self, raw: bytes | memoryview, abs_offset: int) -> None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.scan.bad_lines += 1
            return
        if not isinstance(obj, dict):
            return
        scan = self.scan
        _meta(scan, obj)
        if obj.get("type") == "cost-state":
            scan.cost_state = obj
            return
        found = usage_entry(obj, self.side)
        if found is None:
            return
        key, entry = found
        scan.see_ts(entry[7])
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


def scan_file(path: str, start: int = 0, sidechain_file: bool = False, need_meta: bool = True) -> FileScan:
    """Read `path` from byte `start` to its last complete line (a torn tail is left for next time)."""
    scan = FileScan(path=path, start=start, end=start)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        scan.error = exc.strerror or str(exc)
        return scan
    try:
        reader = _Reader(scan, os.fstat(fh.fileno()).st_ino, sidechain_file)
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
