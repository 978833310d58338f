"""Whether a run gets the built-in receiver, decided before the spawn with the stdlib only.

- interactive runs, untracked runs and `--no-telemetry` (or CLAUDE_RUN_TELEMETRY=0): no receiver.
- the user has no OTLP exporter configured: the built-in receiver on 127.0.0.1, ephemeral port.
- the user exports OTLP over `http/json`: the built-in receiver, and every body it gets is forwarded
  to their endpoint(s) with their headers (their telemetry still arrives, same encoding).
- the user exports over `grpc` or `http/protobuf` (the OTel default), or with another exporter
  (prometheus): their settings are left untouched and the run has no built-in receiver. A JSON
  receiver cannot re-encode protobuf/gRPC bodies, and taking their telemetry away is not an option.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

_EXPORTER_VARS = ("OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")
_PASSIVE_EXPORTERS = {"", "none", "console", "otlp"}


@dataclass
class Plan:
    use_builtin: bool
    forward_signals: tuple[str, ...] = ()  # signals to forward to the user's endpoint
    note: str | None = None  # why the built-in receiver is not used, for the record's notes
    sock: socket.socket | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str | None:
        if self.sock is None:
            return None
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _protocol(env: Mapping[str, str], signal: str) -> str:
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "").strip()
    return (specific or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() or "http/protobuf").lower()


def _exporters(env: Mapping[str, str], var: str) -> set[str]:
    return {p.strip().lower() for p in env.get(var, "").split(",") if p.strip()}


def _user_endpoint(env: Mapping[str, str], signal: str) -> bool:
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    )


def decide(env: Mapping[str, str]) -> Plan:
    """What to do given the user's environment (pure: the socket is bound by `prepare`)."""
    forward: list[str] = []
    for signal, var in (("metrics", "OTEL_METRICS_EXPORTER"), ("logs", "OTEL_LOGS_EXPORTER")):
        exporters = _exporters(env, var)
        other = exporters - _PASSIVE_EXPORTERS
        if other:
            return Plan(
                False, note=f"your {var}={','.join(sorted(other))} is left untouched; no built-in receiver"
            )
        if "otlp" in exporters and _user_endpoint(env, signal):
            protocol = _protocol(env, signal)
            if protocol != "http/json":
                return Plan(
                    False,
                    note=(
                        f"your OTLP exporter uses {protocol}, which claude-run cannot forward; "
                        "left untouched, no built-in receiver (set OTEL_EXPORTER_OTLP_PROTOCOL=http/json "
                        "to get both)"
                    ),
                )
            forward.append(signal)
    return Plan(True, tuple(forward))


def prepare(env: Mapping[str, str], host: str = "127.0.0.1") -> Plan:
    """`decide`, then bind the receiver's socket (microseconds) so the endpoint is known before spawn."""
    plan = decide(env)
    if not plan.use_builtin:
        return plan
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))
        sock.listen(64)
    except OSError as exc:
        return Plan(False, note=f"built-in telemetry receiver could not listen: {exc.strerror or exc}")
    plan.sock = sock
    return plan
