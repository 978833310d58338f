"""The child process: spawning it (pipes, session, errors), and line framing of its stdout."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_run.errors import ClaudeNotFound
from claude_run.run.process import LineFramer, exit_status, feed_stdin_now, spawn


@settings(deadline=None)
@given(
    st.lists(st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")), max_size=20),
    st.booleans(),
    st.lists(st.integers(1, 64), min_size=1, max_size=20),
)
def test_any_chunking_gives_back_the_same_lines(lines: list[bytes], torn: bool, cuts: list[int]) -> None:
    data = b"".join(line + b"\n" for line in lines) + (b"tail-without-newline" if torn else b"")
    framer = LineFramer()
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        out += framer.feed(data[pos : pos + step])
        pos += step
        i += 1
    assert out == lines
    assert framer.tail() == (b"tail-without-newline" if torn else b"")


def test_a_4mb_line_in_64k_chunks_is_one_line() -> None:
    big = b'{"type":"assistant","pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    framer = LineFramer()
    got: list[bytes] = []
    for i in range(0, len(big) + 1, 65536):
        got += framer.feed((big + b"\n")[i : i + 65536])
    assert got == [big]


def test_exit_status_maps_signals_like_a_shell() -> None:
    assert exit_status(0) == 0
    assert exit_status(3) == 3
    assert exit_status(-9) == 137
    assert exit_status(-15) == 143


# --- spawn: os.posix_spawn instead of subprocess (not imported before the spawn) ---

PY_CHILD = (
    "import os, sys\n"
    "print(os.getpid(), os.getpgid(0), os.getsid(0), flush=True)\n"
    "sys.stdout.write(sys.stdin.read())\n"
    "sys.stderr.write('to stderr')\n"
    "sys.exit(3)\n"
)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_piped_child_gets_pipes_and_its_own_session() -> None:
    child = spawn([sys.executable, "-c", PY_CHILD], dict(os.environ), piped=True)
    assert child.own_group and min(child.stdin, child.stdout, child.stderr) > 2
    assert feed_stdin_now(child, b"the task") == b""
    assert child.stdin == -1  # all of it went in: closed, so the child sees EOF
    out, err = _read_all(child.stdout), _read_all(child.stderr)
    assert child.wait() == 3 and child.poll() == 3
    pid, pgid, sid = (int(x) for x in out.splitlines()[0].split())
    assert pid == pgid == sid == child.pid
    assert out.splitlines()[1] == b"the task"
    assert err == b"to stderr"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("piped", [True, False])
def test_the_child_gets_sigpipe_back_and_none_of_our_descriptors(tmp_path: Path, piped: bool) -> None:
    out_path = tmp_path / "out"
    script = f"grep SigIgn /proc/self/status > {out_path}; ls /proc/self/fd >> {out_path}"
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)  # as a descriptor our own parent left open for us would be
    try:
        child = spawn(["/bin/sh", "-c", script], dict(os.environ), piped=piped)
        child.close_stdin()
        assert child.wait() == 0
    finally:
        os.close(read_end)
        os.close(write_end)
    out = out_path.read_text().split()
    assert not int(out[1], 16) & (1 << (signal.SIGPIPE - 1))  # Python ignores SIGPIPE; claude must not
    assert {int(x) for x in out[2:]} <= {0, 1, 2, 3}  # 3: ls's own directory handle


def test_an_interactive_child_shares_our_terminal_and_group() -> None:
    child = spawn(
        [sys.executable, "-c", "import os; os._exit(os.getpgid(0) == os.getpgid(os.getppid()))"],
        dict(os.environ),
        piped=False,
    )
    assert (child.stdin, child.stdout, child.stderr) == (-1, -1, -1) and not child.own_group
    assert child.wait() == 1


def test_poll_send_and_the_signal_exit_code() -> None:
    child = spawn(["/bin/sh", "-c", "sleep 30"], dict(os.environ), piped=True)
    assert child.poll() is None
    child.send(signal.SIGTERM)  # the whole group: sh and its sleep
    assert child.wait() == -signal.SIGTERM
    assert exit_status(child.returncode or 0) == 128 + signal.SIGTERM
    child.send(signal.SIGTERM)  # gone: no error


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"))


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (None, 0, "Claude Code CLI not found"),
        ("#!/bin/sh\n", 0o644, "permission denied"),
        ("\x7fELF not really", 0o755, "Exec format error"),
    ],
)
def test_spawn_errors_are_one_line_and_127(
    tmp_path: Path, content: str | None, mode: int, message: str
) -> None:
    path = tmp_path / "claude"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    before = _open_fds()
    with pytest.raises(ClaudeNotFound) as caught:
        spawn([str(path), "-p"], dict(os.environ), piped=True)
    assert message in caught.value.message and caught.value.exit_code == 127
    assert _open_fds() == before  # no pipe end left behind


def test_a_closed_stdin_of_ours_does_not_take_the_childs() -> None:
    saved = os.dup(0)
    os.close(0)  # the next pipe would get descriptor 0
    try:
        child = spawn(["/bin/cat"], dict(os.environ), piped=True)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    assert feed_stdin_now(child, b"echoed") == b""
    assert _read_all(child.stdout) == b"echoed"
    assert child.wait() == 0
