"""Open a ledger for reading: a DuckDB connection whose views are the counted rows.

    with open_engine(ledger) as eng:
        eng.con.execute("SELECT project, sum(cost_usd) FROM runs GROUP BY ALL").fetchall()

Views (documented for users in docs/reports.md, `ledger sql`):
- `runs`: one row per counted record, its fields typed and flattened (`schema.COLUMNS`);
- `parts`: one row per counted record and model it used, the residual on the main part;
- `all_records`: every record line with `counted` (false for duplicates, replaced records and
  imports of sessions recorded otherwise).
Internal: `_lines` (= all_records with `rid`), `_parts` (with `rid`), `_units` (one row per model
part of a counted record with the record's dimensions: what reports scan).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..ledger import identity, store
from ..record.schema import SCHEMA_VERSION
from . import fold, index, schema

TAIL_REBUILD_FRACTION = 0.25
TAIL_REBUILD_MIN_BYTES = 1 << 20


@dataclass
class Engine:
    con: duckdb.DuckDBPyConnection
    warnings: list[str] = field(default_factory=list)
    source: str = "memory"  # index, index+tail, built, memory, empty
    #: What was read: (path, device, inode, bytes) per segment, and the ledger's generation.
    files: list[tuple[str, int, int, int]] = field(default_factory=list)
    generation: str = ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()


#: DuckDB's memory for one process; past it, it spills to a private temp directory.
MEMORY_LIMIT = "200MB"
#: ... for a one-off read of a large ledger without an index: its rows and the JSON reader's buffers
#: together stay within 250 MB of the process (a little spilling costs ~5% of the read).
ONE_OFF_MEMORY_LIMIT = "150MB"


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"threads": max(1, min(os.cpu_count() or 1, 4))})
    # Timestamps without an offset are UTC (the README's record format); buckets pick their zone.
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    # Spilled pages hold ledger data: keep them in a directory only this user can read.
    spill = Path(tempfile.gettempdir()) / f"claude-run-duckdb-{os.getuid() if hasattr(os, 'getuid') else 0}"
    with contextlib.suppress(OSError):
        spill.mkdir(mode=0o700, exist_ok=True)
    con.execute("SET temp_directory = ?", [str(spill)])
    return con


def _load(
    con: duckdb.DuckDBPyConnection,
    files: list[str],
    table: str,
    first_rid: int,
    columns: tuple[str, ...] | None = None,
) -> None:
    """Typed rows of `files` (read whole) into `table`; only `columns` (and the keys) when given,
    for a lean one-off read. `rid_view(table)` numbers them from `first_rid` in line order."""
    select = schema.record_select(columns, schema.read_json_sql("$files", schema.raw_columns(columns)))
    con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}", {"files": files})
    with_rid(con, table, first_rid)


def rid_view(table: str) -> str:
    return "_v_" + table.replace(".", "_")


def with_rid(con: duckdb.DuckDBPyConnection, table: str, first_rid: int) -> None:
    """The view of `table` with `rid`: rowid of a table filled in one statement is the line order
    (DuckDB keeps insertion order), so the position of a line costs nothing to keep."""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {rid_view(table)} AS SELECT rowid + {first_rid} AS rid, * FROM {table}"
    )


#: The record columns a part carries (what reports group and filter on); absent ones are NULL.
UNIT_DIMS = ("started_at", "project", "branch", "status", "mode", "ci_job", "session_id", "tags")


def _parts(
    con: duckdb.DuckDBPyConnection, recs: str, out: str, excluded: str | None, *, view: bool = False
) -> None:
    """`out`: one row per model part of every record line of `recs`, with the record's dimensions,
    a 15-minute bucket of its start, and whether the fold of `excluded` counts it: the flat table
    reports scan (`_units`). Disposable like the rest of the index. `view`: computed as scanned."""
    rview = rid_view(recs)
    present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rview}").fetchall()}
    dims = [f"r.{d}" if d in present else f"NULL AS {d}" for d in UNIT_DIMS]
    dims.append("r.priced")
    dims.append("(epoch_ms(r.started_at) // 900000) AS q")  # floor: 23:59:59.5 is still that day
    dims.append(f"(r.rid NOT IN (SELECT rid FROM {excluded})) AS counted" if excluded else "true AS counted")
    lists = present & set(schema.MODEL_LISTS)
    kind = "VIEW" if view else "TABLE"
    con.execute(f"CREATE OR REPLACE {kind} {out} AS {schema.parts_sql(rview, ', '.join(dims), lists)}")
    if not view:
        for column in sorted(lists):  # the parts hold what they said
            con.execute(f"ALTER TABLE {recs} DROP COLUMN {column}")


def _stats(con: duckdb.DuckDBPyConnection, recs: str, parts: str | None) -> tuple[int, int, int]:
    """Bad lines, records of a newer schema, and records holding figures that cannot be true (in
    their model parts too, unless `parts` is None: a read without the parts' figures)."""
    in_parts = f"OR rid IN (SELECT rid FROM {parts} WHERE impossible)" if parts is not None else ""
    row = con.execute(
        f"""SELECT count(*) FILTER (WHERE NOT ok), count(*) FILTER (WHERE ok AND v > {SCHEMA_VERSION}),
                   count(*) FILTER (WHERE ok AND (impossible {in_parts}))
            FROM {rid_view(recs)}"""
    ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def _bad_lines(paths: list[tuple[Path, int, int]], limit: int) -> list[tuple[Path, int]]:
    """Line numbers of bad lines (the Python reader's judgement) in byte ranges of files."""
    out: list[tuple[Path, int]] = []
    for path, start, end in paths:
        try:
            fh = open(path, "rb")  # noqa: SIM115
        except OSError:
            continue
        with fh:
            # Line numbers count from the file's start even when the range begins later.
            lineno = fh.read(start).count(b"\n") if start else 0
            for _, line, _ in store.iter_raw(fh, end, start):
                lineno += 1
                if line.strip() and store.parse_record(line) is None:
                    out.append((path, lineno))
                    if len(out) >= limit:
                        return out
    return out


class _Tail:
    """Lines appended past what the index covers, copied to a private temp file for read_json."""

    def __init__(self, snap: store.Snapshot, marks: tuple[identity.Mark, ...]) -> None:
        self.ranges: list[tuple[Path, int, int]] = []
        self.bytes = 0
        for i, view in enumerate(snap.segments):
            start = marks[i].covered if i < len(marks) else 0
            if view.size > start:
                self.ranges.append((view.path, start, view.size))
                self.bytes += view.size - start

    def write(self, snap: store.Snapshot) -> str:
        fd, name = tempfile.mkstemp(prefix="claude-run-tail-", suffix=".jsonl")
        with os.fdopen(fd, "wb") as out:
            views = {v.path: v for v in snap.segments}
            for path, start, end in self.ranges:
                fh = views[path].file
                fh.seek(start)
                remaining = end - start
                while remaining:
                    chunk = fh.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    out.write(chunk)
                    remaining -= len(chunk)
                out.write(b"\n")  # a torn last line of one file never glues to the next
        return name


def _define_views(con: duckdb.DuckDBPyConnection, base: str | None, has_tail: bool) -> None:
    """`_lines`, `_parts` and the public views over the base tables (if any) and the tail (if any)."""
    sources_l: list[str] = []
    sources_p: list[str] = []
    sources_u: list[str] = []
    extra = "rid NOT IN (SELECT rid FROM _tail_excluded)" if has_tail else "true"
    if base is not None:  # its rid view was made when it was built or attached
        sources_l.append(
            f"SELECT *, (rid NOT IN (SELECT rid FROM {base}.excluded) AND {extra})"
            f" AS counted FROM {rid_view(base + '.recs')} WHERE ok"
        )
        sources_p.append(f"SELECT * FROM {base}.parts")
        # Base parts know whether the base counts them; the tail may exclude some more.
        sources_u.append(f"SELECT * FROM {base}.parts WHERE counted AND q IS NOT NULL AND {extra}")
    if has_tail:
        sources_l.append(f"SELECT *, {extra} AS counted FROM {rid_view('_tail_recs')} WHERE ok")
        sources_p.append("SELECT * FROM _tail_parts")
        sources_u.append(f"SELECT * FROM _tail_parts WHERE counted AND q IS NOT NULL AND {extra}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW _lines AS {' UNION ALL '.join(sources_l)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW _units AS {' UNION ALL '.join(sources_u)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW _allparts AS {' UNION ALL '.join(sources_p)}")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW _parts AS SELECT p.* FROM _allparts p"
        " SEMI JOIN (SELECT rid FROM _lines WHERE counted) c USING (rid)"
    )
    present = {r[0] for r in con.execute("DESCRIBE SELECT * FROM _lines").fetchall()}
    hidden = ", ".join(c for c in ("ok", "rid", "impossible") if c in present)
    con.execute(f"CREATE OR REPLACE TEMP VIEW all_records AS SELECT * EXCLUDE ({hidden}) FROM _lines")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW runs AS SELECT * EXCLUDE ({hidden}, counted) FROM _lines WHERE counted"
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW parts AS SELECT l.id, p.model, p.is_main, p.part_priced AS priced,"
        " p.input, p.output, p.cache_read, p.cache_creation, p.cost AS cost_usd"
        " FROM _parts p JOIN _lines l USING (rid)"
    )


def _empty(con: duckdb.DuckDBPyConnection) -> None:
    """No ledger yet: the same views with no rows, so every query works and returns nothing."""
    fd, name = tempfile.mkstemp(prefix="claude-run-empty-", suffix=".jsonl")
    os.close(fd)
    try:
        _load(con, [name], "_tail_recs", 0)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    con.execute("CREATE OR REPLACE TEMP TABLE _tail_excluded AS SELECT 0::BIGINT AS rid WHERE false")
    _parts(con, "_tail_recs", "_tail_parts", None)
    _define_views(con, None, True)


_EMPTY_PARTS = (
    "SELECT NULL::BIGINT AS rid, NULL::VARCHAR AS model, NULL::BOOLEAN AS part_priced,"
    " NULL::BOOLEAN AS is_main, NULL::BIGINT AS input, NULL::BIGINT AS output,"
    " NULL::BIGINT AS cache_read, NULL::BIGINT AS cache_creation, NULL::DECIMAL(18,12) AS cost,"
    " NULL::BOOLEAN AS impossible, NULL::BIGINT AS q, NULL::BOOLEAN AS counted WHERE false"
)


def _build(
    con: duckdb.DuckDBPyConnection,
    ledger: Path,
    target: Path | None,
    columns: tuple[str, ...] | None,
    files_out: list[tuple[str, int, int, int]] | None = None,
) -> index.Manifest:
    """Read every segment whole under the ledger's shared lock (no append lands mid-read) into the
    `b.*` tables of `target` (a new index file) or of memory. `columns`: a lean one-off read."""
    with store.reader_lock(ledger):
        snap = store.open_snapshot(ledger, lock=False)
        try:
            files = [str(v.path) for v in snap.segments]
            con.execute(f"ATTACH '{target}' AS b" if target is not None else "ATTACH ':memory:' AS b")
            if target is not None:
                os.chmod(target, 0o600)  # derived from a private ledger: as private
            _load(con, files, "b.recs", 0, columns)
            ident = identity.of_snapshot(snap)
            if files_out is not None:
                files_out[:] = [(str(v.path), v.dev, v.ino, v.size) for v in snap.segments]
            ranges = [(v.path, 0, v.size) for v in snap.segments]
        finally:
            store.close_snapshot(snap)
    fold.full_excluded(con, rid_view("b.recs"), "b.excluded")
    fold.side_table(con, rid_view("b.recs"), "b.side")
    part_figures = columns is None or "models" in columns
    if part_figures or (columns is not None and "m_names" in columns):
        # A one-off read without every part's figures (all but by-model reports) keeps the parts as a
        # view: scanning it unnests little, cheaper than writing a million rows.
        _parts(con, "b.recs", "b.parts", "b.excluded", view=not part_figures)
    else:
        con.execute(f"CREATE TABLE b.parts AS {_EMPTY_PARTS}")
    bad_count, future, impossible = _stats(con, "b.recs", "b.parts" if part_figures else None)
    bad = _bad_lines(ranges, store.MAX_LISTED_BAD) if bad_count else []
    rows_row = con.execute("SELECT count(*) FROM b.recs").fetchone()
    manifest = index.Manifest(
        file=target.name if target is not None else "",
        identity=ident,
        rows=int(rows_row[0]) if rows_row else 0,
        bad=tuple((str(p), n) for p, n in bad),
        bad_count=bad_count,
        future=future,
        impossible=impossible,
    )
    if target is not None:
        con.execute("CHECKPOINT b")
        con.execute("DETACH b")
        index.publish(target.parent, manifest)
        con.execute(f"ATTACH '{target}' AS b (READ_ONLY)")
    return manifest


def build_index(ledger: Path) -> bool:
    """Build the index now unless it is up to date (the `ledger index` command and the background
    builder). False when the directory is not writable or another process is building."""
    root = index.writable_dir(ledger)
    if root is None or not store.segments(ledger):
        return False
    with index.build_lock(root) as mine:
        if not mine:
            return False
        manifest = index.load_manifest(ledger)
        if manifest is not None:
            with store.snapshot(ledger) as snap:
                if index.still_valid(manifest, snap, ledger) and not _Tail(snap, manifest.marks).bytes:
                    return True
        con = connect()
        try:
            _build(con, ledger, root / index.new_file_name(), None)
        finally:
            con.close()
    return True


def _spawn_builder(ledger: Path) -> None:
    """Build the index in a detached process, so this query is answered from a lean read now."""
    import subprocess
    import sys

    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "claude_run.query.build", str(ledger)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )


def _warnings(
    manifest: index.Manifest, tail_bad: list[tuple[Path, int]], tail_bad_count: int, tail_future: int
) -> list[str]:
    stats = store.ReadStats()
    for name, lineno in manifest.bad:
        stats.bad(Path(name), lineno)
    stats.bad_count = manifest.bad_count
    for p, n in tail_bad:
        stats.bad(p, n)
    stats.bad_count += tail_bad_count
    stats.future_version = manifest.future + tail_future
    return stats.warnings()


#: A ledger smaller than this is indexed inline by the first query (about 20k records, well under a
#: second); a larger one is answered by a lean read while a detached process builds the index.
INLINE_BUILD_BYTES = 24 << 20


def open_engine(ledger: Path, *, persist: bool = True, columns: tuple[str, ...] | None = None) -> Engine:
    """The ledger (all segments) as an Engine.

    `columns`: what the caller reads (None: everything). Only used when there is no usable index and
    the ledger is large: then those columns alone are read, and the index is built in the
    background. `persist=False` never reads or writes the index."""
    con = connect()
    try:
        return _open(con, ledger, persist, columns)
    except BaseException:
        con.close()
        raise


def _open(
    con: duckdb.DuckDBPyConnection, ledger: Path, persist: bool, columns: tuple[str, ...] | None
) -> Engine:
    snap = store.open_snapshot(ledger)
    try:
        if not snap.segments:
            _empty(con)
            return Engine(con, [], "empty")
        root = index.writable_dir(ledger) if persist else None
        manifest = index.load_manifest(ledger) if root is not None else None
        tail = None
        if manifest is not None and root is not None and index.still_valid(manifest, snap, ledger):
            tail = _Tail(snap, manifest.marks)
            covered = sum(m.covered for m in manifest.marks)
            if tail.bytes > max(covered * TAIL_REBUILD_FRACTION, TAIL_REBUILD_MIN_BYTES):
                manifest = None
            else:
                try:
                    con.execute(f"ATTACH '{root / manifest.file}' AS b (READ_ONLY)")
                    with_rid(con, "b.recs", 0)
                except duckdb.Error:  # swept by a concurrent rebuild: build our own
                    manifest = None
        else:
            manifest = None
        files = [(str(v.path), v.dev, v.ino, v.size) for v in snap.segments]
        generation = snap.generation
        if manifest is None:
            size = sum(v.size for v in snap.segments)
            store.close_snapshot(snap)
            snap = store.Snapshot("", [])
            tail = None
            if root is not None and size <= INLINE_BUILD_BYTES:
                with index.build_lock(root) as mine:
                    target = root / index.new_file_name() if mine else None
                    manifest = _build(con, ledger, target, None, files)
                source = "built"
            else:
                lean = None if columns is None else tuple(columns)
                con.execute(f"SET memory_limit = '{ONE_OFF_MEMORY_LIMIT}'")
                manifest = _build(con, ledger, None, lean, files)
                if root is not None:
                    _spawn_builder(ledger)
                source = "memory"
        else:
            source = "index"
        tail_bad: list[tuple[Path, int]] = []
        tail_bad_count = tail_future = tail_impossible = 0
        if tail is not None and tail.bytes:
            name = tail.write(snap)
            try:
                _load(con, [name], "_tail_recs", manifest.rows)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(name)
            fold.tail_excluded(con, rid_view("b.recs"), "b.side", rid_view("_tail_recs"), "_tail_excluded")
            _parts(con, "_tail_recs", "_tail_parts", "_tail_excluded")
            tail_bad_count, tail_future, tail_impossible = _stats(con, "_tail_recs", "_tail_parts")
            if tail_bad_count:
                tail_bad = _bad_lines(tail.ranges, store.MAX_LISTED_BAD)
            _define_views(con, "b", True)
            source = "index+tail"
        else:
            _define_views(con, "b", False)
        warnings = _warnings(manifest, tail_bad, tail_bad_count, tail_future)
        impossible = manifest.impossible + tail_impossible
        if impossible:
            warnings.append(
                f"{impossible} record(s) hold a cost or token count that cannot be true (negative, not"
                " finite, or absurd): those figures are left out of every total;"
                " run `claude-run ledger verify`"
            )
        return Engine(con, warnings, source, files, manifest.generation or generation)
    finally:
        store.close_snapshot(snap)


@contextlib.contextmanager
def opened(ledger: Path, *, persist: bool = True, columns: tuple[str, ...] | None = None) -> Iterator[Engine]:
    eng = open_engine(ledger, persist=persist, columns=columns)
    try:
        yield eng
    finally:
        eng.close()


@contextlib.contextmanager
def using(
    source: Path | Engine, *, persist: bool = True, columns: tuple[str, ...] | None = None
) -> Iterator[Engine]:
    """The caller's open engine as it is (a dashboard keeps one), or one opened for this query."""
    if isinstance(source, Engine):
        yield source
        return
    with opened(source, persist=persist, columns=columns) as eng:
        yield eng
