"""A writer killed with SIGKILL at any point leaves earlier records intact and at most one torn tail."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from claude_run.ledger import store
from claude_run.ledger.verify import repair, verify
from support.ledger_admin import SRC, make_record, run_cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")

# A child that takes the ledger lock like a real writer and writes one huge record in many small
# os.write calls, announcing when it has started, so the parent can kill it mid-record.
_SLOW_WRITER = r"""
import os, sys, time
from pathlib import Path
import orjson
from claude_run.ledger import store
ledger = Path(sys.argv[1])
record = orjson.dumps({"v": 1, "id": sys.argv[2], "started_at": "2026-05-01T00:00:00.000Z",
                       "pad": "y" * 4_000_000}) + b"\n"
with store.locked(ledger):
    fd = store.open_for_append(ledger)
    sys.stdout.write("go\n"); sys.stdout.flush()
    for i in range(0, len(record), 4096):
        os.write(fd, record[i:i + 4096])
        time.sleep(0.0005)
"""

# A child appending through the real API in a loop, killed at a random moment.
_LOOP_WRITER = r"""
import sys
from pathlib import Path
from claude_run.ledger import store
ledger = Path(sys.argv[1])
sys.stdout.write("go\n"); sys.stdout.flush()
n = 0
while True:
    store.append(ledger, {"v": 1, "id": f"{sys.argv[2]}-{n}", "pad": "z" * (n % 50_000)})
    n += 1
"""


def _spawn(script: str, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"go\n"
    return proc


def _kill(proc: subprocess.Popen[bytes], after: float) -> None:
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def test_killed_mid_record_leaves_earlier_records_and_one_torn_tail(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rng = random.Random(7)
    expected: list[str] = []
    for round_ in range(4):
        for n in range(5):
            rid = f"r{round_}-{n}"
            store.append(ledger, make_record(rid))
            expected.append(rid)
        before = ledger.stat().st_size
        _kill(_spawn(_SLOW_WRITER, str(ledger), f"huge-{round_}"), rng.uniform(0.01, 0.15))
        assert ledger.stat().st_size > before  # the kill really landed mid-record
        assert not ledger.read_bytes().endswith(b"\n")

        stats = store.ReadStats()
        got = [rec["id"] for rec in store.iter_records(ledger, stats)]
        assert got == expected  # every earlier record intact, nothing invented
        assert (
            len(stats.bad_lines) == round_ + 1
        )  # this round's torn tail (plus earlier, now-terminated ones)
        assert "ledger verify" in stats.warnings()[0]

        result = verify(ledger)
        assert [b.lineno for b in result.bad][-1] == len(_lines(ledger))
        assert result.bad[-1].reason.startswith("torn")

    # The next append is not glued onto the torn tail: it lands on a line of its own.
    store.append(ledger, make_record("after"))
    assert [rec["id"] for rec in store.iter_records(ledger)] == [*expected, "after"]
    last = _lines(ledger)[-2]
    assert orjson.loads(last)["id"] == "after"

    assert len(verify(ledger).bad) == 4
    repaired = repair(ledger)
    assert repaired.quarantined == 4
    assert verify(ledger).ok
    assert [rec["id"] for rec in store.iter_records(ledger)] == [*expected, "after"]


def test_killed_at_random_points_of_real_appends(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rng = random.Random(11)
    for n in range(3):
        store.append(ledger, make_record(f"base-{n}"))
    for round_ in range(6):
        _kill(_spawn(_LOOP_WRITER, str(ledger), f"loop{round_}"), rng.uniform(0.0, 0.2))
        result = verify(ledger)
        # A kill inside a write can tear at most the record being written: only the last line may be bad.
        assert len([b for b in result.bad if b.lineno != len(_lines(ledger))]) <= round_
        ids = [rec["id"] for rec in store.iter_records(ledger)]
        assert ids[:3] == ["base-0", "base-1", "base-2"]
        assert len(ids) == len(set(ids))
        # Each child's records are a gap-free prefix of what it tried to write.
        for child in range(round_ + 1):
            mine = [int(i.rsplit("-", 1)[1]) for i in ids if i.startswith(f"loop{child}-")]
            assert mine == list(range(len(mine)))


def test_verify_cli_reports_torn_tail_with_file_and_line(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    store.append(ledger, make_record("a"))
    store.append(ledger, make_record("b"))
    with open(ledger, "ab") as fh:
        fh.write(b'{"v":1,"id":"c","pad":"tor')
    out = run_cli("ledger", "verify", "--ledger", str(ledger))
    assert out.returncode == 1
    assert f"{ledger}:3: torn" in out.stdout
    assert "1 bad line" in out.stderr


# A child that prunes (a full atomic rewrite) a large ledger, killed at a random moment.
_PRUNER = r"""
import sys, datetime as dt
from pathlib import Path
from claude_run.ledger.maintenance import prune
sys.stdout.write("go\n"); sys.stdout.flush()
prune(Path(sys.argv[1]), dt.datetime(2026, 3, 15, tzinfo=dt.timezone.utc))
"""


@pytest.mark.slow
def test_a_rewrite_killed_at_any_point_leaves_the_old_or_the_new_ledger(tmp_path: Path) -> None:
    from claude_run.ledger.maintenance import prune

    ledger = tmp_path / "ledger.jsonl"
    total = 30_000
    days = [f"2026-03-{d:02d}T00:00:00.000Z" for d in range(1, 29)]
    with open(ledger, "wb") as fh:
        for n in range(total):
            fh.write(orjson.dumps(make_record(f"r{n}", started_at=days[n % 28], pad="p" * 100)) + b"\n")
    everything = {f"r{n}" for n in range(total)}
    pruned = {f"r{n}" for n in range(total) if n % 28 >= 14}

    def temps() -> list[Path]:
        return [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    # First kill as soon as the temp file exists (mid-rewrite), then at random moments.
    rng = random.Random(3)
    left_behind = False
    for round_ in range(4):
        proc = _spawn(_PRUNER, str(ledger))
        if round_ == 0:
            deadline = time.monotonic() + 20
            while not temps() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
        else:
            time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        left_behind = left_behind or bool(temps())
        ids = {rec["id"] for rec in store.iter_records(ledger)}
        assert ids in (everything, pruned)  # never a mix, never a torn file
        assert verify(ledger).ok
        if ids == pruned:
            break
    # The next rewrite under the lock finishes the job and clears what a killed one left behind.
    prune(ledger, dt.datetime(2026, 3, 15, tzinfo=dt.timezone.utc))
    assert {rec["id"] for rec in store.iter_records(ledger)} == pruned
    assert temps() == []
    print(f"a killed rewrite left a temp file: {left_behind}")
