"""One run after the spawn: stream events → fold usage → build the record → ledger → output.

This module is imported once claude has printed its first line (see `launch.await_first_output`),
while claude waits on the API: so everything the end of the run needs is imported here, up front,
instead of after claude exits. `finish()` follows the child to its end and records it.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import orjson

from ..errors import ClaudeRunError
from ..ledger.store import append
from ..paths import ledger_path as resolve_ledger
from ..record.build import build_record
from ..record.schema import iso_utc, user_hash
from ..stream.alerts import Alerts
from ..stream.attribution import StreamAgents
from ..stream.events import ResultEvent, parse_line
from ..stream.usage import UsageFolder, result_status, usage_record_fields
from ..transcripts.attribution import for_run as attribution_for_run
from .display import HybridView, StatusLine, live_limits, summary_line
from .launch import Started
from .modes import MODE_TABLE
from .process import SIGNAL_EXIT, exit_status
from .transport import ProcessTransport, Transport

KILL_GRACE_S = 5.0  # CLAUDE_RUN_KILL_GRACE, read (and checked) before the spawn by run_cli
TERM_GRACE_S = 2.0
TIMEOUT_EXIT = 124
BUDGET_STOP_EXIT = 76  # a --budget-daily/--budget-monthly budget ran out while the run was going
BUDGET_POLL_S = 0.1  # how often a budgeted run looks at the others' spend
STDERR_KEEP = 64 * 1024


@dataclass
class RunOptions:
    """Everything the run needs after the spawn (built once claude is already starting)."""

    task: str | None
    mode: str
    track: bool = False
    ledger: Path | None = None
    tags: dict[str, str] = field(default_factory=dict)
    json_out: bool = False
    quiet: bool = False
    timeout: float | None = None
    raw: bool = False
    record_task: bool = False
    show_partial: bool = False
    cwd: str = field(default_factory=os.getcwd)
    budget: Any = None  # budget.BudgetState from the pre-spawn check (--budget-daily/-monthly)
    kill_grace: float = KILL_GRACE_S
    warn_context: float | None = None  # --warn-context PCT
    warn_quota: float | None = None  # --warn-quota PCT


@dataclass
class Outcome:
    """How the process ended, independent of what it printed."""

    returncode: int | None = None
    signal_name: str | None = None  # SIGINT / SIGTERM we received and forwarded
    timed_out: bool = False
    killed: bool = False
    stderr_tail: bytes = b""
    bad_lines: int = 0
    result_text: str | None = None
    budget_stop: str | None = None  # why claude-run stopped claude for a budget shared across runs


class Session:
    """The async half of a -p run: pumps, signals, timeout, escalation."""

    def __init__(self, started: Started, options: RunOptions, transport: Transport | None = None) -> None:
        self.s = started
        self.opts = options
        self.child: Transport = transport if transport is not None else ProcessTransport(started)
        self.folder = UsageFolder()
        self.agents = StreamAgents()  # issue 17: which agent sent each message, tool calls
        self.outcome = Outcome()
        interactive_stderr = sys.stderr.isatty() and not self.opts.quiet
        live_events = MODE_TABLE[self.opts.mode].live_events
        self.status = StatusLine(enabled=interactive_stderr and not live_events)
        self.view = HybridView(show_partial=self.opts.show_partial) if live_events else None
        self.alerts = Alerts(options.warn_context, options.warn_quota)
        self._stderr = bytearray()
        self._warned_bad = False
        self._stop_requested = False
        self._usage_seen: anyio.Event | None = None  # wakes the budget watcher on each event
        self._rates: Any = None  # pricing.rates once loaded (status line only)
        self.context: dict[str, Any] = {}
        # The built-in OTLP receiver, when launch bound one.
        self.telemetry: Any = None
        plan: Any = started.telemetry_plan
        if plan is not None and plan.use_builtin:
            from ..telemetry.run import RunTelemetry

            self.telemetry = RunTelemetry(plan, os.environ)

    def expected_totals(self) -> tuple[dict[str, Any], float | None] | None:
        """The result event's token and cost totals, for the telemetry receiver to settle against."""
        if self.folder.result is None:
            return None
        totals = self.folder.totals()
        return dict(totals.tokens.as_dict()), totals.cost_usd

    async def on_line(self, line: bytes) -> None:

        if self.opts.raw:
            sys.stdout.buffer.write(line + b"\n")
            sys.stdout.buffer.flush()
        if not line.strip():
            return
        event = parse_line(line)
        if event is None:
            self.outcome.bad_lines += 1
            if not self._warned_bad and not self.opts.quiet:
                self._warned_bad = True
                self.status.clear()
                sys.stderr.write("claude-run: skipping non-JSON output from claude (counted in the record)\n")
            return
        self.folder.feed(event)
        self.agents.feed(event)
        if self._usage_seen is not None:
            self._usage_seen.set()

        if isinstance(event, ResultEvent) and event.result_text is not None:
            self.outcome.result_text = event.result_text
        if self.view is not None:
            self.view.show(event)
        if self.alerts.active:
            for warning in self.alerts.check(event, self.folder):
                self.status.clear()
                sys.stderr.write(f"claude-run: warning: {warning}\n")
        self._tick()

    def _tick(self, force: bool = False) -> None:
        if not self.status.enabled:
            return
        tokens = self.folder.live_tokens()
        self.status.update(
            time.monotonic() - self.s.mono0,
            self.folder.turns,
            tokens.total,
            self.folder.live_cost(self._rates),
            force,
            extra=live_limits(self.folder),
        )

    def on_stderr(self, chunk: bytes) -> None:
        self._stderr += chunk
        if len(self._stderr) > STDERR_KEEP * 2:
            del self._stderr[:-STDERR_KEEP]
        if not self.opts.quiet:
            self.status.clear()
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()

    async def stop_child(self, sig: int, *, already_sent: bool = False) -> None:
        """Forward `sig`, then escalate: grace → SIGTERM → SIGKILL. Returns once the child is gone."""

        child = self.child
        if not already_sent:
            child.send(sig)
        with anyio.move_on_after(self.opts.kill_grace):
            while child.poll() is None:
                await anyio.sleep(0.02)
            return
        child.send(signal.SIGTERM)
        with anyio.move_on_after(TERM_GRACE_S):
            while child.poll() is None:
                await anyio.sleep(0.02)
            return
        self.outcome.killed = True
        child.send(signal.SIGKILL)

    async def watch_signals(self) -> None:
        """Ctrl-C / SIGTERM / SIGHUP: forward to claude, wait, escalate; a second one kills at once."""

        if os.name != "posix":  # pragma: no cover - Windows has no POSIX signal forwarding
            return
        async with anyio.create_task_group() as group:

            def on_signal(signum: int, already_sent: bool) -> None:
                name = signal.Signals(signum).name
                if self.outcome.signal_name is None:
                    self.outcome.signal_name = name
                if not self.opts.quiet:
                    self.status.clear()
                    sys.stderr.write(f"claude-run: {name} — stopping claude…\n")
                if self._stop_requested:  # the user means it: skip the grace period
                    self.outcome.killed = True
                    self.child.send(signal.SIGKILL)
                    return
                self._stop_requested = True
                forward = signal.SIGTERM if signum == signal.SIGHUP else signum
                group.start_soon(partial(self.stop_child, forward, already_sent=already_sent))

            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
                # Signals that came while the event loop was still being set up were forwarded then.
                for signum in self.s.early_signals:
                    on_signal(signum, True)
                async for signum in signals:
                    on_signal(signum, False)

    async def watch_timeout(self) -> None:

        if self.opts.timeout is None:
            return
        # Counted from the spawn: the time spent before the event loop started is part of it.
        await anyio.sleep(max(self.opts.timeout - (time.monotonic() - self.s.mono0), 0))
        self.outcome.timed_out = True
        if not self.opts.quiet:
            self.status.clear()
            sys.stderr.write(f"claude-run: timed out after {self.opts.timeout:g}s — stopping claude…\n")
        self._stop_requested = True
        await self.stop_child(signal.SIGTERM)

    async def watch_budget(self) -> None:
        """Budgets shared across runs: publish this run's spend, stop claude once a budget is reached.

        Like Ctrl-C (grace, SIGTERM, SIGKILL). Checked on each of claude's events and
        `BUDGET_POLL_S` apart for the other runs' spend: with N runs going, the total overshoots by
        at most the request each has in flight when the budget is reached.
        """
        live: Any = self.opts.budget.live if self.opts.budget is not None else None
        if live is None:
            return
        # The list prices were loaded before the spawn (`budget.warm_prices`): live from the first event.
        async with anyio.create_task_group() as group:
            while True:
                self._usage_seen = anyio.Event()
                spend, _ = self.folder.live_spend()
                reached = await anyio.to_thread.run_sync(live.update, spend)
                # Left to claude: a run that has answered (it is exiting; stopping it would only lose
                # the answer), and one past its own --max-budget-usd (claude stops between turns).
                own_cap = self.opts.budget.cap_usd
                claudes = self.folder.answered or (own_cap is not None and spend >= own_cap)
                if reached is not None and not self._stop_requested and not claudes:
                    self._stop_requested = True
                    self.outcome.budget_stop = reached.message(self.opts.budget.spec)
                    if not self.opts.quiet:
                        self.status.clear()
                        sys.stderr.write(f"claude-run: {self.outcome.budget_stop} — stopping claude…\n")
                    group.start_soon(self.stop_child, signal.SIGINT)
                with anyio.move_on_after(BUDGET_POLL_S):
                    await self._usage_seen.wait()

    async def ticker(self) -> None:

        while True:
            await anyio.sleep(0.25)
            if self.status.enabled and self._rates is None and self.folder.messages:
                # The status line promises the cost so far: load the price table once, off the loop
                # (only for a terminal, and once claude is waiting on the API anyway).
                self._rates = await anyio.to_thread.run_sync(self._load_rates)
            self._tick()

    def _load_rates(self) -> Any:
        from ..pricing import rates

        for m in list(self.folder.messages.values()):
            rates(m.model)
        return rates

    async def collect_context(self) -> None:

        from ..context.collect import collect

        def gather() -> dict[str, Any]:
            user_hash()  # cached: getpass/socket lookups happen here, not after claude exits
            return collect(self.opts.cwd)

        self.context = await anyio.to_thread.run_sync(gather)

    async def run(self) -> None:

        pipes_done = anyio.Event()
        context_done = anyio.Event()

        async def pipes() -> None:
            async with anyio.create_task_group() as group:
                group.start_soon(self.child.read_lines, self.on_line)
                group.start_soon(self.child.read_stderr, self.on_stderr)
            pipes_done.set()

        async def context() -> None:
            try:
                await self.collect_context()
            finally:
                context_done.set()

        async with anyio.create_task_group() as watchers:
            watchers.start_soon(self.watch_signals)
            watchers.start_soon(self.watch_timeout)
            watchers.start_soon(self.ticker)
            watchers.start_soon(self.watch_budget)
            watchers.start_soon(context)
            if self.telemetry is not None:
                watchers.start_soon(self.telemetry.serve)
            async with anyio.create_task_group() as io:
                io.start_soon(self.child.write_stdin)
                io.start_soon(pipes)
                self.outcome.returncode = await self.child.wait()
                # A grandchild (a tool's background job) may hold the pipes open after claude
                # exits: let them flush briefly, then stop reading rather than hang.
                with anyio.move_on_after(2.0):
                    await pipes_done.wait()
                io.cancel_scope.cancel()
            if self.telemetry is not None:
                await self.telemetry.settle(self.expected_totals)
            with anyio.move_on_after(10.0):
                await context_done.wait()
            watchers.cancel_scope.cancel()
        self.status.clear()
        self.outcome.stderr_tail = bytes(self._stderr[-STDERR_KEEP:])


def finish(started: Started, options: RunOptions) -> int:
    """Run the session to its end, record it, print the outputs; returns claude-run's exit code."""
    if not MODE_TABLE[options.mode].headless:
        return _finish_interactive(started, options)

    session = Session(started, options)
    try:
        anyio.run(session.run)
    finally:
        plan: Any = started.telemetry_plan
        if session.telemetry is not None:
            session.telemetry.close()
        elif plan is not None:
            plan.close()
    # The child is gone; a late Ctrl-C must not cost the record (a few milliseconds from now).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    ended = time.time()
    record = build_run_record(started, session, ended)
    return _conclude(options, record, session.outcome.result_text)


def build_run_record(started: Started, session: Session, ended: float) -> dict[str, Any]:

    folder = session.folder
    outcome = session.outcome
    result = folder.result
    budget: Any = session.opts.budget
    status, exit_code = decide_status(outcome, result, budget_capped=bool(budget and budget.capped_by_budget))
    fields, usage_notes = usage_record_fields(folder)
    notes = usage_notes + list(started.invocation.notes)
    if outcome.bad_lines:
        notes.append(f"{outcome.bad_lines} non-JSON line(s) in claude's output were skipped")
    if outcome.killed:
        notes.append("claude did not stop in time and was killed")
    if outcome.budget_stop:
        notes.append(f"stopped by claude-run: {outcome.budget_stop} across the runs sharing the ledger")
    elif status == "budget_exceeded" and exit_code == BUDGET_STOP_EXIT:
        notes.append(f"claude stopped at --max-budget-usd {budget.cap_usd:.6g}: what was left of the budget")
    notes += session.alerts.notes
    record: dict[str, Any] = {}
    wall_ms = int((ended - started.t0) * 1000)
    record.update(fields)
    record["duration_ms"] = fields["duration_ms"] or wall_ms
    record["wall_ms"] = wall_ms
    if result is None:
        notes += _prefer_transcript(started, folder.session_id, record)
    record.update(session.context or {})
    # What only telemetry knows, and whether it agrees with the result.
    plan: Any = started.telemetry_plan
    if session.telemetry is not None:
        fields = session.telemetry.record_fields(record["tokens"], record["cost_usd"])
        notes += fields.pop("notes", [])
        record.update(fields)
    elif plan is not None and plan.note:
        notes.append(plan.note)
    # --- attribution: per agent, tool and MCP server ---
    collector = session.telemetry.collector if session.telemetry is not None else None
    transcript = (
        None
        if collector is not None and collector.api_requests
        else _own_transcript(started, folder.session_id)
    )
    attributed = attribution_for_run(record, folder, session.agents, collector, transcript)
    if attributed is not None:
        record["attribution"] = attributed
    rate_limits = folder.rate_limits.field()
    if rate_limits is not None:
        record["rate_limits"] = rate_limits
    detail = record.get("telemetry")
    seen = detail.get("compactions", 0) if isinstance(detail, dict) else 0
    context = folder.context_field(seen if isinstance(seen, int) else 0)
    if context is not None:
        record["context"] = context
    return _make_record(started, session.opts, ended, status, exit_code, record, notes)


def _prefer_transcript(started: Started, session_id: str | None, record: dict[str, Any]) -> list[str]:
    """A run without a `result`: Claude's transcript knows more than stdout did.

    It holds each message's final usage and the subagents' messages, which never appear on stdout.
    Used only when it covers at least what the events showed, and never for a resumed session
    (its transcript also holds earlier runs).
    """
    from ..record.schema import total_tokens
    from ..transcripts import session_fields

    path = _own_transcript(started, session_id)
    if path is None:
        return []
    try:
        fields = session_fields(path)
    except OSError:
        return []
    if total_tokens(fields["tokens"]) < total_tokens(record["tokens"]):
        return []
    for key in ("tokens", "models", "cost_usd", "cost_source"):
        record[key] = fields[key]
    record["model"] = fields.get("model") or record.get("model")
    return ["usage from the session transcript (final per-message counts, subagents included)"]


def _own_transcript(started: Started, session_id: str | None) -> Path | None:
    """The run's session transcript, unless the run resumed a session (its transcript then also
    holds earlier runs)."""
    from ..transcripts import find_transcript
    from .modes import RESUME_FLAGS, has_flag

    if not session_id or has_flag(started.invocation.argv, RESUME_FLAGS):
        return None
    return find_transcript(session_id, started.invocation.env)


def decide_status(outcome: Outcome, result: Any, *, budget_capped: bool = False) -> tuple[str, int]:
    """(status, claude-run's exit code). Our own stop reasons win over what claude reported.

    `budget_capped`: claude's `--max-budget-usd` was what was left of a budget, so claude stopping
    there is the budget's stop too (exit `BUDGET_STOP_EXIT`, as when claude-run stops it).
    """
    rc = outcome.returncode
    code = exit_status(rc) if rc is not None else 1
    if outcome.timed_out:
        return "timeout", TIMEOUT_EXIT
    if outcome.budget_stop:
        return "budget_exceeded", BUDGET_STOP_EXIT
    if outcome.signal_name:
        sig = signal.Signals[outcome.signal_name]
        return "interrupted", SIGNAL_EXIT.get(sig, 128 + int(sig))
    status = result_status(result)
    if status == "crashed":
        return status, code if code != 0 else 1
    if status == "budget_exceeded" and budget_capped:
        return status, BUDGET_STOP_EXIT
    return status, code


def _make_record(
    started: Started,
    opts: RunOptions,
    ended: float,
    status: str,
    exit_code: int,
    fields: dict[str, Any],
    notes: list[str],
) -> dict[str, Any]:
    task = opts.task
    fields["task_sha256"] = hashlib.sha256(task.encode()).hexdigest() if task else None
    if opts.record_task and task is not None:
        fields["task"] = task
    record = build_record(
        record_id=started.run_id,
        started_at=iso_utc(started.t0),
        ended_at=iso_utc(ended),
        mode=opts.mode,
        source="run",
        status=status,
        exit_code=exit_code,
        fields=fields,
        tags=opts.tags,
        notes=notes,
    )
    return dict(record)


def _conclude(opts: RunOptions, record: dict[str, Any], result_text: str | None) -> int:
    """Write the ledger line, then the outputs. A ledger failure never hides the result."""

    exit_code = int(record.get("exit_code") or 0)
    ledger_error: str | None = None
    ledger_path = None
    if opts.track:
        ledger_path = resolve_ledger(opts.ledger)
        live: Any = opts.budget.live if opts.budget is not None else None
        try:
            if live is not None:  # the record and the end of its in-flight entry: one locked step
                live.settle(
                    partial(append, ledger_path, record),
                    record.get("cost_usd"),
                    record["started_at"],
                    live.counted_in_budget_ledger,
                )
            else:
                append(ledger_path, record)
        except ClaudeRunError as exc:
            ledger_error = exc.message
        except OSError as exc:
            ledger_error = f"cannot write ledger {ledger_path}: {exc.strerror or exc}"
        if ledger_error:
            ledger_error = _spool(ledger_path, record, ledger_error)
    # A failed run's "result" is claude's reason, not an answer: it goes to stderr (after the
    # summary line), so `claude-run ... | next-tool` never feeds an error message onwards.
    failed = record.get("is_error") is True and record.get("status") != "success"
    if opts.json_out:
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
        sys.stdout.flush()
    elif result_text is not None and not opts.raw and not failed:
        sys.stdout.write(result_text)
        if not result_text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    # --- CI step outputs and budgets (claude_run.ci.outputs, claude_run.budgets.check) ---
    budget_note = _ci_outputs(opts, record, result_text, recorded=opts.track and not ledger_error)
    if not opts.quiet:
        line = summary_line(record) + budget_note
        if opts.track and not ledger_error:
            line += f" · recorded {record['id']}"
        sys.stderr.write(line + "\n")
    if failed and result_text and not opts.json_out and not opts.raw:
        sys.stderr.write(f"claude-run: claude says: {result_text.strip()}\n")
    if ledger_error:
        sys.stderr.write(f"claude-run: the run was NOT recorded: {ledger_error}\n")
        if os.environ.get("CLAUDE_RUN_DEBUG"):
            sys.stderr.write(f"claude-run: ledger path {ledger_path}\n")
        return exit_code or 74
    return exit_code


def _spool(ledger: Path, record: dict[str, Any], error: str) -> str:
    """Keep a record the ledger refused; the message says where it waits (or shows it, if nowhere)."""
    from ..ledger.spool import spool

    try:
        where = spool(ledger, [record], error)
    except (ClaudeRunError, OSError) as exc:
        reason = exc.message if isinstance(exc, ClaudeRunError) else str(exc)
        shown = orjson.dumps(record).decode()
        return f"{error}; it could not be spooled either ({reason}); the record: {shown}"
    return (
        f"{error}; it waits in {where} and lands in the ledger with the next run that can write it,"
        " or `claude-run ledger flush-spool`"
    )


def _ci_outputs(opts: RunOptions, record: dict[str, Any], result_text: str | None, *, recorded: bool) -> str:
    """Write $GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY / $CLAUDE_RUN_DOTENV; returns the budget clause."""
    budget = opts.budget.with_run(record.get("cost_usd")) if opts.budget is not None else None
    env = os.environ
    if env.get("GITHUB_OUTPUT") or env.get("GITHUB_STEP_SUMMARY") or env.get("CLAUDE_RUN_DOTENV"):
        from ..ci.outputs import write_for_run

        for warning in write_for_run(record, budget, env, recorded=recorded, result_text=result_text):
            sys.stderr.write(f"claude-run: {warning}\n")
    return budget.note() if budget is not None else ""


def _finish_interactive(started: Started, opts: RunOptions) -> int:
    """Wait for the TUI; Ctrl-C belongs to it (same process group), SIGTERM is forwarded."""
    child = started.child
    before = _transcript_sizes(started) if opts.track else {}
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        child.send(signum)

    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, forward)
    try:
        rc = child.wait()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    ended = time.time()
    code = exit_status(rc)
    if received:
        status, code = "interrupted", SIGNAL_EXIT.get(signal.Signals(received[0]), 143)
    else:
        status = "success" if code == 0 else "error"
    if not opts.track:
        return code
    from ..context.collect import collect

    fields = _interactive_usage(started, before)
    notes = fields.pop("notes", [])
    fields.update(collect(opts.cwd))
    fields["duration_ms"] = fields["wall_ms"] = int((ended - started.t0) * 1000)
    return _conclude(opts, _make_record(started, opts, ended, status, code, fields, notes), None)


def _transcript_sizes(started: Started) -> dict[str, int]:
    """Sizes of existing transcripts, so a resumed session records only what this run added."""
    from ..transcripts import project_dirs

    sizes: dict[str, int] = {}
    for root in project_dirs(started.invocation.env):
        for path in root.glob("*/*.jsonl"):
            try:
                sizes[str(path)] = path.stat().st_size
            except OSError:
                continue
    return sizes


def _interactive_usage(started: Started, before: dict[str, int]) -> dict[str, Any]:
    from ..transcripts import find_transcript, project_dirs, session_fields

    env = started.invocation.env
    path: Path | None = None
    if started.invocation.session_id:
        path = find_transcript(started.invocation.session_id, env)
    if path is None:
        # Resumed or continued: the transcript that grew during this run.
        newest: tuple[float, Path] | None = None
        for root in project_dirs(env):
            for candidate in root.glob("*/*.jsonl"):
                try:
                    st = candidate.stat()
                except OSError:
                    continue
                grew = st.st_mtime >= started.t0 - 1 and st.st_size != before.get(str(candidate), -1)
                if grew and (newest is None or st.st_mtime > newest[0]):
                    newest = (st.st_mtime, candidate)
        path = newest[1] if newest else None
    if path is None:
        return {
            "notes": ["no session transcript found: usage unknown"],
            "cost_source": "unpriced",
            "cost_usd": None,
        }
    return session_fields(path, before.get(str(path), 0))
