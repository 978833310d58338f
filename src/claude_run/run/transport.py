"""The seam between the runner and claude: what a run needs of the child, as a small Protocol.

`ProcessTransport` is the real one (the spawned process, its pipes and signals). `MemoryTransport`
replays stream-json lines from memory, so the runner's event folding, partial-run estimates and
status rules are tested in milliseconds, beside the tests that spawn a process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import anyio

if TYPE_CHECKING:
    from .launch import Started

LineSink = Callable[[bytes], Awaitable[None] | None]


class Transport(Protocol):
    async def read_lines(self, on_line: LineSink) -> None:
        """Every line claude writes on stdout, in order, until it closes it."""

    async def read_stderr(self, on_chunk: Callable[[bytes], None]) -> None:
        """claude's stderr, as it comes, until it closes it."""

    async def write_stdin(self) -> None:
        """The rest of the task for claude's stdin, then close it."""

    async def wait(self) -> int:
        """claude's return code (negative: the signal that ended it)."""

    def send(self, sig: int) -> None:
        """Deliver a signal to claude (and what it started)."""

    def poll(self) -> int | None:
        """The return code once claude has ended, else None."""


class ProcessTransport:
    """The spawned claude (`launch.start`), with what was read before the event loop began."""

    def __init__(self, started: Started) -> None:
        self._started = started

    async def read_lines(self, on_line: LineSink) -> None:
        from .process import pump_lines

        first = self._started.first
        await pump_lines(self._started.child.stdout, on_line, first.stdout if first else b"")

    async def read_stderr(self, on_chunk: Callable[[bytes], None]) -> None:
        from .process import drain

        first = self._started.first
        await drain(self._started.child.stderr, on_chunk, first.stderr if first else b"")

    async def write_stdin(self) -> None:
        from .process import write_stdin

        await write_stdin(self._started.child, self._started.stdin_rest)

    async def wait(self) -> int:
        from .process import wait_exit

        return await wait_exit(self._started.child)

    def send(self, sig: int) -> None:
        self._started.child.send(sig)

    def poll(self) -> int | None:
        return self._started.child.poll()


class MemoryTransport:
    """A scripted claude: writes `lines` (with `delay` seconds between them), then exits with
    `returncode`. A signal ends it at once (return code minus the signal), unless it is one of
    `ignore_signals`: then the runner's escalation (SIGTERM, SIGKILL) can be followed."""

    def __init__(
        self,
        lines: Sequence[bytes],
        *,
        returncode: int = 0,
        stderr: bytes = b"",
        delay: float = 0.0,
        ignore_signals: Sequence[int] = (),
        stay: bool = False,
    ) -> None:
        self.lines = list(lines)
        self.returncode = returncode
        self.stderr = stderr
        self.delay = delay
        self.ignore_signals = set(ignore_signals)
        self.stay = stay  # keeps running after its lines, until a signal ends it (timeouts, Ctrl-C)
        self.signals: list[int] = []  # every signal the runner sent, in order
        self.stdin_closed = False
        self._code: int | None = None
        self._ended = anyio.Event()

    def _end(self, code: int) -> None:
        if self._code is None:
            self._code = code
            self._ended.set()

    async def read_lines(self, on_line: LineSink) -> None:
        for line in self.lines:
            if self._code is not None:
                break
            if self.delay:
                await anyio.sleep(self.delay)
            out = on_line(line)
            if out is not None:
                await out
        if self._code is None and not self.stay:
            self._end(self.returncode)

    async def read_stderr(self, on_chunk: Callable[[bytes], None]) -> None:
        if self.stderr:
            on_chunk(self.stderr)

    async def write_stdin(self) -> None:
        self.stdin_closed = True

    async def wait(self) -> int:
        await self._ended.wait()
        assert self._code is not None
        return self._code

    def send(self, sig: int) -> None:
        self.signals.append(sig)
        if sig not in self.ignore_signals:
            self._end(-sig)

    def poll(self) -> int | None:
        return self._code
