"""The hot path: resolve claude, build the mode's (argv, env), spawn. Stdlib-light on purpose.

Everything imported before the spawn adds to the run's wall time; everything imported after it
overlaps with Claude's own start-up. So this module and what it imports avoid dataclasses,
typing, pathlib, uuid and friends (see benchmarks/overhead.py).
"""

from __future__ import annotations

import os
import time

from ..record.ids import new_id, uuid4
from .modes import MODE_TABLE, Invocation, build_invocation
from .process import Child, FirstOutput, feed_stdin_now, resolve_claude, spawn, wait_for_first_output

TYPE_CHECKING = False
if TYPE_CHECKING:  # typeshed has no stub for _signal, signal's C half: same functions and constants
    import signal as _signal
else:  # `signal` itself imports enum (~2 ms before the spawn) for names we do not need
    import _signal


class Started:
    """A spawned run: what finish() needs to follow it to the end."""

    __slots__ = (
        "child",
        "early_signals",
        "first",
        "invocation",
        "mode",
        "mono0",
        "run_id",
        "stdin_rest",
        "t0",
        "telemetry_plan",
    )

    def __init__(self, mode: str, invocation: Invocation, child: Child, t0: float, mono0: float, run_id: str):
        self.stdin_rest = b""
        self.early_signals: list[int] = []
        self.first: FirstOutput | None = None  # stdout/stderr read before the event loop existed
        self.mode = mode
        self.invocation = invocation
        self.child = child
        self.t0 = t0
        self.mono0 = mono0
        self.run_id = run_id
        self.telemetry_plan: object = None  # telemetry.plan.Plan when the built-in receiver was considered


def await_first_output(started: Started, timeout: float | None) -> None:
    """Let claude finish its CPU-heavy start-up before we import anything big (see run/process.py)."""
    if not MODE_TABLE[started.mode].headless:
        return
    deadline = started.mono0 + timeout if timeout is not None else None
    first = wait_for_first_output(
        started.child, started.stdin_rest, deadline, lambda: bool(started.early_signals)
    )
    started.first = first
    started.stdin_rest = first.stdin_rest


def start(
    *,
    mode: str,
    task: str | None,
    track: bool,
    claude_bin: str | None,
    claude_args: list[str],
    max_cost: float | None,
    env: dict[str, str] | None = None,
    telemetry_endpoint: str | None = None,
    telemetry: bool = False,
) -> Started:
    env = dict(os.environ) if env is None else env
    claude = resolve_claude(claude_bin, env)
    t0 = time.time()
    run_id = new_id(int(t0 * 1000))
    headless = MODE_TABLE[mode].headless
    # Bind the built-in receiver's socket before the spawn (`_socket`, fast).
    plan = None
    if telemetry and track and headless and telemetry_endpoint is None:
        from ..telemetry.plan import prepare

        plan = prepare(env)
        telemetry_endpoint = plan.endpoint
    inv = build_invocation(
        mode,
        claude_bin=claude,
        task=task,
        claude_args=claude_args,
        base_env=env,
        max_cost=max_cost,
        track=track,
        session_id=uuid4() if not headless and track else None,
        telemetry_endpoint=telemetry_endpoint,
        telemetry_protocols=plan.protocols if plan is not None else None,
        resource_attributes={"claude_run.run_id": run_id} if telemetry_endpoint else None,
    )
    early = _EarlySignals() if headless else None
    try:
        child = spawn(inv.argv, inv.env, piped=headless)
    except BaseException:
        if plan is not None:
            plan.close()
        raise
    started = Started(mode, inv, child, t0, time.monotonic(), run_id)
    started.telemetry_plan = plan
    if early is not None:
        early.attach(started)
    if inv.stdin is not None:
        started.stdin_rest = feed_stdin_now(child, inv.stdin)
    return started


class _EarlySignals:
    """Until the event loop takes over, forward Ctrl-C/SIGTERM/SIGHUP to claude and remember them.

    Without this, a signal during the imports that follow the spawn would raise KeyboardInterrupt
    (or kill us outright) and the run would go unrecorded while claude keeps running. Installed
    before the spawn, so no signal falls between the child's start and its handler.
    """

    def __init__(self) -> None:
        self.started: Started | None = None
        self.pending: list[int] = []
        if os.name != "posix":  # pragma: no cover
            return
        for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
            _signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.pending.append(signum)
        if self.started is not None:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        assert self.started is not None
        self.started.early_signals.append(signum)
        self.started.child.send(_signal.SIGTERM if signum == _signal.SIGHUP else signum)

    def attach(self, started: Started) -> None:
        self.started = started
        for signum in self.pending:
            self._forward(signum)
