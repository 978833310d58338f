"""The (argv, env) of each mode, built by one pure function so every rule here is a plain test.

Telemetry rules:
- interactive: `CLAUDE_CODE_ENABLE_TELEMETRY` and every `OTEL_*` variable are removed; Claude's
  console exporter would otherwise draw over the TUI.
- non-interactive / hybrid: telemetry is switched on only when there is somewhere to send it: the
  built-in receiver (`telemetry_endpoint`) or the user's own `OTEL_EXPORTER_OTLP_*ENDPOINT`. An OTLP
  exporter with no endpoint makes Claude retry against localhost:4318 and can hang at exit, and a
  `console` exporter would write onto stdout, interleaved with the stream-json we parse.
"""

from __future__ import annotations

from ..record.modes import HYBRID, INTERACTIVE, NON_INTERACTIVE

TYPE_CHECKING = False  # on the hot path: typing and collections.abc are for mypy only
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class ModeSpec:
    """What a mode does. Plain class: `dataclasses` costs ~8 ms to import on the hot path."""

    __slots__ = ("flag", "headless", "help", "live_events", "name")

    def __init__(self, name: str, *, headless: bool, live_events: bool, flag: str, help: str) -> None:
        self.name = name
        # `claude -p --output-format stream-json`: the task on stdin, every event parsed, a cap and
        # telemetry possible. Otherwise the TUI owns the terminal: no events, no cap, no telemetry.
        self.headless = headless
        self.live_events = live_events  # every event drawn on stderr (instead of the status line)
        self.flag = flag  # its shortcut option on the run command
        self.help = help


# The one mode table: the run command's options, the child's (argv, env), what is shown and what
# a run can be capped by all read it.
MODE_TABLE: dict[str, ModeSpec] = {
    NON_INTERACTIVE: ModeSpec(
        NON_INTERACTIVE, headless=True, live_events=False, flag="", help="claude -p; the default with a TASK"
    ),
    HYBRID: ModeSpec(
        HYBRID, headless=True, live_events=True, flag="--hybrid", help="show every event live on stderr"
    ),
    INTERACTIVE: ModeSpec(
        INTERACTIVE, headless=False, live_events=False, flag="-i --interactive", help="the Claude TUI"
    ),
}
MODES = tuple(MODE_TABLE)

# Set in the child's environment when claude-run records the run itself (--track, any mode): the
# SessionEnd hook (`claude-run hook session-end`, which Claude runs with this environment) then
# leaves the session to claude-run instead of recording it a second time.
TRACKED_ENV = "CLAUDE_RUN_TRACKED"

# Options after which claude continues an existing session: we must not force a new --session-id.
RESUME_FLAGS = ("--resume", "-r", "--continue", "-c", "--session-id", "--fork-session")
_USER_ENDPOINT_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)


class Invocation:
    """What the child gets. A plain class: `dataclasses` costs ~8 ms to import on the hot path."""

    __slots__ = ("argv", "env", "notes", "session_id", "stdin", "telemetry")

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        stdin: bytes | None,  # bytes to feed on stdin, or None to inherit the terminal
        session_id: str | None = None,  # forced session id (interactive --track)
        telemetry: str = "off",  # off | user | builtin
        notes: list[str] | None = None,
    ) -> None:
        self.argv = argv
        self.env = env
        self.stdin = stdin
        self.session_id = session_id
        self.telemetry = telemetry
        self.notes = notes if notes is not None else []


def has_flag(args: Sequence[str], names: Sequence[str]) -> bool:
    for arg in args:
        for name in names:
            if arg == name or (name.startswith("--") and arg.startswith(name + "=")):
                return True
    return False


def user_max_budget(args: Sequence[str]) -> tuple[float | None, list[str]]:
    """The user's own `--max-budget-usd` among claude's args (None when absent or not a number), and
    the args without it: claude gets one cap, the smaller of the user's and ours."""
    for i, arg in enumerate(args):
        if arg == "--max-budget-usd" and i + 1 < len(args):
            text, end = args[i + 1], i + 2
        elif arg.startswith("--max-budget-usd="):
            text, end = arg.partition("=")[2], i + 1
        else:
            continue
        try:
            value = float(text)
        except ValueError:
            return None, list(args)  # claude reports its own malformed option
        if value != value:
            return None, list(args)
        return value, [*args[:i], *args[end:]]
    return None, list(args)


def user_has_endpoint(env: Mapping[str, str]) -> bool:
    return any(env.get(name, "").strip() for name in _USER_ENDPOINT_VARS)


def _strip_telemetry(env: dict[str, str]) -> None:
    for key in list(env):
        if key.startswith("OTEL_") or key == "CLAUDE_CODE_ENABLE_TELEMETRY":
            del env[key]


def _without_console(value: str) -> str:
    kept = [p.strip() for p in value.split(",") if p.strip() and p.strip() != "console"]
    return ",".join(kept) or "none"


def build_invocation(
    mode: str,
    *,
    claude_bin: str,
    task: str | None,
    claude_args: Sequence[str] = (),
    base_env: Mapping[str, str],
    max_cost: float | None = None,
    track: bool = False,
    session_id: str | None = None,
    partial_messages: bool = True,
    telemetry_endpoint: str | None = None,
    telemetry_protocols: Mapping[str, str] | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    export_interval_ms: int = 5000,
) -> Invocation:
    """Everything the child gets. Pure: the same inputs always give the same (argv, env)."""
    spec = MODE_TABLE.get(mode)
    if spec is None:
        raise ValueError(f"unknown mode {mode!r}")
    env = dict(base_env)
    # A nested claude refuses to start when it sees it runs inside another Claude Code session.
    env.pop("CLAUDECODE", None)
    env.pop(TRACKED_ENV, None)  # inherited from a tracked session around us: not ours to claim
    if track:
        env[TRACKED_ENV] = "1"
    extra = list(claude_args)
    notes: list[str] = []

    if not spec.headless:
        _strip_telemetry(env)
        argv = [claude_bin]
        forced = None
        if track and not has_flag(extra, RESUME_FLAGS):
            forced = session_id
            if forced:
                argv += ["--session-id", forced]
        if max_cost is not None:
            notes.append("--max-cost applies to -p runs only; the interactive session is not capped")
        argv += extra
        if task:
            argv.append(task)
        return Invocation(argv, env, None, forced, "off", notes)

    argv = [claude_bin, "-p", "--output-format", "stream-json", "--verbose"]
    if partial_messages and not has_flag(extra, ("--include-partial-messages",)):
        argv.append("--include-partial-messages")
    if max_cost is not None:
        theirs, rest = user_max_budget(extra)
        if theirs is None or max_cost < theirs:  # the user's own cap stands when it is the smaller
            argv += ["--max-budget-usd", _fmt_usd(max_cost)]
            extra = rest
    argv += extra

    telemetry = "off"
    if telemetry_endpoint:
        telemetry = "builtin"
        # http/json unless told otherwise (forwarding keeps the user's protocol): Claude's cost is the
        # same either way within what we can measure, and we read a JSON body ~15x faster, while
        # Claude waits for our answer at exit (docs/telemetry.md, benchmarks/telemetry_protocols.py).
        protocols = telemetry_protocols or {}
        metrics_protocol = protocols.get("metrics", "http/json")
        logs_protocol = protocols.get("logs", "http/json")
        for key in list(env):
            if key.startswith("OTEL_EXPORTER_OTLP_") or key in (
                "OTEL_METRICS_EXPORTER",
                "OTEL_LOGS_EXPORTER",
            ):
                del env[key]
        env.update(
            {
                "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
                "OTEL_METRICS_EXPORTER": "otlp",
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": metrics_protocol,
                "OTEL_EXPORTER_OTLP_ENDPOINT": telemetry_endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": str(export_interval_ms),
                "OTEL_LOGS_EXPORT_INTERVAL": str(export_interval_ms),
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative",
            }
        )
        if logs_protocol != metrics_protocol:
            env["OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"] = logs_protocol
    elif user_has_endpoint(env):
        telemetry = "user"
        env["CLAUDE_CODE_ENABLE_TELEMETRY"] = "1"
        env.setdefault("OTEL_METRICS_EXPORTER", "otlp")
        env.setdefault("OTEL_LOGS_EXPORTER", "otlp")
    else:
        _strip_telemetry(env)
    if telemetry != "off":
        for key in ("OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_TRACES_EXPORTER"):
            if key in env:
                env[key] = _without_console(env[key])
        if resource_attributes:
            extra_attrs = ",".join(f"{k}={v}" for k, v in resource_attributes.items())
            existing = env.get("OTEL_RESOURCE_ATTRIBUTES", "").strip(", ")
            env["OTEL_RESOURCE_ATTRIBUTES"] = f"{existing},{extra_attrs}" if existing else extra_attrs

    stdin = task.encode() if task is not None else b""
    return Invocation(argv, env, stdin, None, telemetry, notes)


def _fmt_usd(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"
