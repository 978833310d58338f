"""`ledger import`: read what is new in Claude Code's transcripts and append one record per session.

Flow: discover files -> stat against the index (unchanged files are never opened) -> read the new
bytes of the others, in parallel across files -> fold each read into its session (dedup by message
key, across sessions too) -> a record for every session whose usage changed, superseding the
previous record of that session -> one locked append -> save the state.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ..record.schema import IMPORTED, INTERACTIVE, NON_INTERACTIVE
from .import_state import FileState, ImportState
from .locate import TranscriptFile, discover, roots_for
from .scan import FileScan, scan_file
from .session import Session

EXECUTION_FILE_SOURCE = "execution-file"  # the source of `ledger import --execution-file` records
# Below this many bytes to read, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 16 << 20


@dataclass
class Task:
    path: str
    start: int
    subagent: bool
    need_meta: bool
    size: int


@dataclass
class ImportResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    files_seen: int = 0
    files_read: int = 0
    bytes_read: int = 0
    sessions_tracked: list[str] = field(default_factory=list)
    sessions_rebuilt: int = 0
    bad_lines: int = 0
    read_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _scan_task(task: Task) -> FileScan:
    return scan_file(task.path, task.start, task.subagent, task.need_meta).pack()


def _scan_batch(batch: list[Task]) -> list[FileScan]:
    return [_scan_task(t) for t in batch]


def _run_tasks(tasks: list[Task], workers: int) -> Iterator[FileScan]:
    """Read every task; with N workers, this process is one of them and N-1 are child processes.

    This process would otherwise sit idle waiting: scanning here saves a process (its memory and
    start-up) and the pickling of a share of the results.
    """
    total = sum(t.size - t.start for t in tasks)
    if workers <= 1 or len(tasks) < 2 or total < PARALLEL_MIN_BYTES:
        for t in tasks:
            yield _scan_task(t)
        return
    import multiprocessing as mp
    from collections import deque
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    methods = mp.get_all_start_methods()
    # fork: a child starts at once and shares this process's pages (copy-on-write) until it writes.
    ctx = mp.get_context("fork" if "fork" in methods else "spawn")
    # Largest files first to the children, smallest last here, so both ends finish together.
    pending = deque(sorted(tasks, key=lambda t: t.size - t.start, reverse=True))
    batch_bytes = max(1 << 20, total // (workers * 16))
    children = workers - 1
    inflight: dict[Future[list[FileScan]], list[Task]] = {}
    broken = False

    def feed(pool: ProcessPoolExecutor) -> None:
        while not broken and pending and len(inflight) < 2 * children:
            batch: list[Task] = []
            size = 0
            while pending and (not batch or size < batch_bytes):
                t = pending.popleft()
                batch.append(t)
                size += t.size - t.start
            inflight[pool.submit(_scan_batch, batch)] = batch

    with ProcessPoolExecutor(max_workers=children, mp_context=ctx) as pool:
        feed(pool)
        while pending or inflight:
            for fut in [f for f in inflight if f.done()]:
                batch = inflight.pop(fut)
                try:
                    scans = fut.result()
                except BrokenProcessPool:
                    # A child died (killed, out of memory): its files are read here instead.
                    broken = True
                    scans = [_scan_task(t) for t in batch]
                yield from scans
            feed(pool)
            if pending:
                yield _scan_task(pending.pop())
            elif inflight:
                wait(inflight, return_when=FIRST_COMPLETED)


def _stat_identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def plan(
    state: ImportState, files: list[TranscriptFile], since: datetime | None
) -> tuple[list[Task], set[str], dict[str, os.stat_result]]:
    """(reads to do, sessions to rebuild from scratch, stat of each file read)."""
    tasks: list[Task] = []
    rebuild: set[str] = set()
    stats: dict[str, os.stat_result] = {}
    since_ns = int(since.timestamp() * 1e9) if since else None
    for tf in files:
        try:
            st = os.stat(tf.path)
        except OSError:
            continue
        old = state.files.get(tf.path)
        if old is not None and (old.dev, old.ino, old.size, old.mtime_ns) == _stat_identity(st):
            continue  # unchanged: not even opened
        if since_ns is not None and st.st_mtime_ns < since_ns and old is None:
            continue  # last written before --since: not read, not remembered
        stats[tf.path] = st
        same_file = old is not None and (old.dev, old.ino) == (st.st_dev, st.st_ino)
        if old is not None and same_file and st.st_size >= old.size:
            tasks.append(Task(tf.path, old.end, tf.subagent, False, st.st_size))
        else:
            # New file, or replaced / truncated: the session is read again from scratch.
            if old is not None:
                rebuild.add(old.session)
            tasks.append(Task(tf.path, 0, tf.subagent, True, st.st_size))
    return tasks, rebuild, stats


# What makes two records of one session the same import: a record with these equal adds nothing.
CONTENT_FIELDS = ("started_at", "ended_at", "tokens", "models", "cost_usd", "cost_source")


def content_key(rec: dict[str, Any]) -> bytes:
    data = orjson.dumps({k: rec.get(k) for k in CONTENT_FIELDS}, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class LedgerHolds:
    """What the ledger actually holds of imports: consulted before writing, never the state file."""

    tracked: set[str] = field(default_factory=set)  # sessions recorded by runs or execution files
    latest: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # sid -> (id, content_key)


def ledger_holds(ledger: Path) -> LedgerHolds:
    """Tracked sessions, and per session its live imported record (the last one no other supersedes)."""
    from ..ledger.store import iter_lines, segments
    from ..record.schema import claimed_session, named_target

    held = LedgerHolds()
    chains: dict[str, list[tuple[str, bytes]]] = {}
    superseded: set[str] = set()
    for seg in segments(ledger):
        for _, line in iter_lines(seg):
            if b'"session_id"' not in line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(rec, dict):
                continue
            sid, mode, rid = rec.get("session_id"), rec.get("mode"), rec.get("id")
            if not isinstance(sid, str):
                continue
            # A session another record accounts for (a tracked run, the telemetry service, the hook,
            # an execution file): its transcript adds nothing, and the read fold would not count it.
            if claimed_session(rec) is not None or rec.get("source") == EXECUTION_FILE_SOURCE:
                held.tracked.add(sid)
            elif mode == IMPORTED and isinstance(rid, str):
                chains.setdefault(sid, []).append((rid, content_key(rec)))
                target = named_target(rec)
                if target is not None:
                    superseded.add(target)
    for sid, chain in chains.items():
        live = [entry for entry in chain if entry[0] not in superseded]
        held.latest[sid] = (live or chain)[-1]
    return held


def build_record(
    session: Session,
    supersedes: str | None,
    now_ms: int,
    *,
    hook: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a session read from its transcript: an import, or (`hook`) the SessionEnd
    hook's record of a session that just ended, tracked as the mode it ran in and replacing
    nothing. `extra`: fields the caller knows beyond the transcript (the hook's context)."""
    from ..record.build import build_record as new_record
    from ..record.build import cwd_hash
    from ..record.schema import parse_iso
    from .fields import session_facts, usage_fields

    facts = session_facts(session)
    started, ended = session.first_ts, session.last_ts
    duration = None
    if started and ended:
        duration = int((parse_iso(ended) - parse_iso(started)).total_seconds() * 1000)
    fields = {**facts, **usage_fields(session), "duration_ms": duration, "cwd_sha256": cwd_hash(session.cwd)}
    fields.update(extra or {})
    # The hook records a session that ran outside claude-run, as the mode it ran in; it replaces
    # nothing. An import says which earlier import of the session it replaces (None: none).
    named: dict[str, Any] = {} if hook else {"supersedes": supersedes}
    record = new_record(
        now_ms=now_ms,
        started_at=started,
        ended_at=ended,
        mode=(NON_INTERACTIVE if facts.get("interactive") is False else INTERACTIVE) if hook else IMPORTED,
        source="hook" if hook else "import",
        status="success",
        exit_code=None,
        fields=fields,
        **named,
    )
    return dict(record)


def run_import(
    ledger: Path,
    dirs: Iterable[Path],
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    workers: int | None = None,
    limit_sessions: int | None = None,
) -> ImportResult:
    t0 = time.perf_counter()
    result = ImportResult()
    state = ImportState.load(ledger)
    with state.locked():
        files = discover(roots_for(dirs))
        if limit_sessions is not None:
            keep = sorted({f.session_key for f in files})[:limit_sessions]
            wanted = set(keep)
            files = [f for f in files if f.session_key in wanted]
        result.files_seen = len(files)
        tasks, rebuild, stats = plan(state, files, since)
        # Trusted only while the ledger is the one the state was written against (runs may have
        # appended). Deleted, replaced, restored, rotated, merged or rewritten: every session is
        # compared with what the ledger holds, so what is missing comes back and nothing twice.
        trusted = state.describes_ledger()
        if not tasks and trusted:
            result.seconds = time.perf_counter() - t0
            return result
        sessions = state.sessions()
        if state.reset:
            tasks, rebuild, stats = plan(state, files, since)
        owners: dict[str, str] = {}
        for s in sessions.values():
            for key in s.message_keys():
                if key[0] != "@":
                    owners[key] = s.key
        by_file = {f.path: f for f in files}
        for key in rebuild:
            old = sessions.get(key)
            if old is None:
                continue
            for mkey in old.message_keys():
                if owners.get(mkey) == key:
                    del owners[mkey]
            fresh = Session(
                key=key, project_dir=old.project_dir, record_id=old.record_id, tracked=old.tracked
            )
            sessions[key] = fresh
            result.sessions_rebuilt += 1
            # Every other file of that session is read again from its start.
            queued = {t.path for t in tasks}
            for path, fs in state.files.items():
                if fs.session == key and path not in queued and path in by_file:
                    st = stats.get(path) or os.stat(path)
                    stats[path] = st
                    tasks.append(Task(path, 0, fs.subagent, True, st.st_size))
        nworkers = workers if workers is not None else (os.cpu_count() or 1)
        scans = list(_run_tasks(tasks, nworkers))
        # Fold in the order ccusage reads files (earliest first), so a message copied into a resumed
        # session counts toward the session where it first appeared.
        scans.sort(key=lambda s: (s.first_ts is None, s.first_ts or "", s.path))
        changed: set[str] = set()
        scans.reverse()
        while scans:
            scan = scans.pop()  # each read is dropped once folded: memory stays one copy
            tf = by_file[scan.path]
            result.files_read += 1
            result.bytes_read += scan.end - scan.start
            result.bad_lines += scan.bad_lines
            if scan.error:
                result.read_errors.append(f"{scan.path}: {scan.error}")
                continue
            session = sessions.get(tf.session_key)
            if session is None:
                session = sessions[tf.session_key] = Session(key=tf.session_key, project_dir=tf.project_dir)
            if session.fold(scan, owners) or tf.session_key in rebuild:
                changed.add(tf.session_key)
            st = stats[scan.path]
            state.files[scan.path] = FileState(
                st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, scan.end, tf.session_key, tf.subagent
            )
        read_now = set(changed)
        if not trusted:
            changed.update(sessions)
        emit = [sessions[k] for k in sorted(changed) if sessions[k].count()]
        written: list[tuple[Session, str]] = []
        if emit:
            from ..ledger.maintenance import pruned_before
            from ..record.schema import parse_iso

            held = ledger_holds(ledger)
            pruned = pruned_before(ledger)
            now_ms = int(time.time() * 1000)
            for s in emit:
                sid = s.session_id or s.key
                if sid in held.tracked or s.key in held.tracked or (trusted and s.tracked):
                    s.tracked = True
                    result.sessions_tracked.append(sid)
                    continue
                s.tracked = False
                prev = held.latest.get(sid)
                record = build_record(s, prev[0] if prev else None, now_ms)
                if prev is not None and prev[1] == content_key(record):
                    s.record_id = prev[0]  # the ledger holds the session as it is: not imported twice
                    continue
                started = record["started_at"]
                gone = prev is None and s.key not in read_now and bool(started)
                if gone and pruned is not None and parse_iso(started) < pruned:
                    s.record_id = None  # removed on purpose by prune or retention: stays out
                    continue
                result.records.append(record)
                written.append((s, record["id"]))
        if dry_run:
            result.seconds = time.perf_counter() - t0
            return result
        from ..ledger.identity import current

        if result.records:
            from ..ledger.store import append_lines, encode

            append_lines(ledger, [encode(r) for r in result.records])
            for s, rid in written:
                s.record_id = rid
        state.ledger_identity = current(ledger)
        state.save()
    result.seconds = time.perf_counter() - t0
    return result
