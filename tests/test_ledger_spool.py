"""A record the ledger refuses (disk full, read-only, permissions) waits in the spool and lands once.

Simulated failures (an `os.write` that fills the disk part-way, an `open` that finds a read-only
file system) run everywhere; a real full tmpfs and a real read-only remount run where the test may
mount (root on Linux), through whole `claude-run` runs against the fake claude.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.errors import LedgerError
from claude_run.ledger import spool, store
from claude_run.paths import spool_file, state_dir
from support.fake_claude import make_fake_claude
from support.mock_anthropic import MockApiFactory

SRC = str(Path(__file__).resolve().parents[1] / "src")


def rec(n: int) -> dict[str, Any]:
    return {"v": 1, "id": f"01SPOOL{n:06d}", "mode": "non-interactive", "status": "success"}


def ids(ledger: Path) -> list[str]:
    return [r["id"] for r in store.iter_records(ledger)]


class Faults:
    """`os.write` to files under `root` fails like a full disk (after writing half, the first time)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.full = False
        self.real_write = os.write

    def _ours(self, fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(self.root + os.sep)
        except OSError:
            return False

    def write(self, fd: int, data: Any) -> int:
        if self.full and self._ours(fd):
            if len(data) > 1 and not getattr(self, "_half_done", False):
                self._half_done = True
                return self.real_write(fd, bytes(data[: len(data) // 2]))
            self._half_done = False
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real_write(fd, data)


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell the ledger's writes from others")
    ledger_dir, spool_dir = tmp_path / "ledgerfs", tmp_path / "state" / "spool"
    monkeypatch.setenv("CLAUDE_RUN_SPOOL_DIR", str(spool_dir))
    return ledger_dir / "ledger.jsonl", spool_dir


def test_disk_full_append_leaves_no_torn_line_and_the_spool_delivers_once_in_order(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, spool_dir = dirs
    store.append(ledger, rec(0))
    before = ledger.read_bytes()
    faults = Faults(ledger.parent)
    monkeypatch.setattr(os, "write", faults.write)
    faults.full = True
    for n in (1, 2):
        with pytest.raises(LedgerError, match="No space left"):
            store.append(ledger, rec(n))
        assert ledger.read_bytes() == before  # the half-written line was cut back
        where = spool.spool(ledger, [rec(n)], "disk full")
    assert where == spool_file(ledger) and where.parent == spool_dir
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
    assert [e.id for e in spool.waiting(ledger)] == [rec(1)["id"], rec(2)["id"]]
    faults.full = False
    store.append(ledger, rec(3))  # the next append that succeeds delivers what waits, first
    assert ids(ledger) == [rec(n)["id"] for n in range(4)]
    assert not where.exists()
    store.append(ledger, rec(4))
    assert ids(ledger) == [rec(n)["id"] for n in range(5)]


def test_read_only_ledger_spools_and_flush_delivers_once(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, _ = dirs
    store.append(ledger, rec(0))
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if str(path) == str(ledger) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kw)

    with monkeypatch.context() as m:
        m.setattr(os, "open", read_only)
        with pytest.raises(LedgerError, match="Read-only file system"):
            store.append(ledger, rec(1))
        spool.spool(ledger, [rec(1)], "read-only")
        with pytest.raises(LedgerError):
            spool.flush(ledger)  # still read-only: the record keeps waiting
    assert [e.id for e in spool.waiting(ledger)] == [rec(1)["id"]]
    assert spool.flush(ledger).appended == [rec(1)["id"]]
    assert spool.flush(ledger).appended == []
    assert ids(ledger) == [rec(0)["id"], rec(1)["id"]]


def test_crash_between_delivery_and_clearing_the_spool_delivers_once(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, _ = dirs
    spool.spool(ledger, [rec(1), rec(2)], "test")
    with monkeypatch.context() as m:
        m.setattr(spool, "_after_append", crash)
        with pytest.raises(Crash):
            spool.flush(ledger)
    assert ids(ledger) == [rec(1)["id"], rec(2)["id"]]
    done = spool.flush(ledger)
    assert (done.appended, done.already) == ([], [rec(1)["id"], rec(2)["id"]])
    assert ids(ledger) == [rec(1)["id"], rec(2)["id"]]


def test_a_torn_fragment_naming_the_id_is_not_taken_for_the_record(dirs: tuple[Path, Path]) -> None:
    ledger, _ = dirs
    line = store.encode(rec(1))
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(store.encode(rec(0)) + line[: len(line) // 2])  # a writer died mid-line
    spool.spool(ledger, [rec(1)], "test")
    assert spool.flush(ledger).appended == [rec(1)["id"]]
    assert ids(ledger) == [rec(0)["id"], rec(1)["id"]]


def test_spool_location_honours_xdg_state_home_and_the_override(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "st")}
    if sys.platform.startswith("linux"):
        assert state_dir(env) == tmp_path / "st" / "claude-run"
        assert state_dir({"HOME": str(tmp_path), "XDG_STATE_HOME": "relative"}) == (
            tmp_path / ".local" / "state" / "claude-run"
        )
        assert spool_file(tmp_path / "l.jsonl", env).parent == tmp_path / "st" / "claude-run" / "spool"
    over = spool_file(tmp_path / "l.jsonl", {**env, "CLAUDE_RUN_SPOOL_DIR": str(tmp_path / "sp")})
    assert over.parent == tmp_path / "sp"
    assert spool_file(tmp_path / "a.jsonl", env) != spool_file(tmp_path / "b.jsonl", env)


class Crash(BaseException):
    """A process killed at that point: nothing after it runs, no handler sees it."""


def crash() -> None:
    raise Crash


# -- the property: any interleaving of failed and successful appends delivers each record once, in order
OPS = st.lists(
    st.sampled_from(["run", "run-full", "flush", "flush-full", "flush-crash", "import"]), max_size=25
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_every_record_lands_exactly_once_in_order(ops: list[str]) -> None:
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        ledger = root / "ledgerfs" / "ledger.jsonl"
        stack.enter_context(mock.patch.dict(os.environ, {"CLAUDE_RUN_SPOOL_DIR": str(root / "spool")}))
        faults = Faults(ledger.parent)
        stack.enter_context(mock.patch.object(os, "write", faults.write))
        made: list[str] = []
        for op in ops:
            faults.full = op.endswith("-full")
            if op.startswith("run") or op == "import":
                batch = [rec(len(made))] if op.startswith("run") else [rec(len(made)), rec(len(made) + 1)]
                made += [r["id"] for r in batch]
                try:
                    store.append_lines(ledger, [store.encode(r) for r in batch], fsync=False)
                except LedgerError:
                    spool.spool(ledger, batch, "full")
            elif op == "flush-crash":
                with mock.patch.object(spool, "_after_append", crash), contextlib.suppress(Crash):
                    spool.flush(ledger)
            else:
                with contextlib.suppress(LedgerError):
                    spool.flush(ledger)
            faults.full = False
        spool.flush(ledger)
        assert ids(ledger) == made
        assert not spool_file(ledger).exists()
        assert spool.waiting(ledger) == []


# -- whole runs on a real full / read-only file system -----------------------------------------------
@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux (the simulated ENOSPC/EROFS tests cover the rest)")
    p = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)], capture_output=True
    )
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path) -> Path:
    filler = mnt / "filler"
    with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 4096)
    return filler


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_RUN_", "GITHUB_", "OTEL_"))}
    env.pop("CI", None)
    env.update(extra)
    env.update(
        {
            "PYTHONPATH": SRC,
            "HOME": str(tmp_path / "home"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "CLAUDE_RUN_TELEMETRY": "0",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "claude_run", *args], capture_output=True, env=env, cwd=tmp_path, timeout=60
    )


def test_a_run_on_a_full_disk_prints_its_result_exits_74_and_lands_once_when_space_returns(
    tmp_path: Path, tmpfs: Path
) -> None:
    claude = make_fake_claude(tmp_path, "text")
    ledger = tmpfs / "ledger.jsonl"
    filler = fill(tmpfs)
    p = run(tmp_path, "hi", "--track", "--ledger", str(ledger), "--claude-bin", str(claude))
    assert p.stdout == b"fake answer\n"
    assert p.returncode == 74
    waits = tmp_path / "state" / "claude-run" / "spool"
    assert b"No space left on device" in p.stderr and str(waits).encode() in p.stderr, p.stderr
    assert not ledger.exists() or ledger.read_bytes() == b""
    spooled = spool_file(ledger, {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)})
    first = orjson.loads(spooled.read_bytes())["record"]
    filler.unlink()
    p = run(tmp_path, "again", "--track", "--ledger", str(ledger), "--claude-bin", str(claude))
    assert p.returncode == 0, p.stderr
    recs = [orjson.loads(line) for line in ledger.read_bytes().splitlines()]
    assert len(recs) == 2
    assert recs[0] == first  # the spooled record first, as it was made
    assert not spooled.exists()


def test_a_run_on_a_read_only_ledger_waits_for_flush_spool(tmp_path: Path, tmpfs: Path) -> None:
    claude = make_fake_claude(tmp_path, "text")
    ledger = tmpfs / "ledger.jsonl"
    p = run(tmp_path, "hi", "--track", "--ledger", str(ledger), "--claude-bin", str(claude))
    assert p.returncode == 0, p.stderr
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    try:
        p = run(tmp_path, "hi", "--track", "--ledger", str(ledger), "--claude-bin", str(claude))
        assert (p.stdout, p.returncode) == (b"fake answer\n", 74)
        assert b"Read-only file system" in p.stderr and b"flush-spool" in p.stderr
        p = run(tmp_path, "ledger", "flush-spool", "--ledger", str(ledger))
        assert p.returncode == 74 and b"Read-only" in p.stderr
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    for _ in range(2):
        p = run(tmp_path, "ledger", "flush-spool", "--ledger", str(ledger))
        assert p.returncode == 0, p.stderr
    assert b"nothing is waiting" in p.stdout
    assert len(ledger.read_bytes().splitlines()) == 2


@pytest.mark.e2e
def test_real_claude_run_on_a_full_disk_is_spooled_with_its_usage_and_flushed_once(
    tmp_path: Path, tmpfs: Path, claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    from support.claude_cli import claude_env
    from support.mock_anthropic import Usage, text

    api = mock_api([text("hello from the mock", usage=Usage(input=85, cache_read=4202, output=19))])
    ledger = tmpfs / "ledger.jsonl"
    filler = fill(tmpfs)
    env = claude_env(claude_home, api.url, PYTHONPATH=SRC, XDG_STATE_HOME=str(tmp_path / "state"))
    argv = [sys.executable, "-m", "claude_run", "--claude-bin", str(claude_bin), "--track"]
    p = subprocess.run(
        [*argv, "--ledger", str(ledger), "say hello", "--", "--model", "claude-sonnet-4-5"],
        capture_output=True,
        env=env,
        cwd=claude_home / "project",
        timeout=120,
    )
    assert (p.stdout, p.returncode) == (b"hello from the mock\n", 74), p.stderr
    assert b"No space left on device" in p.stderr and b"flush-spool" in p.stderr
    filler.unlink()
    for _ in range(2):
        flushed = subprocess.run(
            [sys.executable, "-m", "claude_run", "ledger", "flush-spool", "--ledger", str(ledger)],
            capture_output=True,
            env=env,
            timeout=60,
        )
        assert flushed.returncode == 0, flushed.stderr
    (rec,) = [orjson.loads(line) for line in ledger.read_bytes().splitlines()]
    served = api.total_usage()
    assert (rec["tokens"]["input"], rec["tokens"]["output"]) == (served.input, served.output)
    assert rec["status"] == "success" and rec["exit_code"] == 0


def test_verify_warns_of_waiting_records_and_repair_delivers_them(tmp_path: Path) -> None:
    ledger = tmp_path / "l" / "ledger.jsonl"
    env = {"CLAUDE_RUN_SPOOL_DIR": str(tmp_path / "spool")}
    with mock.patch.dict(os.environ, env):
        store.append(ledger, rec(0))
        spool.spool(ledger, [rec(1)], "test")
    p = run(tmp_path, "ledger", "verify", "--ledger", str(ledger), env=env)
    assert p.returncode == 0 and b"1 record(s) could not be appended" in p.stderr, p.stderr
    p = run(tmp_path, "ledger", "verify", "--repair", "--ledger", str(ledger), env=env)
    assert p.returncode == 0 and b"appended 1 spooled record(s)" in p.stdout, p.stdout
    assert ids(ledger) == [rec(0)["id"], rec(1)["id"]]
