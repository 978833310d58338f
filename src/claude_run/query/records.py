"""Whole records: `ledger list`, `show`, `export` (JSON Lines, JSON, CSV, Parquet) and `ledger sql`.

The engine decides which records are selected (the fold, the filters); the records themselves are
then read from the ledger as written, so an export carries every field, known or not. The counted
line of an id is its first, so "the first line with this id" is the record the engine meant.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo
from pathlib import Path
from typing import Any

import orjson

from ..errors import ClaudeRunError, UsageError
from ..ledger import store
from ..record.schema import Record
from .engine import Engine, opened
from .filters import Filters
from .summary import where_sql


class RecordNotFound(ClaudeRunError):
    exit_code = 1


def record_where(f: Filters, tz: tzinfo, *, fold: bool = True) -> tuple[str, list[Any]]:
    """WHERE over `l` (= _lines) for whole records: a record matches `--model` when any model it
    used does. Without `fold`, records the fold leaves out match too."""
    # A time filter leaves out records without a start by itself; without one, they are listed too.
    where, params = where_sql(f, tz, model_view=False, fold=fold, dated=False)
    if f.model is not None:
        where += (
            " AND (contains(lower(l.model), ?)"
            " OR l.rid IN (SELECT rid FROM _allparts WHERE contains(lower(model), ?)))"
        )
        params += [f.model, f.model]
    return where, params


def _reverse_lines(path: Path, block: int = 1 << 20) -> Iterator[bytes]:
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with fh:
        pos = fh.seek(0, 2)
        carry = b""
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            data = fh.read(pos - start) + carry
            pos = start
            lines = data.split(b"\n")
            carry = lines[0] if pos > 0 else b""
            for line in reversed(lines if pos == 0 else lines[1:]):
                if line.strip():
                    yield line
        if carry.strip():
            yield carry


def fetch(ledger: Path, wanted: dict[str, int]) -> dict[str, Record]:
    """The first line of each id in `wanted` (id → how many lines carry it), reading from the end
    (the records asked for are usually recent): an id is settled once all its copies were seen."""
    out: dict[str, Record] = {}
    left = dict(wanted)
    for seg in reversed(store.segments(ledger)):
        if not left:
            break
        store.refuse_symlink(seg)
        for line in _reverse_lines(seg):
            rec = store.parse_record(line)
            if rec is None or rec["id"] not in left:
                continue
            rid = rec["id"]
            out[rid] = rec  # reading backwards: the last one kept is the first line
            left[rid] -= 1
            if left[rid] <= 0:
                del left[rid]
                if not left:
                    break
    return out


def latest(
    ledger: Path, n: int = 20, filters: Filters | None = None, tz: tzinfo | None = None
) -> list[Record]:
    """The last `n` counted records (ledger order, newest last) matching the filters."""
    from .timeparse import resolve_tz

    if n <= 0:
        return []
    with opened(ledger) as eng:
        return _latest(eng, ledger, n, filters or Filters(), tz or resolve_tz(None))


def _latest(eng: Engine, ledger: Path, n: int, f: Filters, tz: tzinfo) -> list[Record]:
    where, params = record_where(f, tz)
    ids = [
        str(r[0])
        for r in eng.con.execute(
            f"SELECT l.id FROM _lines l WHERE {where} ORDER BY l.rid DESC LIMIT {int(n)}", params
        ).fetchall()
    ]
    # How many lines carry each of those ids (a duplicated id is settled at its first line).
    copies = dict(
        eng.con.execute(
            "SELECT id, count(*) FROM _lines WHERE id IN (SELECT unnest(?)) GROUP BY id", [ids]
        ).fetchall()
    )
    got = fetch(ledger, {i: int(copies.get(i, 1)) for i in ids})
    return [got[i] for i in reversed(ids) if i in got]


def find(ledger: Path, prefix: str) -> Record:
    """The record whose id is `prefix`, else the one whose id starts with it (case-insensitive).
    RecordNotFound (exit 1) when none, UsageError (exit 2) when the prefix names several."""
    want = prefix.strip().upper()
    if not want or not all(c.isalnum() or c in "-_" for c in want):
        raise UsageError(f"bad record id {prefix!r}")
    with opened(ledger) as eng:
        rows = eng.con.execute(
            "SELECT id, count(*) FROM _lines WHERE starts_with(upper(id), ?) GROUP BY id ORDER BY id",
            [want],
        ).fetchall()
    exact = [r for r in rows if str(r[0]).upper() == want]
    if exact:
        rows = exact
    if not rows:
        raise RecordNotFound(f"no record with an id starting with {prefix!r}")
    if len(rows) > 1:
        shown = ", ".join(str(r[0]) for r in rows[:5])
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        raise UsageError(f"id prefix {prefix!r} is ambiguous: {shown}{more}")
    rid, copies = str(rows[0][0]), int(rows[0][1])
    got = fetch(ledger, {rid: copies})
    if rid not in got:
        raise RecordNotFound(f"no record with an id starting with {prefix!r}")
    return got[rid]


def iter_selected(
    ledger: Path,
    filters: Filters | None = None,
    tz: tzinfo | None = None,
    *,
    fold: bool = True,
    warnings: list[str] | None = None,
) -> Iterator[Record]:
    """Records matching the filters, in ledger order; with `fold`, only those that count (each id
    once); without, every line of a matching id. The engine's warnings go to `warnings`."""
    from .timeparse import resolve_tz

    filters = filters or Filters()
    tz = tz or resolve_tz(None)
    with opened(ledger) as eng:
        if warnings is not None:
            warnings += eng.warnings
        where, params = record_where(filters, tz, fold=fold)
        ids = {
            str(r[0])
            for r in eng.con.execute(f"SELECT DISTINCT l.id FROM _lines l WHERE {where}", params).fetchall()
        }
    if not ids:
        return
    emitted: set[str] = set()
    for rec in store.iter_records(ledger):
        rid = rec["id"]
        if rid not in ids:
            continue
        if fold:
            if rid in emitted:
                continue
            emitted.add(rid)
        yield rec


# -- ledger sql ----------------------------------------------------------------------------------
SQL_FORMATS = ("table", "json", "csv")


def run_sql(ledger: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]], list[str]]:
    """Columns, rows and warnings of a user's query over the documented views."""
    import duckdb

    with opened(ledger) as eng:
        # The user's SQL reads the views and nothing else: no file is read or written (a COPY over
        # the ledger, say), and the setting cannot be turned back on.
        eng.con.execute("SET enable_external_access = false")
        eng.con.execute("SET lock_configuration = true")
        try:
            cur = eng.con.execute(sql)
            rows = cur.fetchall()
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"SQL error: {first}") from None
        cols = [d[0] for d in cur.description or []]
        return cols, rows, list(eng.warnings)


def _plain(value: Any) -> Any:
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value) if value == value.to_integral_value() or abs(value) < 1e15 else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def render_sql(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> bytes:
    if fmt == "json":
        return (
            orjson.dumps(
                [dict(zip(cols, map(_plain, r), strict=False)) for r in rows], option=orjson.OPT_INDENT_2
            )
            + b"\n"
        )
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow(
                [
                    ""
                    if v is None
                    else orjson.dumps(_plain(v)).decode()
                    if isinstance(v, (dict, list))
                    else _plain(v)
                    for v in r
                ]
            )
        return buf.getvalue().encode()
    from tabulate import tabulate

    from ..text import terminal

    body = [[terminal("" if v is None else str(_plain(v))) for v in r] for r in rows]
    return (tabulate(body, headers=cols, tablefmt="simple", disable_numparse=True) + "\n").encode()


# -- parquet -------------------------------------------------------------------------------------
def export_parquet(ledger: Path, filters: Filters, tz: tzinfo, target: Path, *, fold: bool = True) -> int:
    """The selected records as one Parquet file: the `runs` columns, plus `parts` (a list of the
    record's model parts) — written to a temp file and renamed into place."""
    import contextlib
    import os
    import tempfile

    with opened(ledger) as eng:
        where, params = record_where(filters, tz, fold=fold)
        hidden = "ok, rid, impossible, counted"
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            count = eng.con.execute(f"SELECT count(*) FROM _lines l WHERE {where}", params).fetchone()
            eng.con.execute(
                f"""
                COPY (
                    SELECT l.* EXCLUDE ({hidden}),
                           (SELECT list(struct_pack(
                                   model := p.model, main := p.is_main, priced := p.part_priced,
                                   input := p.input, output := p.output, cache_read := p.cache_read,
                                   cache_creation := p.cache_creation, cost_usd := p.cost) ORDER BY p.model)
                            FROM _allparts p WHERE p.rid = l.rid) AS parts
                    FROM _lines l WHERE {where} ORDER BY l.rid
                ) TO '{tmp}' (FORMAT parquet)
                """,
                params,
            )
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return int(count[0]) if count else 0
