"""Which records count — the README's rule, in SQL, the only implementation of it.

1. An id counts once: when the same id is on several lines (ledgers joined with `cat`, a merge of
   overlapping copies), its first line counts and the others are duplicates.
2. A record that a later record names in `supersedes` is replaced. "Later" is id order: ids are
   ULIDs, which sort by creation time on any machine, so the rule gives the same answer for a
   ledger merged from several machines in any order. A record cannot replace itself, a name of an
   id that is not in the ledger replaces nothing, and of a cycle the member with the greatest id
   stays. Every line names, counted or not (a replaced record still replaces its own target).
3. A session counts once: an `imported` record does not count when a record of any other mode has
   the same `session_id` (a tracked run, the telemetry service or the SessionEnd hook recorded it
   with its context). Which of the two came first does not matter.

Exclusion only grows when lines are added, so an index can keep the excluded rows of what it
covers and add those that new lines exclude (`tail_excluded`), computed over the new lines and
only the covered rows they can touch.
"""

from __future__ import annotations

import duckdb

from ..record.schema import IMPORTED


def _excluded_sql(keys: str) -> str:
    """rids of `keys` (rid, id, supersedes, mode, session_id; only record lines) that do not count."""
    # Ids on several lines are found by their hashes first (grouping a million numbers is cheaper than
    # a million strings), then checked by the ids themselves; the few naming lines are joined alone.
    return f"""
        SELECT k.rid FROM {keys} k
        JOIN (SELECT id, min(rid) AS first FROM {keys}
              WHERE hash(id) IN (SELECT hash(id) FROM {keys} GROUP BY 1 HAVING count(*) > 1)
              GROUP BY id HAVING count(*) > 1) d
          ON k.id = d.id AND k.rid <> d.first
        UNION
        SELECT t.rid FROM (SELECT id, supersedes FROM {keys} WHERE supersedes IS NOT NULL) q
        JOIN {keys} t ON t.id = q.supersedes AND q.id > t.id
        UNION
        SELECT i.rid FROM {keys} i
        WHERE i.mode = '{IMPORTED}' AND i.session_id IN (
            SELECT session_id FROM {keys}
            WHERE mode IS DISTINCT FROM '{IMPORTED}' AND session_id IS NOT NULL)
    """


def full_excluded(con: duckdb.DuckDBPyConnection, recs: str, out: str) -> None:
    """Create table `out`(rid) of the rows of `recs` that the rule leaves out."""
    keys = f"SELECT rid, id, supersedes, mode, session_id FROM {recs} WHERE ok"
    con.execute(f"CREATE OR REPLACE TEMP VIEW _keys AS {keys}")
    con.execute(f"CREATE OR REPLACE TABLE {out} AS {_excluded_sql('_keys')}")


def side_table(con: duckdb.DuckDBPyConnection, recs: str, out: str) -> None:
    """The few rows a later line can affect beyond its own id: those naming a `supersedes` and
    the imported ones (kept apart so a tail is folded without scanning every indexed row)."""
    con.execute(
        f"""CREATE OR REPLACE TABLE {out} AS SELECT rid, id, supersedes, mode, session_id FROM {recs}
            WHERE ok AND (supersedes IS NOT NULL OR mode = '{IMPORTED}')"""
    )


def tail_excluded(con: duckdb.DuckDBPyConnection, base: str, side: str, tail: str, out: str) -> None:
    """Create temp table `out`(rid): rows of `base` or `tail` that the lines of `tail` exclude beyond
    what `base` already excludes of itself. Touches only the base rows the tail can affect: those
    with its ids or the ids it names (found through the ids' order), and from `side` those naming
    its ids or imported in its sessions; all base rows only when the tail holds imports."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _tk AS
            SELECT rid, id, supersedes, mode, session_id FROM {tail} WHERE ok"""
    )
    ids = [
        r[0]
        for r in con.execute(
            "SELECT id FROM _tk UNION SELECT supersedes FROM _tk WHERE supersedes IS NOT NULL"
        ).fetchall()
    ]
    near = [
        f"SELECT rid, id, supersedes, mode, session_id FROM {base} WHERE ok AND id IN (SELECT unnest($ids))",
        f"SELECT * FROM {side} WHERE supersedes IN (SELECT id FROM _tk)",
        f"""SELECT * FROM {side} WHERE mode = '{IMPORTED}' AND session_id IN (
                SELECT session_id FROM _tk WHERE mode IS DISTINCT FROM '{IMPORTED}')""",
    ]
    if con.execute(f"SELECT count(*) FROM _tk WHERE mode = '{IMPORTED}'").fetchone() != (0,):
        near.append(
            f"""SELECT rid, id, supersedes, mode, session_id FROM {base}
                WHERE ok AND mode IS DISTINCT FROM '{IMPORTED}' AND session_id IN (
                    SELECT session_id FROM _tk WHERE mode = '{IMPORTED}')"""
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _near AS {' UNION '.join(near)}", {"ids": ids})
    con.execute("CREATE OR REPLACE TEMP VIEW _both AS SELECT * FROM _near UNION ALL SELECT * FROM _tk")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS {_excluded_sql('_both')}")
