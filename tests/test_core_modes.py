"""The (argv, env) of each mode: one pure function, every rule a plain assertion."""

from __future__ import annotations

import pytest

from claude_run.run.modes import build_invocation

BASE = {
    "PATH": "/usr/bin",
    "HOME": "/home/u",
    "CLAUDECODE": "1",
    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
    "OTEL_METRICS_EXPORTER": "console",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_SERVICE_NAME": "x",
}


def test_non_interactive_argv_streams_json_with_partials_and_passes_claude_args_verbatim() -> None:
    inv = build_invocation(
        "non-interactive",
        claude_bin="/bin/claude",
        task="fix it",
        claude_args=["--model", "sonnet", "--allowedTools", "Bash Edit"],
        base_env={"PATH": "/usr/bin"},
        max_cost=0.5,
    )
    assert inv.argv[:5] == ["/bin/claude", "-p", "--output-format", "stream-json", "--verbose"]
    assert "--include-partial-messages" in inv.argv
    assert inv.argv[inv.argv.index("--max-budget-usd") + 1] == "0.5"
    assert inv.argv[-4:] == ["--model", "sonnet", "--allowedTools", "Bash Edit"]
    assert inv.stdin == b"fix it"  # the task goes on stdin: no ARG_MAX limit, not visible in ps


def test_no_telemetry_exporter_to_nowhere() -> None:
    inv = build_invocation("non-interactive", claude_bin="c", task="t", base_env=BASE)
    assert "CLAUDECODE" not in inv.env
    assert not [k for k in inv.env if k.startswith("OTEL_") or k == "CLAUDE_CODE_ENABLE_TELEMETRY"]
    assert inv.telemetry == "off"


def test_users_endpoint_turns_telemetry_on_without_console_exporter() -> None:
    env = {**BASE, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    inv = build_invocation("hybrid", claude_bin="c", task="t", base_env=env)
    assert inv.telemetry == "user"
    assert inv.env["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
    assert inv.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    assert inv.env["OTEL_METRICS_EXPORTER"] == "none"  # console would write into our stdout stream
    assert inv.env["OTEL_LOGS_EXPORTER"] == "otlp"


def test_builtin_receiver_overrides_user_exporter_settings_and_tags_the_run() -> None:
    env = {**BASE, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_RESOURCE_ATTRIBUTES": "a=b"}
    inv = build_invocation(
        "non-interactive",
        claude_bin="c",
        task="t",
        base_env=env,
        telemetry_endpoint="http://127.0.0.1:5555",
        resource_attributes={"claude_run.run_id": "R1"},
    )
    assert inv.telemetry == "builtin"
    assert inv.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:5555"
    assert inv.env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"
    assert inv.env["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] == "cumulative"
    assert inv.env["OTEL_RESOURCE_ATTRIBUTES"] == "a=b,claude_run.run_id=R1"


def test_interactive_strips_all_telemetry_and_forces_a_session_id_when_tracked() -> None:
    inv = build_invocation(
        "interactive", claude_bin="c", task=None, base_env=BASE, track=True, session_id="S-1"
    )
    assert inv.argv == ["c", "--session-id", "S-1"]
    assert inv.stdin is None
    assert not [k for k in inv.env if k.startswith("OTEL_") or k == "CLAUDE_CODE_ENABLE_TELEMETRY"]
    assert "CLAUDECODE" not in inv.env


@pytest.mark.parametrize("resume", [["--resume", "abc"], ["-c"], ["--continue"], ["--session-id=x"]])
def test_interactive_resume_keeps_the_users_session(resume: list[str]) -> None:
    inv = build_invocation(
        "interactive", claude_bin="c", task=None, claude_args=resume, base_env={}, track=True, session_id="S"
    )
    assert "S" not in inv.argv
    assert inv.session_id is None


def test_users_max_budget_flag_is_not_doubled() -> None:
    inv = build_invocation(
        "non-interactive",
        claude_bin="c",
        task="t",
        claude_args=["--max-budget-usd", "2"],
        base_env={},
        max_cost=1,
    )
    assert inv.argv.count("--max-budget-usd") == 1


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError):
        build_invocation("batch", claude_bin="c", task="t", base_env={})
