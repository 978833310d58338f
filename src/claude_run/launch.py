"""The hot path: resolve claude, build the mode's (argv, env), spawn. Stdlib-light on purpose.

Everything imported before the spawn adds to the run's wall time; everything imported after it
overlaps with Claude's own start-up. So this module and what it imports avoid dataclasses,
typing, pathlib, uuid and friends (see benchmarks/overhead.py).
"""

from __future__ import annotations

import os
import time

from .ids import new_id, uuid4
from .modes import INTERACTIVE, Invocation, build_invocation
from .process import Child, feed_stdin_now, resolve_claude, spawn


class Started:
    """A spawned run: what finish() needs to follow it to the end."""

    __slots__ = ("child", "invocation", "mode", "mono0", "run_id", "stdin_rest", "t0")

    def __init__(self, mode: str, invocation: Invocation, child: Child, t0: float, mono0: float, run_id: str):
        self.stdin_rest = b""
        self.mode = mode
        self.invocation = invocation
        self.child = child
        self.t0 = t0
        self.mono0 = mono0
        self.run_id = run_id


def start(
    *,
    mode: str,
    task: str | None,
    track: bool,
    claude_bin: str | None,
    claude_args: list[str],
    max_cost: float | None,
    cwd: str,
    env: dict[str, str] | None = None,
    telemetry_endpoint: str | None = None,
) -> Started:
    env = dict(os.environ) if env is None else env
    claude = resolve_claude(claude_bin, env)
    t0 = time.time()
    run_id = new_id(int(t0 * 1000))
    inv = build_invocation(
        mode,
        claude_bin=claude,
        task=task,
        claude_args=claude_args,
        base_env=env,
        max_cost=max_cost,
        track=track,
        session_id=uuid4() if mode == INTERACTIVE and track else None,
        telemetry_endpoint=telemetry_endpoint,
        resource_attributes={"claude_run.run_id": run_id} if telemetry_endpoint else None,
    )
    child = spawn(inv.argv, inv.env, piped=mode != INTERACTIVE, cwd=cwd)
    started = Started(mode, inv, child, t0, time.monotonic(), run_id)
    if inv.stdin is not None:
        started.stdin_rest = feed_stdin_now(child, inv.stdin)
    return started
