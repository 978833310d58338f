"""verify/repair, merge, prune and reset: what they keep, what they drop, and how they report it."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import orjson
import pytest

from claude_run.commands.ledger_admin import parse_before
from claude_run.errors import UsageError
from claude_run.ledger import store
from claude_run.ledger.maintenance import merge, prune, reset
from claude_run.ledger.rotation import RotationPolicy, rotate_locked
from claude_run.ledger.verify import quarantine_path, read_quarantine, repair, verify
from support.ledger_admin import ids_in, make_record, run_cli, write_lines

UTC = dt.timezone.utc


def _day(d: int) -> str:
    return f"2026-03-{d:02d}T10:00:00.000Z"


def _rotate(ledger: Path) -> None:
    with store.locked(ledger):
        rotate_locked(ledger)


# --- verify / repair ---------------------------------------------------------------------------------


def test_verify_reports_file_and_line_across_segments(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a")])
    with open(ledger, "ab") as fh:
        fh.write(b"not json\n")
    _rotate(ledger)
    write_lines(ledger, [make_record("b"), {"v": 1}, make_record("c")])
    result = verify(ledger)
    assert [(b.path.name.startswith("ledger.2"), b.lineno) for b in result.bad] == [(True, 2), (False, 2)]
    assert "not valid JSON" in result.bad[0].reason and "not a record" in result.bad[1].reason
    assert result.records == 3


def test_repair_quarantines_and_rewrites_atomically(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a")])
    garbage = b"\xff\xfe binary \x00"
    with open(ledger, "ab") as fh:
        fh.write(garbage + b"\n")
    write_lines(ledger, [make_record("b")])
    with open(ledger, "ab") as fh:
        fh.write(b'{"v":1,"id":"torn')
    inode = ledger.stat().st_ino
    result = repair(ledger)
    assert result.quarantined == 2
    assert ledger.stat().st_ino != inode  # replaced by rename, not edited in place
    assert (
        ledger.read_bytes() == orjson.dumps(make_record("a")) + b"\n" + orjson.dumps(make_record("b")) + b"\n"
    )
    entries = list(read_quarantine(quarantine_path(ledger)))
    assert [(e["file"], e["line"]) for e in entries] == [("ledger.jsonl", 2), ("ledger.jsonl", 4)]
    import base64

    assert base64.b64decode(entries[0]["base64"]) == garbage
    assert entries[1]["text"] == '{"v":1,"id":"torn'
    assert verify(ledger).ok
    assert repair(ledger).quarantined == 0  # idempotent
    assert len(list(read_quarantine(quarantine_path(ledger)))) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_verify_cli(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a")])
    out = run_cli("ledger", "verify", "--ledger", str(ledger))
    assert out.returncode == 0 and "1 record(s), 0 bad line(s)" in out.stdout
    with open(ledger, "ab") as fh:
        fh.write(b"oops\n")
    out = run_cli("ledger", "verify", "--ledger", str(ledger), "--json")
    assert out.returncode == 1
    payload = json.loads(out.stdout)
    assert payload["bad"][0]["line"] == 2 and payload["records"] == 1
    out = run_cli("ledger", "verify", "--ledger", str(ledger), "--repair")
    assert out.returncode == 0 and "moved 1 bad line(s)" in out.stdout
    assert run_cli("ledger", "verify", "--ledger", str(ledger)).returncode == 0


# --- merge -------------------------------------------------------------------------------------------


def test_merge_is_deduplicated_and_idempotent(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a"), make_record("b")])
    job1, job2 = tmp_path / "job1.jsonl", tmp_path / "job2.jsonl"
    write_lines(job1, [make_record("b"), make_record("c"), make_record("c")])
    job2.write_bytes(
        b'{ "v": 1, "id": "d",\t"started_at": "2026-03-01T00:00:00Z" }\n'  # loose spacing is fine
        + b"torn garbage\n"
        + orjson.dumps(make_record("a", cost_usd=9.0))  # same id, different content, no newline
    )
    result = merge(ledger, [job1, job2])
    assert (result.added, result.already_present, result.duplicates_in_sources) == (2, 2, 1)
    assert result.conflicts == 1
    assert [(p.name, n) for p, n in result.invalid] == [("job2.jsonl", 2)]
    assert ids_in(ledger) == ["a", "b", "c", "d"]
    assert verify(ledger).ok  # invalid source lines are reported, never copied
    size = ledger.stat().st_size
    again = merge(ledger, [job1, job2])
    assert again.added == 0 and ledger.stat().st_size == size


def test_merge_reads_all_segments_of_the_target(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a")])
    _rotate(ledger)
    write_lines(ledger, [make_record("b")])
    src = tmp_path / "ci.jsonl"
    write_lines(src, [make_record("a"), make_record("b"), make_record("c")])
    assert merge(ledger, [src], policy=RotationPolicy(0)).added == 1
    assert ids_in(ledger) == ["a", "b", "c"]


def test_merge_missing_file_is_an_io_error(tmp_path: Path) -> None:
    out = run_cli("ledger", "merge", str(tmp_path / "nope.jsonl"), "--ledger", str(tmp_path / "l.jsonl"))
    assert out.returncode == 74 and "cannot read" in out.stderr


def test_merge_cli_dry_run(tmp_path: Path) -> None:
    ledger, src = tmp_path / "ledger.jsonl", tmp_path / "src.jsonl"
    write_lines(src, [make_record("a"), make_record("b")])
    out = run_cli("ledger", "merge", str(src), "--ledger", str(ledger), "--dry-run")
    assert out.returncode == 0 and "would add 2" in out.stdout
    assert ids_in(ledger) == []
    out = run_cli("ledger", "merge", str(src), "--ledger", str(ledger))
    assert "added 2" in out.stdout and ids_in(ledger) == ["a", "b"]


# --- prune -------------------------------------------------------------------------------------------


def test_prune_removes_old_records_across_segments(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record(f"a{d}", started_at=_day(d)) for d in (1, 2)])
    _rotate(ledger)
    write_lines(ledger, [make_record(f"b{d}", started_at=_day(d)) for d in (3, 9)])
    write_lines(ledger, [{"v": 1, "id": "undated"}])
    with open(ledger, "ab") as fh:
        fh.write(b"bad line\n")
    result = prune(ledger, dt.datetime(2026, 3, 5, tzinfo=UTC))
    assert (result.dropped, result.kept, result.kept_unreadable) == (3, 2, 1)
    assert ids_in(ledger) == ["b9", "undated"]
    assert store.segments(ledger) == [ledger]  # the emptied rotated segment is gone
    assert len(verify(ledger).bad) == 1  # prune never destroys what it cannot read


def test_prune_drops_what_a_dropped_successor_superseded(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(
        ledger,
        [
            make_record("v1", started_at=_day(10)),  # kept by date, but its successor goes
            make_record("v2", started_at=_day(2), supersedes="v1"),  # dropped by date
            make_record("w1", started_at=_day(1)),  # dropped by date
            make_record("w2", started_at=_day(20), supersedes="w1"),  # kept: a dangling link is harmless
            make_record("x1", started_at=_day(11)),
            make_record("x2", started_at=_day(12), supersedes="x1"),
            make_record("x3", started_at=_day(3), supersedes="x2"),  # dropped: x2 and x1 follow
        ],
    )
    result = prune(ledger, dt.datetime(2026, 3, 5, tzinfo=UTC))
    assert ids_in(ledger) == ["w2"]
    assert result.dropped_superseded == 3


def test_prune_dry_run_changes_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a", started_at=_day(1)), make_record("b", started_at=_day(9))])
    before = ledger.read_bytes()
    result = prune(ledger, dt.datetime(2026, 3, 5, tzinfo=UTC), dry_run=True)
    assert result.dropped == 1 and ledger.read_bytes() == before
    assert store.generation(ledger) == "0"


def test_parse_before() -> None:
    now = dt.datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    today = now.astimezone().date()  # the one date grammar: days are local calendar days

    def local_midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time()).astimezone().astimezone(UTC)

    assert parse_before("30d", now=now) == local_midnight(today - dt.timedelta(days=29))
    assert parse_before("12h", now=now) == now - dt.timedelta(hours=12)
    assert parse_before("2w", now=now) == local_midnight(today - dt.timedelta(days=13))
    assert parse_before("today", now=now) == local_midnight(today)
    assert parse_before("7m", now=now) == local_midnight(dt.date(2025, 12, 1))
    assert parse_before("2026-01-31T00:00:00Z") == dt.datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_before("2026-01-31T05:00:00+02:00") == dt.datetime(2026, 1, 31, 3, tzinfo=UTC)
    local = parse_before("2026-01-31")
    assert local == dt.datetime(2026, 1, 31).astimezone().astimezone(UTC)
    with pytest.raises(UsageError):
        parse_before("last tuesday")


def test_prune_cli(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a", started_at=_day(1)), make_record("b", started_at=_day(9))])
    out = run_cli("ledger", "prune", "--before", "2026-03-05T00:00:00Z", "--ledger", str(ledger))
    assert out.returncode == 0 and "removed 1 record(s)" in out.stdout
    assert ids_in(ledger) == ["b"]
    out = run_cli("ledger", "prune", "--before", "someday", "--ledger", str(ledger))
    assert out.returncode == 2 and "bad date" in out.stderr


# --- reset -------------------------------------------------------------------------------------------


def test_reset_requires_yes_and_removes_every_segment(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    write_lines(ledger, [make_record("a")])
    _rotate(ledger)
    write_lines(ledger, [make_record("b")])
    out = run_cli("ledger", "reset", "--ledger", str(ledger))
    assert out.returncode == 2 and "--yes" in out.stderr and ids_in(ledger) == ["a", "b"]
    out = run_cli("ledger", "reset", "--yes", "--ledger", str(ledger))
    assert out.returncode == 0 and "removed 2 record(s)" in out.stdout
    assert ids_in(ledger) == [] and store.segments(ledger) == [ledger]
    assert reset(ledger).records == 0


# --- path --------------------------------------------------------------------------------------------


def test_path_resolves_like_a_run(tmp_path: Path) -> None:
    explicit = tmp_path / "x" / "ledger.jsonl"
    assert run_cli("ledger", "path", "--ledger", str(explicit)).stdout.strip() == str(explicit)
    from_env = tmp_path / "env.jsonl"
    out = run_cli("ledger", "path", env={"CLAUDE_RUN_LEDGER": str(from_env)})
    assert out.stdout.strip() == str(from_env)
    out = run_cli("ledger", "path", env={"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert out.stdout.strip() == str(tmp_path / "xdg" / "claude-run" / "ledger.jsonl")
    write_lines(explicit, [make_record("a")])
    _rotate(explicit)
    write_lines(explicit, [make_record("b")])
    listed = run_cli("ledger", "path", "--all", "--ledger", str(explicit)).stdout.split()
    assert listed[:2] == [str(p) for p in store.segments(explicit)]
    assert str(store.generation_path(explicit)) in listed
    assert os.path.basename(listed[0]).startswith("ledger.2")


def test_prune_compares_instants_whatever_the_timestamp_spelling(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    spellings = {
        "z-before": "2026-03-04T23:59:59.999Z",
        "z-at": "2026-03-05T00:00:00.000Z",
        "offset-before": "2026-03-05T01:59:59+02:00",
        "offset-after": "2026-03-05T02:00:01+02:00",
        "no-ms-before": "2026-03-04T23:59:59Z",
        "micro-after": "2026-03-05T00:00:00.000001+00:00",
        "naive-before": "2026-03-04T12:00:00",
    }
    write_lines(ledger, [make_record(k, started_at=v) for k, v in spellings.items()])
    write_lines(ledger, [{"v": 1, "id": "ended-only", "ended_at": "2026-03-01T00:00:00Z"}])
    prune(ledger, dt.datetime(2026, 3, 5, tzinfo=UTC))
    assert ids_in(ledger) == ["z-at", "offset-after", "micro-after"]
    # A cutoff with sub-millisecond precision takes the exact path.
    write_lines(ledger, [make_record("ms", started_at="2026-03-06T00:00:00.000Z")])
    prune(ledger, dt.datetime(2026, 3, 6, 0, 0, 0, 500, tzinfo=UTC))
    assert "ms" not in ids_in(ledger)


def test_a_merge_cut_short_is_finished_by_merging_again(tmp_path: Path) -> None:
    ledger, src = tmp_path / "ledger.jsonl", tmp_path / "ci.jsonl"
    write_lines(ledger, [make_record("a")])
    write_lines(src, [make_record(f"m{n}") for n in range(5)])
    merge(ledger, [src])
    data = ledger.read_bytes()
    with open(ledger, "r+b") as fh:  # as if killed while writing the fourth merged record
        fh.truncate(data.index(b'"m3"') + 10)
    assert ids_in(ledger) == ["a", "m0", "m1", "m2"]
    assert merge(ledger, [src]).added == 2
    assert ids_in(ledger) == ["a", "m0", "m1", "m2", "m3", "m4"]
    assert len(verify(ledger).bad) == 1  # the fragment, on its own line, for verify --repair
