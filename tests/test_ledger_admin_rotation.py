"""Rotation at append time, retention, and the generation that tells derived files they are stale."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from claude_run.errors import UsageError
from claude_run.ledger import store
from claude_run.ledger.maintenance import merge, prune, reset
from claude_run.ledger.rotation import (
    DEFAULT_MAX_BYTES,
    RotationPolicy,
    apply_retention_locked,
    parse_size,
    rotate_locked,
)
from claude_run.ledger.verify import repair
from support.ledger_admin import ids_in, make_record, run_cli, write_lines

DAY = 86400.0


def test_policy_from_env_and_sizes() -> None:
    assert RotationPolicy.from_env({}) == RotationPolicy(DEFAULT_MAX_BYTES, None)
    assert DEFAULT_MAX_BYTES == 50 * 1024 * 1024
    env = {"CLAUDE_RUN_LEDGER_MAX_BYTES": "2M", "CLAUDE_RUN_LEDGER_KEEP_DAYS": "30"}
    assert RotationPolicy.from_env(env) == RotationPolicy(2 * 1024 * 1024, 30.0)
    assert [parse_size(s) for s in ("0", "123", "4k", "5MiB", "1GB")] == [0, 123, 4096, 5 << 20, 1 << 30]
    with pytest.raises(UsageError):
        parse_size("lots")
    # A typo in a tuning variable must not break appends: fall back to defaults and say why.
    policy, problems = RotationPolicy.from_env_checked(
        {"CLAUDE_RUN_LEDGER_MAX_BYTES": "big", "CLAUDE_RUN_LEDGER_KEEP_DAYS": "-3"}
    )
    assert policy == RotationPolicy() and len(problems) == 2


def test_append_rolls_to_dated_segments_past_the_size(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    policy = RotationPolicy(max_bytes=1000)
    for n in range(30):
        store.append(ledger, make_record(f"r{n:02d}"), policy=policy)
    segs = store.segments(ledger)
    assert len(segs) > 3 and segs[-1] == ledger
    assert all(
        (s.name.startswith("ledger.2") and s.name.endswith("Z.jsonl")) or "-" in s.name for s in segs[:-1]
    )
    assert all(s.stat().st_size <= 1000 for s in segs)
    assert ids_in(ledger) == [f"r{n:02d}" for n in range(30)]  # every command reads all segments, in order


def test_rotation_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("CLAUDE_RUN_LEDGER_MAX_BYTES", "600")
    for n in range(10):
        store.append(ledger, make_record(f"r{n}"))
    assert len(store.segments(ledger)) > 2
    monkeypatch.setenv("CLAUDE_RUN_LEDGER_MAX_BYTES", "0")  # 0 disables
    before = len(store.segments(ledger))
    for n in range(10):
        store.append(ledger, make_record(f"s{n}"))
    assert len(store.segments(ledger)) == before


def test_same_millisecond_rotations_get_distinct_ordered_names(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    now = time.time()
    for n in range(12):
        store.append(ledger, make_record(f"r{n}"), policy=RotationPolicy(0))
        with store.locked(ledger):
            rotate_locked(ledger, now=now)
    assert ids_in(ledger) == [f"r{n}" for n in range(12)]  # "-10" sorts after "-9"


def test_retention_deletes_segments_closed_before_keep_days(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    now = time.time()
    for n, age in enumerate((40, 20, 5)):
        store.append(ledger, make_record(f"old{n}"), policy=RotationPolicy(0))
        with store.locked(ledger):
            rotate_locked(ledger, now=now - age * DAY)
    store.append(ledger, make_record("live"), policy=RotationPolicy(0))
    with store.locked(ledger):
        removed = apply_retention_locked(ledger, 10, now=now)
    assert len(removed) == 2
    assert ids_in(ledger) == ["old2", "live"]


def test_retention_on_rotation_keeps_supersede_chains_consistent(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    now = time.time()
    # An out-of-order merge can leave a successor in an older segment than the record it replaces.
    store.append(ledger, make_record("new", supersedes="old"), policy=RotationPolicy(0))
    with store.locked(ledger):
        rotate_locked(ledger, now=now - 30 * DAY)
    store.append(ledger, make_record("old"), policy=RotationPolicy(0))
    store.append(ledger, make_record("other"), policy=RotationPolicy(0))
    with store.locked(ledger):
        apply_retention_locked(ledger, 10, now=now)
    # Dropping "new" but keeping "old" would resurrect "old" in reports; both go.
    assert ids_in(ledger) == ["other"]


def test_keep_days_applies_at_append_time(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    store.append(ledger, make_record("ancient"), policy=RotationPolicy(0))
    with store.locked(ledger):
        rotate_locked(ledger, now=time.time() - 100 * DAY)
    policy = RotationPolicy(max_bytes=400, keep_days=50)
    for n in range(3):
        store.append(ledger, make_record(f"r{n}"), policy=policy)
    assert "ancient" not in ids_in(ledger)
    assert ids_in(ledger) == ["r0", "r1", "r2"]


def test_every_rewrite_changes_the_generation_and_appends_do_not(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    seen = [store.generation(ledger)]
    assert seen == ["0"]

    def changed() -> bool:
        gen = store.generation(ledger)
        fresh = gen not in seen
        seen.append(gen)
        return fresh

    for n in range(3):
        store.append(ledger, make_record(f"r{n}", started_at=f"2026-0{n + 1}-01T00:00:00Z"))
    assert not changed()
    with store.locked(ledger):
        rotate_locked(ledger)
    assert changed()
    other = tmp_path / "other.jsonl"
    write_lines(other, [make_record("m1")])
    merge(ledger, [other])
    assert changed()
    merge(ledger, [other])  # nothing new: nothing rewritten
    assert not changed()
    with open(ledger, "ab") as fh:
        fh.write(b"junk\n")
    repair(ledger)
    assert changed()
    import datetime as dt

    prune(ledger, dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc))
    assert changed()
    reset(ledger)
    assert changed()
    store.generation_path(ledger).unlink()  # even if the file is lost, the next token is new
    reset(ledger)
    assert changed()


def test_rotate_command(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a")])
    out = run_cli("ledger", "rotate", "--ledger", str(ledger))
    assert out.returncode == 0 and "not rotated" in out.stdout
    out = run_cli("ledger", "rotate", "--ledger", str(ledger), "--max-bytes", "10")
    assert out.returncode == 0 and "rotated" in out.stdout
    assert len(store.segments(ledger)) == 1 and not ledger.exists()
    assert ids_in(ledger) == ["a"]
    out = run_cli("ledger", "rotate", "--ledger", str(ledger), "--max-bytes", "huge")
    assert out.returncode == 2 and "invalid size" in out.stderr
