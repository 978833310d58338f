"""Claude Code's own session transcripts (`<config>/projects/<project>/<session_id>.jsonl`).

Each assistant message is written more than once while it streams, with growing usage: messages
are deduplicated by (message id, request id), keeping the copy with the largest usage. The
`cost-state` line, when present, carries Claude's own cumulative cost per model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .events import TokenCounts


def config_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """`CLAUDE_CONFIG_DIR` (comma-separated) else `~/.config/claude` and `~/.claude`."""
    env = os.environ if env is None else env
    configured = env.get("CLAUDE_CONFIG_DIR", "").strip()
    if configured:
        return [Path(p.strip()).expanduser() for p in configured.split(",") if p.strip()]
    home = Path(env.get("HOME") or Path.home())
    return [home / ".config" / "claude", home / ".claude"]


def project_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    return [d / "projects" for d in config_dirs(env) if (d / "projects").is_dir()]


def find_transcript(session_id: str, env: Mapping[str, str] | None = None) -> Path | None:
    for root in project_dirs(env):
        for candidate in root.glob(f"*/{session_id}.jsonl"):
            return candidate
    return None


@dataclass
class SessionUsage:
    session_id: str | None = None
    messages: dict[tuple[str, str], tuple[str, TokenCounts, bool]] = field(default_factory=dict)
    first_ts: str | None = None
    last_ts: str | None = None
    version: str | None = None
    branch: str | None = None
    cwd: str | None = None
    cost_state: dict[str, Any] | None = None
    interactive: bool | None = None
    user_prompts: int = 0

    def per_model(self, include_sidechain: bool = True) -> dict[str, TokenCounts]:
        out: dict[str, TokenCounts] = {}
        for model, tokens, side in self.messages.values():
            if side and not include_sidechain:
                continue
            out[model] = out.get(model, TokenCounts()) + tokens
        return out

    def sidechain_tokens(self) -> TokenCounts:
        total = TokenCounts()
        for _, tokens, side in self.messages.values():
            if side:
                total = total + tokens
        return total


def iter_objects(path: Path, offset: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """(end offset, object) for each complete JSON line from `offset`; a torn last line is left unread."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        pos = offset
        for line in fh:
            if not line.endswith(b"\n"):
                return  # still being written: pick it up next time
            pos += len(line)
            if b'"usage"' not in line and b'"cost-state"' not in line and b'"sessionId"' not in line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                yield pos, obj


def read_session(path: Path, offset: int = 0, into: SessionUsage | None = None) -> tuple[SessionUsage, int]:
    """Fold a transcript (from `offset`) into per-message usage; returns it and the offset read up to."""
    s = into if into is not None else SessionUsage()
    end = offset
    for pos, obj in iter_objects(path, offset):
        end = pos
        kind = obj.get("type")
        s.session_id = s.session_id or obj.get("sessionId")
        ts = obj.get("timestamp")
        if isinstance(ts, str):
            if s.first_ts is None or ts < s.first_ts:
                s.first_ts = ts
            if s.last_ts is None or ts > s.last_ts:
                s.last_ts = ts
        if isinstance(obj.get("version"), str):
            s.version = obj["version"]
        if isinstance(obj.get("gitBranch"), str) and obj["gitBranch"]:
            s.branch = obj["gitBranch"]
        if isinstance(obj.get("cwd"), str):
            s.cwd = s.cwd or obj["cwd"]
        if kind == "cost-state":
            s.cost_state = obj
        elif kind == "user" and not obj.get("isSidechain"):
            entry = obj.get("entrypoint")
            if isinstance(entry, str):
                s.interactive = entry == "cli"
            msg = obj.get("message")
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                s.user_prompts += 1
        elif kind == "assistant":
            msg = obj.get("message")
            if not isinstance(msg, dict):
                continue
            model = msg.get("model")
            if not isinstance(model, str) or model == "<synthetic>":
                continue
            usage = TokenCounts.from_api(msg.get("usage"))
            key = (str(msg.get("id") or obj.get("uuid")), str(obj.get("requestId") or ""))
            known = s.messages.get(key)
            side = bool(obj.get("isSidechain"))
            if known is None or usage.total > known[1].total or usage.output > known[1].output:
                s.messages[key] = (model, usage if known is None else known[1].merge_max(usage), side)
    return s, max(end, offset)


def session_fields(path: Path, offset: int = 0) -> dict[str, Any]:
    """Record fields for one session transcript (or the part of it after `offset`).

    Cost: Claude's `cost-state` figures when the whole transcript was read (they are cumulative for
    the session, so a partial read cannot use them), else list prices per message, else unpriced.
    """
    from . import pricing

    s, _ = read_session(path, offset)
    if offset == 0:
        # Subagents' messages live in `<session>/subagents/agent-*.jsonl` beside the main file.
        for agent_file in sorted(path.with_suffix("").glob("subagents/*.jsonl")):
            read_session(agent_file, 0, into=s)
    per_model_tokens = s.per_model()
    models: dict[str, dict[str, Any]] = {}
    state_models = {}
    if offset == 0 and s.cost_state and isinstance(s.cost_state.get("modelUsage"), dict):
        state_models = s.cost_state["modelUsage"]
    notes: list[str] = []
    for model, tokens in per_model_tokens.items():
        entry: dict[str, Any] = dict(tokens.as_dict())
        state = state_models.get(model) if isinstance(state_models, dict) else None
        cost = state.get("costUSD") if isinstance(state, dict) else None
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            entry["cost_usd"], entry["cost_source"] = float(cost), "claude"
        else:
            est: float | None = 0.0
            for m_model, m_tokens, _side in s.messages.values():
                if m_model != model:
                    continue
                c = pricing.message_cost(
                    model,
                    input=m_tokens.input,
                    output=m_tokens.output,
                    cache_read=m_tokens.cache_read,
                    cache_creation=m_tokens.cache_creation,
                    cache_creation_1h=m_tokens.cache_creation_1h or 0,
                )
                if c is None:
                    est = None
                    break
                est = (est or 0.0) + c
            entry["cost_usd"] = est
            entry["cost_source"] = "estimate" if est is not None else "unpriced"
        models[model] = entry
    tokens_total = TokenCounts()
    for t in per_model_tokens.values():
        tokens_total = tokens_total + t
    sources = {m["cost_source"] for m in models.values() if m["cost_usd"] is not None or m["cost_source"]}
    priced = [m["cost_usd"] for m in models.values() if m["cost_usd"] is not None]
    if not models:
        cost_usd: float | None = 0.0
        source = "claude" if s.cost_state else "estimate"
    elif not priced:
        cost_usd, source = None, "unpriced"
    else:
        cost_usd = float(sum(priced))
        source = "claude" if sources == {"claude"} else "estimate"
    unpriced = sorted(n for n, m in models.items() if m["cost_usd"] is None)
    if unpriced:
        notes.append("no list price for " + ", ".join(unpriced))
    side = s.sidechain_tokens()
    main = None
    if per_model_tokens:
        main = max(per_model_tokens.items(), key=lambda kv: (kv[1].output, kv[1].total))[0]
    fields: dict[str, Any] = {
        "session_id": s.session_id,
        "claude_version": s.version,
        "model": main,
        "tokens": tokens_total.as_dict(),
        "models": models,
        "cost_usd": cost_usd,
        "cost_source": source,
        "num_turns": len(s.messages),
        "transcript": {"first_at": s.first_ts, "last_at": s.last_ts, "offset": offset},
    }
    if side.total:
        fields["sidechain_tokens"] = side.as_dict()
    if notes:
        fields["notes"] = notes
    return fields
