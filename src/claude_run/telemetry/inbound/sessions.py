"""`telemetry serve`: group what Claude Code sessions send by `session.id`, and turn each into a record.

When a session's record is written: once the session has been idle (nothing received) for `idle_s`
seconds, and for every session with unwritten data when the service stops. A session that receives
more after its record was written gets a new, complete record whose `supersedes` names the previous
one; reports count only the newest of such a chain. Data carrying the resource attribute
`claude_run.run_id` comes from a run claude-run records itself (forwarded to this service): it is
ignored here, so no run is counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .collector import TOKEN_ATTRS, Collector
from .otlp import decode_logs, decode_metrics


@dataclass
class SessionState:
    collector: Collector = field(default_factory=Collector)
    last_seen: float = 0.0
    dirty: bool = False
    record_id: str | None = None  # the latest record written for this session


@dataclass
class SessionBook:
    idle_s: float = 120.0
    sessions: dict[str, SessionState] = field(default_factory=dict)
    ignored_tracked: int = 0  # items from claude-run's own runs
    without_session: int = 0

    def feed(self, kind: str, data: Mapping[str, Any], now: float) -> None:
        """The receiver's sink: decode, then fold each item into its session's collector."""
        if kind == "logs":
            for ev in decode_logs(data):
                state = self._state(ev.attributes.get("session.id"), ev.resource, now)
                if state is not None:
                    state.collector.add_events([ev])
        elif kind == "metrics":
            for point in decode_metrics(data):
                state = self._state(point.attributes.get("session.id"), point.resource, now)
                if state is not None:
                    state.collector.add_points([point])

    def _state(self, sid: object, resource: Mapping[str, Any], now: float) -> SessionState | None:
        if resource.get("claude_run.run_id"):
            self.ignored_tracked += 1
            return None
        if not isinstance(sid, str) or not sid:
            self.without_session += 1
            return None
        state = self.sessions.setdefault(sid, SessionState())
        state.last_seen = now
        state.dirty = True
        return state

    def due(self, now: float, *, all_dirty: bool = False) -> list[str]:
        """Sessions whose record should be written now (idle long enough, or everything at shutdown)."""
        return [
            sid
            for sid, st in self.sessions.items()
            if st.dirty and st.collector.api_requests and (all_dirty or now - st.last_seen >= self.idle_s)
        ]

    def take_records(self, sids: list[str], make_id: Any, tags: Mapping[str, str]) -> list[dict[str, Any]]:
        """Build the records of `sids` and mark them written."""
        out = []
        for sid in sids:
            st = self.sessions[sid]
            rec = session_record(sid, st.collector, make_id(), tags)
            if st.record_id:
                rec["supersedes"] = st.record_id
            st.record_id = rec["id"]
            st.dirty = False
            out.append(rec)
        return out


def session_record(sid: str, c: Collector, rid: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """A ledger record (mode `telemetry`) from one session's telemetry."""
    from ...record.build import build_record, main_model
    from ...record.schema import TELEMETRY, iso_utc
    from ...stream.contextwin import context_field

    models: dict[str, dict[str, Any]] = {}
    for name, m in c.models().items():
        models[name] = {kind: m[kind] for kind in TOKEN_ATTRS}
        models[name]["cost_usd"] = m["cost_usd"]
        models[name]["cost_source"] = "claude"
    detail = c.detail()
    reqs = detail["requests"]
    status = "error" if reqs["api_errors"] and not reqs["count"] else "success"
    version = c.resource.get("service.version")
    first, last = c.first_ns / 1e9, c.last_ns / 1e9
    fields: dict[str, Any] = {
        "session_id": sid,
        "claude_version": version if isinstance(version, str) else None,
        "model": main_model(
            {k: (int(m["output"]), sum(int(m[t]) for t in TOKEN_ATTRS)) for k, m in models.items()}
        ),
        "tokens": c.tokens(),
        "cost_usd": c.cost_usd(),
        "cost_source": "claude",
        "models": models,
        "duration_ms": int((last - first) * 1000) if first and last else None,
        "num_turns": None,
        "telemetry": detail,
    }
    context = context_field(*c.peak_context(), c.compactions)
    if context is not None:
        fields["context"] = context
    from ...stream.attribution import for_telemetry

    attributed = for_telemetry(c, fields)
    if attributed is not None:
        fields["attribution"] = attributed
    record = build_record(
        record_id=rid,
        started_at=iso_utc(first) if first else None,
        ended_at=iso_utc(last) if last else None,
        mode=TELEMETRY,
        source="telemetry",
        status=status,
        exit_code=None,
        fields=fields,
        tags=tags,
        notes=["recorded by `claude-run telemetry serve` from Claude Code's OpenTelemetry events"],
    )
    return dict(record)
