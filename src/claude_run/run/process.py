"""The child process: spawn early, frame stdout into lines of any size, drain stderr, signals.

The child is spawned with `os.posix_spawn` before anyio (and asyncio under it, ~45 ms) is even
imported: that import then overlaps with Claude's own start-up instead of adding to the run's wall
time. `subprocess` is not used for the same reason (~5 ms of imports: threading, selectors,
locale, signal's enums). The pipes are read with anyio afterwards (`wait_readable` on
non-blocking descriptors).

On Linux claude also gets a parent-death signal (`with_death_signal`): if claude-run itself is
killed (SIGKILL, OOM), the kernel kills claude rather than leave it running, and billing, unrecorded.

In -p modes the child gets its own session, hence its own process group: on Ctrl-C/SIGTERM/timeout
we signal the whole group (Claude's tool subprocesses included), wait a grace period, then SIGTERM,
then SIGKILL, so nothing is orphaned and the exit status is always reaped.
"""

from __future__ import annotations

import os
import sys

from ..errors import ClaudeNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:  # typeshed has no stub for _signal, signal's C half: same functions and constants
    import signal as _signal
    from collections.abc import Awaitable, Callable, Sequence
else:  # `signal` itself imports enum (~2 ms before the spawn) for names we do not need
    import _signal

READ_CHUNK = 1 << 16
# Python ignores these; the child gets the defaults back, as subprocess's restore_signals does.
_RESTORED_SIGNALS = (_signal.SIGPIPE, _signal.SIGXFSZ)


class Child:
    """The running claude: its pid, our ends of its pipes (-1: none, it inherits our stdio), its exit.

    Plain class: this module is imported before the spawn (no dataclasses).
    """

    __slots__ = ("own_group", "pid", "returncode", "stderr", "stdin", "stdout")

    def __init__(
        self, pid: int, own_group: bool, stdin: int = -1, stdout: int = -1, stderr: int = -1
    ) -> None:
        self.pid = pid
        self.own_group = own_group
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once the child has exited (-N when signal N killed it, as Popen gives it)."""
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None:
            self._reap(0)
        return self.returncode

    def _reap(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): the status is lost, as in Popen
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)

    def close_stdin(self) -> None:
        if self.stdin >= 0:
            try:  # noqa: SIM105 - contextlib is not imported on the hot path
                os.close(self.stdin)
            except OSError:
                pass
            self.stdin = -1

    def send(self, sig: int) -> None:
        """Signal the child (and its process group when it has one); a gone child is fine."""
        try:
            if self.own_group:
                # Even once claude is reaped: its tools' processes may still be in the group.
                os.killpg(self.pid, sig)
            elif self.returncode is None:  # a reaped pid may already belong to another process
                os.kill(self.pid, sig)
        except OSError:
            pass


def spawn(argv: Sequence[str], env: dict[str, str], *, piped: bool) -> Child:
    """Start claude in our working directory. `piped`: stdin/stdout/stderr are pipes and claude gets
    its own session (-p modes); else it inherits our terminal and process group (the TUI).

    posix_spawn reports a failed exec itself (glibc's runs vfork + exec and passes the errno back).
    """
    if not hasattr(os, "posix_spawn"):  # pragma: no cover - Windows: one clear line, not a traceback
        raise ClaudeNotFound(
            "claude-run starts claude with posix_spawn, which this platform lacks (use Linux or macOS)"
        )
    actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()]
    ours: list[int] = []
    theirs: list[int] = []
    try:
        if piped:
            for target in (0, 1, 2):
                read_end, write_end = _pipe()
                child_end, our_end = (read_end, write_end) if target == 0 else (write_end, read_end)
                theirs.append(child_end)
                ours.append(our_end)
                # dup2 clears close-on-exec on the copy; the originals are non-inheritable (PEP 446).
                actions.append((os.POSIX_SPAWN_DUP2, child_end, target))
        command = with_death_signal(argv)
        pid = os.posix_spawn(
            command[0], command, env, file_actions=actions, setsid=piped, setsigdef=_RESTORED_SIGNALS
        )
    except OSError as exc:
        for fd in ours:
            os.close(fd)
        if isinstance(exc, FileNotFoundError):
            raise ClaudeNotFound(_not_found(argv[0])) from exc
        if isinstance(exc, PermissionError):
            raise ClaudeNotFound(f"cannot execute {argv[0]}: permission denied") from exc
        # ENOEXEC and friends: a broken file where claude should be
        raise ClaudeNotFound(f"cannot execute {argv[0]}: {exc.strerror or exc}") from exc
    finally:
        for fd in theirs:
            os.close(fd)
    if not piped:
        return Child(pid, own_group=False)
    return Child(pid, own_group=True, stdin=ours[0], stdout=ours[1], stderr=ours[2])


_SETPRIV = ("/usr/bin/setpriv", "/bin/setpriv")
_setpriv_found: list[str | None] = []


def with_death_signal(argv: Sequence[str]) -> list[str]:
    """`argv`, behind a trampoline that makes the kernel SIGKILL claude if claude-run dies first.

    Linux's PR_SET_PDEATHSIG must be set in the child between fork and exec, which posix_spawn
    cannot do; util-linux's `setpriv --pdeathsig KILL` sets it and execs claude in the same process
    (the setting survives the exec): about a millisecond, against several for fork + ctypes, and the
    spawn stays a posix_spawn (benchmarks/prespawn.py). Without a setpriv that knows the option
    (macOS, util-linux < 2.33), or when claude is not something the kernel runs directly (then
    posix_spawn's own error is the one to report), claude is started as it is.
    """
    if sys.platform != "linux":
        return list(argv)
    setpriv = _find_setpriv()
    if setpriv is None or not _directly_executable(argv[0]):
        return list(argv)
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


def _find_setpriv() -> str | None:
    if not _setpriv_found:
        found = None
        for path in _SETPRIV:
            try:
                with open(path, "rb") as fh:  # an older setpriv lacks the option: look for its name
                    if b"pdeathsig" in fh.read(1 << 20):
                        found = path
                        break
            except OSError:
                continue
        _setpriv_found.append(found)
    return _setpriv_found[0]


def _directly_executable(path: str) -> bool:
    """An executable script with `#!` or an ELF binary: setpriv's exec cannot fail differently."""
    if not os.access(path, os.X_OK):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(7)
    except OSError:
        return False
    # ELF: the magic, then a valid class (32/64-bit), byte order and version.
    elf = (
        head[:4] == b"\x7fELF" and len(head) == 7 and head[4] in (1, 2) and head[5] in (1, 2) and head[6] == 1
    )
    return head[:2] == b"#!" or elf


def _inherited_fds() -> list[int]:
    """Our descriptors above 2 that claude would inherit (from whoever started us): closed in the
    child, as subprocess's close_fds does, so that no tool process of claude's holds them open."""
    try:
        names = os.listdir("/proc/self/fd" if sys.platform == "linux" else "/dev/fd")
    except OSError:
        return []
    fds = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                fds.append(fd)
        except OSError:  # the directory listing's own descriptor, closed by now
            continue
    return fds


def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    return _above_stdio(read_end), _above_stdio(write_end)


def _above_stdio(fd: int) -> int:
    # With one of our own 0/1/2 closed, a pipe end can land there; dup2 onto itself would then keep
    # its close-on-exec flag and the child would start without that descriptor.
    if fd > 2:
        return fd
    higher = _above_stdio(os.dup(fd))
    os.close(fd)
    return higher


def _not_found(path: str) -> str:
    return (
        f"Claude Code CLI not found ({path}); install it with `npm install -g @anthropic-ai/claude-code`"
        " or point --claude-bin / $CLAUDE_RUN_CLAUDE_BIN at it"
    )


def resolve_claude(option: str | None, env: dict[str, str]) -> str:
    """`--claude-bin`, else `$CLAUDE_RUN_CLAUDE_BIN`, else `claude` on PATH."""
    chosen = option or env.get("CLAUDE_RUN_CLAUDE_BIN") or "claude"
    if os.sep in chosen or (os.altsep and os.altsep in chosen):
        if not os.path.exists(chosen):
            raise ClaudeNotFound(_not_found(chosen))
        return chosen
    found = _which(chosen, env.get("PATH", os.defpath))
    if not found:
        raise ClaudeNotFound(_not_found(chosen))
    return found


def _which(name: str, path: str) -> str | None:
    # shutil.which would pull in shutil (and bz2/lzma with it): ~5 ms on every run's start-up.
    if os.name == "nt":  # pragma: no cover - PATHEXT rules: let shutil do it
        import shutil

        return shutil.which(name, path=path)
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class LineFramer:
    """Splits a byte stream into lines with no length limit (a 4 MB event is one line)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # bytes already searched for a newline: huge lines stay O(n)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines: list[bytes] = []
        start = 0
        pos = self._buf.find(b"\n", self._scanned)
        while pos != -1:
            lines.append(bytes(self._buf[start:pos]))
            start = pos + 1
            pos = self._buf.find(b"\n", start)
        if start:
            del self._buf[:start]
        self._scanned = len(self._buf)
        return lines

    def tail(self) -> bytes:
        """What is left without a newline at EOF: a torn last line, handed to the parser to judge."""
        data = bytes(self._buf)
        self._buf.clear()
        self._scanned = 0
        return data


async def _read_chunk(fd: int) -> bytes:
    import anyio

    while True:
        try:
            return os.read(fd, READ_CHUNK)
        except BlockingIOError:
            await anyio.wait_readable(fd)
        except InterruptedError:
            continue


async def pump_lines(fd: int, on_line: Callable[[bytes], Awaitable[None] | None], head: bytes = b"") -> None:
    """Read `fd` to EOF, calling `on_line` for every complete line and the torn tail (if any).

    `head`: bytes already read from `fd` (see `wait_for_first_output`), framed first.
    """
    import inspect

    os.set_blocking(fd, False)
    framer = LineFramer()
    chunk = head
    while True:
        if not chunk:
            chunk = await _read_chunk(fd)
            if not chunk:
                break
        for line in framer.feed(chunk):
            res = on_line(line)
            if inspect.isawaitable(res):
                await res
        chunk = b""
    tail = framer.tail()
    if tail:
        res = on_line(tail)
        if inspect.isawaitable(res):
            await res


async def drain(fd: int, sink: Callable[[bytes], None], head: bytes = b"") -> None:
    """Read a pipe to EOF so the child never blocks on a full pipe; hand each chunk to `sink`."""
    if head:
        sink(head)
    os.set_blocking(fd, False)
    while True:
        chunk = await _read_chunk(fd)
        if not chunk:
            return
        sink(chunk)


class FirstOutput:
    """What `wait_for_first_output` read before the event loop existed."""

    __slots__ = ("stderr", "stdin_rest", "stdout")

    def __init__(self, stdout: bytes, stderr: bytes, stdin_rest: bytes) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.stdin_rest = stdin_rest


def wait_for_first_output(
    child: Child, stdin_rest: bytes, deadline: float | None, interrupted: Callable[[], bool]
) -> FirstOutput:
    """Sleep in select() until claude prints its first stdout bytes (or exits, or we are signalled).

    Claude's start-up is CPU-bound (~0.4 s); our own imports (anyio/asyncio, ~0.1 s of CPU) would
    compete with it on a small machine and delay it. Claude's first line marks the end of its
    start-up, after which it mostly waits on the API: that is when we import. stderr is read
    meanwhile (a full pipe would block claude), and the rest of a large task is written.
    """
    import select
    import time

    out_fd, err_fd = child.stdout, child.stderr
    in_fd = child.stdin if stdin_rest else -1
    out = bytearray()
    err = bytearray()
    readers = [out_fd, err_fd]
    while out_fd in readers and not out and not interrupted():
        wait = 0.1  # wake up now and then: a signal handler may have asked us to stop waiting
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                break
        writers = [in_fd] if in_fd >= 0 else []
        try:
            ready_r, ready_w, _ = select.select(readers, writers, [], wait)
        except (OSError, ValueError):
            break
        for fd in ready_r:
            data = os.read(fd, READ_CHUNK)
            if not data:
                readers.remove(fd)
            (out if fd == out_fd else err).extend(data)
        if ready_w:
            try:
                n = os.write(in_fd, stdin_rest[:READ_CHUNK])
                stdin_rest = stdin_rest[n:]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                stdin_rest = b""
            if not stdin_rest:
                child.close_stdin()
                in_fd = -1
    return FirstOutput(bytes(out), bytes(err), stdin_rest)


def feed_stdin_now(child: Child, data: bytes) -> bytes:
    """Write what the pipe takes without blocking, right after the spawn; returns the rest.

    claude reads its prompt from stdin before its first request: a task that waited for the event
    loop (and its imports) would stall claude's start-up. Closes stdin when all of it went in.
    """
    fd = child.stdin
    if fd < 0:
        return b""
    os.set_blocking(fd, False)
    sent = 0
    try:
        while sent < len(data):
            sent += os.write(fd, data[sent:])
    except BlockingIOError:
        return data[sent:]
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child exited without reading its task; its exit status says why
    child.close_stdin()
    return b""


async def write_stdin(child: Child, data: bytes) -> None:
    """Feed the rest of the task on stdin, then close it (claude -p reads the prompt until EOF)."""
    import anyio

    fd = child.stdin
    if fd < 0:
        return
    os.set_blocking(fd, False)
    view = memoryview(data)
    try:
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                await anyio.wait_writable(fd)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child exited without reading its task; its exit status says why
    finally:
        child.close_stdin()


async def wait_exit(child: Child, poll: float = 0.02) -> int:
    """Reap the child without blocking the event loop; returns its returncode (-N for signal N)."""
    import anyio

    pidfd = -1
    if sys.platform == "linux" and hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(child.pid)
        except OSError:
            pidfd = -1
    try:
        while True:
            code = child.poll()
            if code is not None:
                return code
            if pidfd >= 0:
                await anyio.wait_readable(pidfd)
            else:
                await anyio.sleep(poll)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def exit_status(returncode: int) -> int:
    """A shell-style exit status: 128+N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


SIGNAL_EXIT = {_signal.SIGINT: 130, _signal.SIGTERM: 143}
