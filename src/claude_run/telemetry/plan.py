"""Whether a run gets the built-in receiver, decided before the spawn (hot path: `_socket`, no more).

- interactive runs, untracked runs and `--no-telemetry` (or CLAUDE_RUN_TELEMETRY=0): no receiver.
- the user has no OTLP exporter configured: the built-in receiver on 127.0.0.1, ephemeral port,
  spoken to over `http/json` (the cheapest for us to read).
- the user exports OTLP over `http/json` or `http/protobuf` (the OTel default): the built-in
  receiver, Claude sending it the user's own protocol, and every body it gets is forwarded unchanged
  to their endpoint(s) with their headers (their telemetry still arrives, same encoding).
- the user exports over `grpc`, or with another exporter (prometheus): their settings are left
  untouched and the run has no built-in receiver. An HTTP receiver cannot pass gRPC on, and taking
  their telemetry away is not an option.
"""

from __future__ import annotations

import _socket

_PASSIVE_EXPORTERS = {"", "none", "console", "otlp"}
HTTP_PROTOCOLS = ("http/protobuf", "http/json")
DEFAULT_PROTOCOL = "http/json"
_DEFAULT_PROTOCOLS = {"metrics": DEFAULT_PROTOCOL, "logs": DEFAULT_PROTOCOL}


class Plan:
    """The decision, and the bound listening socket when the built-in receiver is used."""

    __slots__ = ("endpoint", "forward_signals", "note", "protocols", "sock", "use_builtin")

    def __init__(
        self,
        use_builtin: bool,
        forward_signals: tuple[str, ...] = (),
        note: str | None = None,
        protocols: dict[str, str] | None = None,
    ) -> None:
        self.use_builtin = use_builtin
        self.forward_signals = forward_signals  # signals to forward to the user's endpoint
        self.note = note  # why the built-in receiver is not used, for the record's notes
        # What Claude speaks to the receiver, per signal: the user's protocol when forwarding.
        self.protocols = protocols or dict(_DEFAULT_PROTOCOLS)
        self.sock: _socket.socket | None = None
        self.endpoint: str | None = None

    def take_fd(self) -> int | None:
        """Hand the listening socket's descriptor over (to anyio, which then owns and closes it)."""
        if self.sock is None:
            return None
        fd: int = self.sock.detach()
        self.sock = None
        return fd

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _protocol(env: dict[str, str], signal: str) -> str:
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "").strip()
    return (specific or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() or "http/protobuf").lower()


def _exporters(env: dict[str, str], var: str) -> set[str]:
    return {p.strip().lower() for p in env.get(var, "").split(",") if p.strip()}


def _user_endpoint(env: dict[str, str], signal: str) -> bool:
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    )


def decide(env: dict[str, str]) -> Plan:
    """What to do given the user's environment (pure: the socket is bound by `prepare`)."""
    forward: list[str] = []
    protocols = dict(_DEFAULT_PROTOCOLS)
    for signal, var in (("metrics", "OTEL_METRICS_EXPORTER"), ("logs", "OTEL_LOGS_EXPORTER")):
        exporters = _exporters(env, var)
        if not exporters and _user_endpoint(env, signal):
            exporters = {"otlp"}  # an endpoint alone means OTLP, as modes.build_invocation reads it
        other = exporters - _PASSIVE_EXPORTERS
        if other:
            return Plan(
                False, note=f"your {var}={','.join(sorted(other))} is left untouched; no built-in receiver"
            )
        if "otlp" in exporters and _user_endpoint(env, signal):
            protocol = _protocol(env, signal)
            if protocol not in HTTP_PROTOCOLS:
                return Plan(
                    False,
                    note=(
                        f"your OTLP exporter uses {protocol}, which claude-run cannot forward; "
                        "left untouched, no built-in receiver (set OTEL_EXPORTER_OTLP_PROTOCOL="
                        "http/protobuf or http/json to get both)"
                    ),
                )
            forward.append(signal)
            protocols[signal] = protocol
    return Plan(True, tuple(forward), protocols=protocols)


def prepare(env: dict[str, str], host: str = "127.0.0.1") -> Plan:
    """`decide`, then bind the receiver's socket (microseconds) so the endpoint is known before spawn."""
    plan = decide(env)
    if not plan.use_builtin:
        return plan
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        return Plan(False, note=f"built-in telemetry receiver could not listen: {exc.strerror or exc}")
    plan.sock = sock
    bound_host, port = sock.getsockname()[:2]
    plan.endpoint = f"http://{bound_host}:{port}"
    return plan
