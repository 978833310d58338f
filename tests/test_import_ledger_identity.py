"""`ledger import` against a ledger that changed under its state: deleted, restored, rotated, merged.

The state beside the ledger (`<ledger>.import*.json`) is trusted only while the ledger is the one it
was written against; otherwise the importer compares every session with what the ledger holds:
what is missing comes back, what is there is not imported twice.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from claude_run.ledger import identity, store
from claude_run.ledger.maintenance import merge
from claude_run.ledger.rotation import rotate_locked
from claude_run.transcripts.importer import run_import
from support.import_lines import assistant, user, write


def sid(i: int) -> str:
    return f"{i:08d}-2222-4333-8444-555555555555"


def add_session(root: Path, i: int, messages: int = 2) -> None:
    lines = [user(sid=sid(i))]
    lines += [assistant(f"m{i}-{k}", f"r{i}-{k}", out=3 + k, sid=sid(i)) for k in range(messages)]
    write(root, lines, sid=sid(i))


def grow_session(root: Path, i: int, new: int) -> None:
    lines = [assistant(f"m{i}-x{k}", f"r{i}-x{k}", out=7, sid=sid(i)) for k in range(new)]
    write(root, lines, sid=sid(i), mode="a")


def records(ledger: Path) -> list[dict[str, Any]]:
    return [dict(r) for r in store.iter_records(ledger)]


def live(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The record that counts per session; fails on two live records of one session."""
    superseded = {r["supersedes"] for r in recs if r.get("supersedes")}
    out: dict[str, dict[str, Any]] = {}
    for r in recs:
        if r["id"] not in superseded:
            assert r["session_id"] not in out, f"two live records for {r['session_id']}"
            out[r["session_id"]] = r
    return out


def truth(history: Path, tmp_path: Path) -> dict[str, dict[str, int]]:
    """Per session the tokens a first import into an empty ledger finds."""
    fresh = tmp_path / "truth" / "ledger.jsonl"
    run_import(fresh, [history])
    return {s: r["tokens"] for s, r in live(records(fresh)).items()}


def tokens(ledger: Path) -> dict[str, dict[str, int]]:
    return {s: r["tokens"] for s, r in live(records(ledger)).items() if r["mode"] == "imported"}


def test_deleted_ledger_gets_every_session_back(tmp_path: Path) -> None:
    history, ledger = tmp_path / "h", tmp_path / "l" / "ledger.jsonl"
    for i in range(20):
        add_session(history, i)
    assert len(run_import(ledger, [history]).records) == 20
    ledger.unlink()
    assert len(run_import(ledger, [history]).records) == 20
    assert tokens(ledger) == truth(history, tmp_path)
    assert run_import(ledger, [history]).records == []


@pytest.mark.parametrize("how", ["copy-over", "rename-over"])
def test_restored_copy_gets_every_session_back_each_once(tmp_path: Path, how: str) -> None:
    history, ledger = tmp_path / "h", tmp_path / "l" / "ledger.jsonl"
    for i in range(20):
        add_session(history, i)
    run_import(ledger, [history])
    backup = tmp_path / "backup.jsonl"
    shutil.copyfile(ledger, backup)
    for i in range(20, 25):
        add_session(history, i)
    for i in (3, 7):
        grow_session(history, i, 2)
    assert len(run_import(ledger, [history]).records) == 7
    if how == "copy-over":  # same inode, older bytes
        shutil.copyfile(backup, ledger)
    else:  # another file renamed into place
        os.replace(backup, ledger)
    again = run_import(ledger, [history])
    # The 5 sessions the copy lacks, and the 2 that grew since it was made; nothing else.
    assert sorted(r["session_id"] for r in again.records) == sorted([sid(i) for i in (3, 7, *range(20, 25))])
    assert tokens(ledger) == truth(history, tmp_path)
    recs = records(ledger)
    assert len(recs) == 27
    assert run_import(ledger, [history]).records == []


def test_rotated_and_merged_ledgers_import_nothing_twice(tmp_path: Path) -> None:
    history, ledger = tmp_path / "h", tmp_path / "l" / "ledger.jsonl"
    for i in range(6):
        add_session(history, i)
    run_import(ledger, [history])
    with store.locked(ledger):
        rotate_locked(ledger)
    ci = tmp_path / "ci.jsonl"
    ci.write_bytes(store.encode({"v": 1, "id": "01CIRUN", "mode": "non-interactive", "session_id": "other"}))
    merge(ledger, [ci])
    assert run_import(ledger, [history]).records == []
    grow_session(history, 2, 1)
    assert [r["session_id"] for r in run_import(ledger, [history]).records] == [sid(2)]
    assert tokens(ledger) == truth(history, tmp_path)


def test_ledger_replaced_by_another_gets_what_it_lacks(tmp_path: Path) -> None:
    history, ledger = tmp_path / "h", tmp_path / "l" / "ledger.jsonl"
    for i in range(4):
        add_session(history, i)
    run_import(ledger, [history])
    # Another ledger (a CI artifact, a colleague's) that knows one of the sessions as a tracked run.
    other = tmp_path / "other.jsonl"
    other.write_bytes(store.encode({"v": 1, "id": "01RUN", "mode": "interactive", "session_id": sid(1)}))
    os.replace(other, ledger)
    result = run_import(ledger, [history])
    assert sorted(r["session_id"] for r in result.records) == [sid(0), sid(2), sid(3)]
    assert result.sessions_tracked == [sid(1)]


def test_crash_between_append_and_state_save_imports_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_run.transcripts.import_state import ImportState

    history, ledger = tmp_path / "h", tmp_path / "l" / "ledger.jsonl"
    for i in range(3):
        add_session(history, i)
    run_import(ledger, [history])
    grow_session(history, 1, 1)
    add_session(history, 9)

    def crash(self: ImportState) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(ImportState, "save", crash)
        with pytest.raises(KeyboardInterrupt):
            run_import(ledger, [history])
    assert len(records(ledger)) == 5
    assert run_import(ledger, [history]).records == []
    assert len(records(ledger)) == 5
    assert tokens(ledger) == truth(history, tmp_path)


def test_an_old_state_without_a_ledger_identity_is_reconciled(tmp_path: Path) -> None:
    history, ledger = tmp_path / "h", tmp_path / "l" / "ledger.jsonl"
    add_session(history, 0)
    run_import(ledger, [history])
    index = ledger.with_name(ledger.name + ".import.json")
    raw = json.loads(index.read_text())
    del raw["ledger"]
    index.write_text(json.dumps(raw))
    ledger.write_text("")
    assert [r["session_id"] for r in run_import(ledger, [history]).records] == [sid(0)]


# -- the identity itself ---------------------------------------------------------------------------
def _line(n: int) -> bytes:
    return store.encode({"v": 1, "id": f"01ID{n:04d}", "mode": "non-interactive"})


def test_identity_holds_through_appends_only(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    missing = identity.current(ledger)
    store.append_lines(ledger, [_line(1)])
    assert identity.holds(missing, ledger)  # created by an append: growth
    ident = identity.current(ledger)
    for n in range(2, 2000):
        store.append_lines(ledger, [_line(n)], fsync=False)
    assert identity.holds(ident, ledger)
    assert identity.Identity.from_json(json.loads(json.dumps(ident.to_json()))) == ident


CHANGES = ["delete", "truncate", "same-size-rewrite", "rename-over", "rotate", "repair"]


@pytest.mark.parametrize("change", CHANGES)
def test_identity_fails_on_anything_but_appends(tmp_path: Path, change: str) -> None:
    ledger = tmp_path / "ledger.jsonl"
    for n in range(50):
        store.append_lines(ledger, [_line(n)], fsync=False)
    ident = identity.current(ledger)
    data = ledger.read_bytes()
    if change == "delete":
        ledger.unlink()
    elif change == "truncate":
        with open(ledger, "r+b") as fh:
            fh.truncate(len(data) // 2)
    elif change == "same-size-rewrite":
        ledger.write_bytes(data.replace(b"01ID0049", b"01ID0099"))
    elif change == "rename-over":
        other = tmp_path / "other"
        other.write_bytes(data)
        os.replace(other, ledger)
    elif change == "rotate":
        with store.locked(ledger):
            rotate_locked(ledger)
    else:
        from claude_run.ledger.verify import repair

        with open(ledger, "ab") as fh:
            fh.write(b"garbage\n")
        repair(ledger)
    assert not identity.holds(ident, ledger)


def test_identity_from_malformed_json_is_none() -> None:
    for raw in (None, [], {"gen": 1}, {"gen": "0", "marks": [[1]]}, {"gen": "0"}):
        assert identity.Identity.from_json(raw) is None


def dated_session(root: Path, i: int, day: int) -> None:
    ts = f"2026-10-{day:02d}T10:00:00.000Z"
    write(root, [user(sid=sid(i), ts=ts), assistant(f"m{i}", f"r{i}", sid=sid(i), ts=ts)], sid=sid(i))


def test_pruned_sessions_stay_out_but_come_back_when_they_grow(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from claude_run.ledger.maintenance import prune

    history, ledger = tmp_path / "h", tmp_path / "l" / "ledger.jsonl"
    for i, day in enumerate((1, 2, 20, 21)):
        dated_session(history, i, day)
    run_import(ledger, [history])
    prune(ledger, datetime(2026, 10, 10, tzinfo=timezone.utc))
    assert sorted(tokens(ledger)) == [sid(2), sid(3)]
    assert run_import(ledger, [history]).records == []  # not brought back by the next import
    ledger.unlink()  # a deleted ledger still gets back what was not pruned
    assert sorted(r["session_id"] for r in run_import(ledger, [history]).records) == [sid(2), sid(3)]
    grow_session(history, 0, 1)  # a pruned session used again is imported again
    assert [r["session_id"] for r in run_import(ledger, [history]).records] == [sid(0)]


def test_retention_counts_as_pruning(tmp_path: Path) -> None:
    from claude_run.ledger.maintenance import pruned_before
    from claude_run.ledger.rotation import apply_retention_locked, stamp_time

    history, ledger = tmp_path / "h", tmp_path / "l" / "ledger.jsonl"
    dated_session(history, 0, 1)
    run_import(ledger, [history])
    with store.locked(ledger):
        seg = rotate_locked(ledger, now=datetime_ts(2026, 10, 5))
        assert seg is not None
        apply_retention_locked(ledger, 1.0, now=datetime_ts(2026, 10, 9))
    assert pruned_before(ledger) == stamp_time(store.segment_stamp(seg) or "")
    dated_session(history, 1, 7)
    assert [r["session_id"] for r in run_import(ledger, [history]).records] == [sid(1)]


def datetime_ts(year: int, month: int, day: int) -> float:
    from datetime import datetime, timezone

    return datetime(year, month, day, tzinfo=timezone.utc).timestamp()
