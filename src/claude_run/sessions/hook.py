"""`claude-run hook session-end`: Claude Code's SessionEnd hook appends the session's record.

Claude pipes `{session_id, transcript_path, cwd, hook_event_name, reason}` on stdin and gives
SessionEnd hooks 1.5 s by default, so the command reads its input, detaches (a new session, stdio
on /dev/null) and returns 0 at once; the detached process does the work. Nothing ever reaches the
TUI: problems go to `<ledger>.hook.log`, and the exit code is always 0.

The record is the importer's: the transcript folded by `transcripts.read_session` (subagents
included) and built by `transcripts.importer.build_record(hook=True)` as a tracked record — mode `interactive`
(`non-interactive` when the transcript says `claude -p` ran it), source `hook`, git and project
context from the hook's `cwd`, and `transcript: {offset, end}`, the bytes it accounts for.

Counted once (docs/ledger.md, "Sessions recorded by the hook"):
- a session claude-run tracks itself (`--track`, any mode) carries CLAUDE_RUN_TRACKED in its
  environment, and the hook leaves it to claude-run;
- a session already in the ledger from a run or the hook is recorded only from where its latest
  record's `transcript.end` stops (a resumed session adds what the resume added; a second call for
  an unchanged transcript writes nothing); a session recorded by a run that did not say where it
  stopped, or by the telemetry service, is left alone;
- an import of the session, before or after, does not count: the fold's rule 3 (`query/fold.py`:
  an `imported` record gives way to any other record of its session), and `ledger import` skips
  sessions with such a record.
"""

from __future__ import annotations

import os
import sys
import time

from ..background import detach
from ..run.modes import TRACKED_ENV

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

LOG_SUFFIX = ".hook.log"
LOG_MAX_BYTES = 1 << 20
USAGE = "usage: claude-run hook session-end [--ledger PATH] [--foreground]  (Claude's hook JSON on stdin)"


def log_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + LOG_SUFFIX)


def log(ledger: Path, message: str) -> None:
    """One line in the log beside the ledger; kept under LOG_MAX_BYTES by starting it over."""
    try:
        path = log_path(ledger)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            if path.stat().st_size > LOG_MAX_BYTES:
                os.replace(path, path.with_name(path.name + ".1"))
        except FileNotFoundError:
            pass
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, f"{stamp} {' '.join(message.split())}\n".encode(errors="replace"))
        finally:
            os.close(fd)
    except OSError:
        pass  # nowhere left to say it; the TUI must not see it


def _prior(ledger: Path, session_id: str) -> list[dict[str, Any]]:
    """This session's records, in ledger order (only lines that mention its id are parsed)."""
    import orjson

    from ..ledger.store import iter_lines, segments

    needle = session_id.encode()
    out: list[dict[str, Any]] = []
    for seg in segments(ledger):
        for _, line in iter_lines(seg):
            if needle not in line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("session_id") == session_id:
                out.append(rec)
    return out


def start_offset(prior: list[dict[str, Any]]) -> int | None:
    """Where this session's next record starts in its transcript; None: leave the session alone."""
    start = 0
    for rec in prior:
        if rec.get("mode") == "imported":
            continue  # imports give way to whatever the hook writes (query/fold.py, rule 3)
        if rec.get("mode") == "telemetry":
            return None  # the telemetry service follows this session and rewrites its record
        span = rec.get("transcript")
        end = span.get("end") if isinstance(span, dict) else None
        if not isinstance(end, int) or isinstance(end, bool) or end < 0:
            return None  # a run recorded it without saying how much: splitting it would be a guess
        start = max(start, end)
    return start


def _spooled(ledger: Path, session_id: str) -> list[dict[str, Any]]:
    """This session's records waiting in the spool (an earlier hook the ledger refused)."""
    from ..ledger.store import spool_waiting

    if not spool_waiting(ledger):
        return []
    from ..ledger.spool import waiting

    return [e.record for e in waiting(ledger) if e.record.get("session_id") == session_id]


def _deliver_spooled(ledger: Path) -> None:
    """As store.append_lines does, under the lock the caller holds: records spooled by an earlier
    failed append go first (still failing: they keep waiting, in order)."""
    from ..errors import LedgerError
    from ..ledger.store import spool_waiting

    if spool_waiting(ledger):
        import contextlib

        from ..ledger.spool import flush_locked

        with contextlib.suppress(LedgerError):
            flush_locked(ledger)


def _append(ledger: Path, record: dict[str, Any]) -> str:
    """Append under the lock the caller holds; a record the ledger refuses waits in the spool
    and the log says where."""
    from ..errors import LedgerError
    from ..ledger.store import append_locked, encode

    try:
        append_locked(ledger, encode(record))
    except LedgerError as exc:
        from ..ledger.spool import spool

        where = spool(ledger, [record], exc.message)  # raises LedgerError if even that fails: logged
        return f"spooled {record['session_id']} as {record['id']} in {where}: {exc.message}"
    return f"recorded {record['session_id']} as {record['id']}"


def _transcript(payload: Mapping[str, Any], env: Mapping[str, str]) -> Path | None:
    from pathlib import Path

    from ..transcripts import find_transcript

    given = payload.get("transcript_path")
    if isinstance(given, str) and given.endswith(".jsonl") and os.path.isfile(given):
        return Path(given)
    sid = payload.get("session_id")
    return find_transcript(sid, env) if isinstance(sid, str) and sid else None


def record_session(
    payload: Mapping[str, Any], ledger: Path, env: Mapping[str, str], now: float | None = None
) -> str:
    """Append the session's record (or nothing); returns what happened, for the log and the tests."""
    from ..context.collect import collect
    from ..gates import check_ledger
    from ..ledger.store import locked
    from ..transcripts import importer, read_session

    check_ledger(ledger, reading=False)  # a directory, a symlink, someone else's file: refused
    sid = payload.get("session_id")
    if not isinstance(sid, str) or not sid or len(sid) > 200 or "\n" in sid:
        return "skipped: no session_id in the hook input"
    path = _transcript(payload, env)
    if path is None:
        return f"skipped {sid}: no transcript found"
    with locked(ledger):  # one writer at a time: a second hook for the session sees the first's record
        _deliver_spooled(ledger)
        start = start_offset(_prior(ledger, sid) + _spooled(ledger, sid))
        if start is None:
            return f"skipped {sid}: already recorded by claude-run or the telemetry service"
        size = path.stat().st_size
        if start >= size:
            return f"skipped {sid}: nothing new in the transcript"
        session, end = read_session(path, start, subagents=start == 0)
        if not session.count():
            return f"skipped {sid}: no API usage in the transcript"
        now_ms = int((time.time() if now is None else now) * 1000)
        cwd = payload.get("cwd")
        cwd = cwd if isinstance(cwd, str) and os.path.isdir(cwd) else session.cwd
        extra: dict[str, Any] = {
            "transcript": {
                "first_at": session.first_ts,
                "last_at": session.last_ts,
                "offset": start,
                "end": end,
            }
        }
        if cwd and os.path.isdir(cwd):
            extra.update(collect(cwd, env))
        record = importer.build_record(session, None, now_ms, hook=True, extra=extra)
        if start == 0:  # from an offset the subagents' files cannot be split by run
            from ..transcripts.attribution import for_transcript

            attributed = for_transcript(path, record)
            if attributed is not None:
                record["attribution"] = attributed
        return _append(ledger, record) + f" (transcript bytes {start}-{end})"


def _parse(args: list[str]) -> tuple[str | None, bool]:
    if not args or args[0] != "session-end":
        raise ValueError(USAGE)
    ledger: str | None = None
    foreground = False
    rest = iter(args[1:])
    for arg in rest:
        name, eq, value = arg.partition("=")
        if arg == "--foreground":
            foreground = True
        elif name == "--ledger":
            ledger = value if eq else next(rest, None)
            if not ledger:
                raise ValueError("--ledger needs a PATH")
        else:
            raise ValueError(f"unknown option {arg!r}; {USAGE}")
    return ledger, foreground


def main(args: list[str]) -> int:
    import json

    from ..paths import ledger_path

    try:
        ledger_opt, foreground = _parse(args)
    except ValueError as exc:
        sys.stderr.write(f"claude-run hook: {exc}\n")
        return 0
    ledger = ledger_path(ledger_opt)
    if os.environ.get(TRACKED_ENV):
        return 0  # claude-run runs this session with --track and records it itself
    try:
        raw = sys.stdin.buffer.read(1 << 20)
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, RecursionError) as exc:
        log(ledger, f"session-end: unreadable hook input ({exc})")
        return 0
    if not foreground and detach():
        return 0
    try:
        outcome = record_session(payload, ledger, os.environ)
        if not outcome.startswith("recorded") or os.environ.get("CLAUDE_RUN_DEBUG"):
            log(ledger, f"session-end: {outcome}")
    except BaseException as exc:  # the detached worker has nobody else to tell
        log(ledger, f"session-end: failed: {type(exc).__name__}: {exc}")
    if not foreground:
        os._exit(0)
    return 0
