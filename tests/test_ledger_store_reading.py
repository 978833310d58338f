"""Readers never crash on bad input, and reading streams (memory flat in the ledger size)."""

from __future__ import annotations

import os
import stat
import sys
import tracemalloc
from pathlib import Path

import orjson
import pytest

from claude_run.errors import LedgerError
from claude_run.ledger import store
from claude_run.ledger.verify import verify
from support.ledger_admin import make_record, run_cli, write_lines


def _read(ledger: Path) -> tuple[list[str], store.ReadStats]:
    stats = store.ReadStats()
    return [rec["id"] for rec in store.iter_records(ledger, stats)], stats


def test_missing_ledger_reads_as_empty_and_creates_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "nowhere" / "ledger.jsonl"
    assert _read(ledger)[0] == []
    assert not ledger.parent.exists()
    assert verify(ledger).ok


def test_empty_and_blank_files(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(b"")
    assert _read(ledger)[0] == []
    ledger.write_bytes(b"\n\n  \n")
    ids, stats = _read(ledger)
    assert ids == [] and stats.bad_lines == []


def test_binary_garbage_is_skipped_and_counted(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a")])
    with open(ledger, "ab") as fh:
        fh.write(os.urandom(5000).replace(b"\n", b"") + b'\n\x00\xff\xfe{\n[1,2]\n"str"\n{"v":"1","id":3}\n')
    write_lines(ledger, [make_record("b")])
    ids, stats = _read(ledger)
    assert ids == ["a", "b"]
    assert [n for _, n in stats.bad_lines] == [2, 3, 4, 5, 6]
    assert len(verify(ledger).bad) == 5


def test_future_schema_version_reads_known_fields_and_warns_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    future = make_record("f1", v=99, tokens=["a new shape"], brand_new={"x": 1})
    write_lines(ledger, [make_record("a"), future, make_record("f2", v=7)])
    stats = store.ReadStats()
    recs = list(store.iter_records(ledger, stats))
    assert [r["id"] for r in recs] == ["a", "f1", "f2"]
    assert recs[1]["tokens"] == {"input": 0, "output": 0, "cache_read": 0, "cache_creation": 0}
    assert recs[1]["model"] == "claude-sonnet-4-5"
    warnings = stats.warnings()
    assert len(warnings) == 1 and "2 record(s) come from a newer claude-run" in warnings[0]
    assert verify(ledger).ok and verify(ledger).future_version == 2


def test_huge_lines(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    big = make_record("big", pad="q" * 10_000_000)
    write_lines(ledger, [make_record("a"), big, make_record("b")])
    with open(ledger, "ab") as fh:
        fh.write(b"x" * 10_000_000 + b"\n")  # a 10 MB line that is not JSON
    write_lines(ledger, [make_record("c")])
    ids, stats = _read(ledger)
    assert ids == ["a", "big", "b", "c"]
    assert [n for _, n in stats.bad_lines] == [4]


def test_iter_raw_splits_exactly_at_chunk_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "f"
    lines = [b"a" * n for n in (0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 5, 3 << 20)]
    path.write_bytes(b"\n".join(lines) + b"\ntail")
    with open(path, "rb") as fh:
        got = list(store.iter_raw(fh))
    assert [line for _, line, _ in got] == [*lines, b"tail"]
    assert [t for _, _, t in got] == [True] * len(lines) + [False]
    offsets = [o for o, _, _ in got]
    assert offsets[1:] == [sum(len(x) + 1 for x in lines[:i]) for i in range(1, len(lines) + 1)]


def test_a_snapshot_ignores_appends_made_after_it(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    store.append(ledger, make_record("a"))
    records = store.iter_records(ledger)
    first = next(records)
    store.append(ledger, make_record("b"))
    assert [first["id"], *(r["id"] for r in records)] == ["a"]


def _write_big(path: Path, count: int) -> None:
    with open(path, "wb") as fh:
        for n in range(count):
            fh.write(orjson.dumps(make_record(f"id{n:08d}", project=f"p{n % 97}")) + b"\n")


@pytest.mark.slow
def test_reading_is_streaming(tmp_path: Path) -> None:
    small, large = tmp_path / "small" / "ledger.jsonl", tmp_path / "large" / "ledger.jsonl"
    small.parent.mkdir()
    large.parent.mkdir()
    _write_big(small, 20_000)
    _write_big(large, 200_000)

    def peak(ledger: Path) -> tuple[int, int]:
        tracemalloc.start()
        try:
            count = sum(1 for _ in store.iter_records(ledger))
            return count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    n_small, peak_small = peak(small)
    n_large, peak_large = peak(large)
    assert (n_small, n_large) == (20_000, 200_000)
    # Ten times the records; a list-building reader would need ~10x the memory. Allow 1.5x for noise.
    print(f"tracemalloc peak: {n_small} records {peak_small} B, {n_large} records {peak_large} B")
    assert peak_large < 1.5 * peak_small, (peak_small, peak_large)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_files_are_0600_and_directory_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ledger = tmp_path / "new" / "dir" / "ledger.jsonl"
        store.append(ledger, make_record("a"))
        store.append(ledger, make_record("b"))
        from claude_run.ledger.maintenance import prune
        from claude_run.ledger.rotation import rotate_locked
        from claude_run.ledger.verify import repair

        with open(ledger, "ab") as fh:
            fh.write(b"garbage\n")
        repair(ledger)
        with store.locked(ledger):
            rotate_locked(ledger)
        store.append(ledger, make_record("c"))
        import datetime as dt

        prune(ledger, dt.datetime(2026, 5, 2, tzinfo=dt.timezone.utc))
    finally:
        os.umask(old)
    assert stat.S_IMODE(ledger.parent.stat().st_mode) == 0o700
    files = list(ledger.parent.iterdir())
    assert {p.name for p in files} >= {"ledger.jsonl", "ledger.jsonl.lock", "ledger.jsonl.gen"}
    assert any(p.name.endswith(".quarantine") for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_symlinked_ledger_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.jsonl"
    write_lines(target, [make_record("a")])
    link = tmp_path / "ledger.jsonl"
    link.symlink_to(target)
    before = target.read_bytes()
    with pytest.raises(LedgerError, match="symbolic link"):
        store.append(link, make_record("b"))
    with pytest.raises(LedgerError, match="symbolic link"):
        list(store.iter_records(link))
    assert target.read_bytes() == before
    for args in (["verify"], ["merge", str(target)], ["prune", "--before", "30d"], ["reset", "--yes"]):
        out = run_cli("ledger", *args, "--ledger", str(link))
        assert out.returncode == 74, (args, out.stderr)
        assert "symbolic link" in out.stderr and "Traceback" not in out.stderr
    assert target.read_bytes() == before


def test_symlinked_segment_is_refused(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a")])
    (tmp_path / "ledger.20260101T000000000Z.jsonl").symlink_to(tmp_path / "x")
    with pytest.raises(LedgerError, match="symbolic link"):
        list(store.iter_records(ledger))


def test_a_ledger_of_garbage_lines_lists_only_the_first_ones(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(b"junk\n" * (store.MAX_LISTED_BAD + 500))
    _, stats = _read(ledger)
    assert stats.bad_count == store.MAX_LISTED_BAD + 500
    assert len(stats.bad_lines) == store.MAX_LISTED_BAD
    assert f"skipped {store.MAX_LISTED_BAD + 500}" in stats.warnings()[0]
    result = verify(ledger)
    assert result.bad_count == store.MAX_LISTED_BAD + 500 and len(result.bad) == store.MAX_LISTED_BAD
    out = run_cli("ledger", "verify", "--ledger", str(ledger))
    assert out.returncode == 1 and "... and 500 more bad line(s)" in out.stdout
