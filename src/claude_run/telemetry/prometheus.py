"""The ledger as Prometheus exposition text (format 0.0.4): counters a scrape can rate() and sum().

Series (all counters over the whole ledger, so they only grow while the ledger is appended to):
- `claude_run_runs_total{status, mode, project, tag_*}`
- `claude_run_tokens_total{type, model, project, tag_*}` (type: input, output, cache_read, cache_creation)
- `claude_run_cost_usd_total{model, project, tag_*}` (priced usage only; unpriced runs carry no $0)
- `claude_run_unpriced_runs_total{model, project, tag_*}`
- `claude_run_api_requests_total{model, project, tag_*}` (from telemetry, when the runs had it)
- `claude_run_duration_seconds_total{project, tag_*}`
- `claude_run_last_run_timestamp_seconds` (gauge), `claude_run_ledger_records` (gauge)

Cardinality is bounded: projects, models and the values of each tag chosen as a label (`tag_labels`)
keep their top N by cost (ties by run count, then name); every other value becomes "other". Moving a
value into or out of the top N shifts its history between series, which Prometheus sees as a counter
reset of "other" (rate() copes; keep N stable).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..fold import effective
from ..record import TOKEN_KINDS, parse_iso

OTHER = "other"
UNKNOWN = "unknown"
_LABEL_RE = re.compile(r"[^a-zA-Z0-9_]")


def label_name(tag: str) -> str:
    name = "tag_" + _LABEL_RE.sub("_", tag)
    return name


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _cost(rec: dict[str, Any]) -> float:
    c = rec.get("cost_usd")
    return float(c) if isinstance(c, (int, float)) and rec.get("cost_source") != "unpriced" else 0.0


def top_values(weights: dict[str, tuple[float, int]], n: int) -> set[str]:
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    return {name for name, _ in ranked[: max(n, 0)]}


@dataclass
class Exposition:
    """Accumulate samples per (metric, labels); render them sorted, with HELP and TYPE once each."""

    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(default_factory=dict)
    meta: dict[str, tuple[str, str]] = field(default_factory=dict)

    def declare(self, name: str, kind: str, help_text: str) -> None:
        self.meta[name] = (kind, help_text)
        self.samples.setdefault(name, {})

    def add(self, name: str, labels: dict[str, str], value: float) -> None:
        key = tuple(sorted(labels.items()))
        series = self.samples.setdefault(name, {})
        series[key] = series.get(key, 0.0) + value

    def set(self, name: str, labels: dict[str, str], value: float) -> None:
        self.samples.setdefault(name, {})[tuple(sorted(labels.items()))] = value

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self.samples):
            kind, help_text = self.meta.get(name, ("untyped", ""))
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for key in sorted(self.samples[name]):
                labels = ",".join(f'{k}="{escape(v)}"' for k, v in key)
                lines.append(
                    f"{name}{{{labels}}} {_num(self.samples[name][key])}"
                    if labels
                    else f"{name} {_num(self.samples[name][key])}"
                )
        return "\n".join(lines) + "\n"


def exposition(
    records: Iterable[dict[str, Any]],
    *,
    tag_labels: Sequence[str] = (),
    top_projects: int = 10,
    top_models: int = 10,
    top_tag_values: int = 10,
) -> str:
    rows = effective(records)
    # Rank each labelled dimension by cost (then runs) to keep its cardinality bounded.
    proj_w: dict[str, tuple[float, int]] = {}
    model_w: dict[str, tuple[float, int]] = {}
    tag_w: dict[str, dict[str, tuple[float, int]]] = {t: {} for t in tag_labels}

    def bump(d: dict[str, tuple[float, int]], key: str, cost: float) -> None:
        c, n = d.get(key, (0.0, 0))
        d[key] = (c + cost, n + 1)

    for r in rows:
        bump(proj_w, str(r.get("project") or UNKNOWN), _cost(r))
        for model, usage in _models(r):
            cost = usage.get("cost_usd")
            bump(model_w, model, float(cost) if isinstance(cost, (int, float)) else 0.0)
        tags = _tags(r)
        for t in tag_labels:
            value = tags.get(t)
            if value is not None:
                bump(tag_w[t], str(value), _cost(r))
    keep_proj = top_values(proj_w, top_projects)
    keep_model = top_values(model_w, top_models)
    keep_tag = {t: top_values(tag_w[t], top_tag_values) for t in tag_labels}

    exp = Exposition()
    exp.declare("claude_run_runs_total", "counter", "Runs recorded in the ledger, by status.")
    exp.declare("claude_run_tokens_total", "counter", "Tokens used, by type and model.")
    exp.declare("claude_run_cost_usd_total", "counter", "Cost in USD of priced usage, by model.")
    exp.declare(
        "claude_run_unpriced_runs_total", "counter", "Runs whose cost is unknown (never counted as $0)."
    )
    exp.declare("claude_run_api_requests_total", "counter", "API requests seen by telemetry, by model.")
    exp.declare("claude_run_duration_seconds_total", "counter", "Wall time of recorded runs.")
    exp.declare("claude_run_last_run_timestamp_seconds", "gauge", "When the newest recorded run ended.")
    exp.declare(
        "claude_run_ledger_records", "gauge", "Records counted (superseded and duplicate ones left out)."
    )
    # Fold into plain tuple keys first (one dict update per sample), label dicts only per series.
    acc: dict[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]], float] = {}

    def add(
        name: str, base: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...], v: float
    ) -> None:
        key = (name, base, extra)
        acc[key] = acc.get(key, 0.0) + v

    tag_names = [label_name(t) for t in tag_labels]
    bases: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
    last = ""
    for r in rows:
        tags = _tags(r)
        raw = (str(r.get("project") or UNKNOWN), *(str(tags.get(t, "\0")) for t in tag_labels))
        base = bases.get(raw)
        if base is None:
            labels = [("project", _bounded(raw[0], keep_proj))]
            for name, t, value in zip(tag_names, tag_labels, raw[1:], strict=True):
                labels.append((name, "" if value == "\0" else _bounded(value, keep_tag[t])))
            base = bases[raw] = tuple(labels)
        add(
            "claude_run_runs_total",
            base,
            (("status", str(r.get("status") or UNKNOWN)), ("mode", str(r.get("mode") or UNKNOWN))),
            1,
        )
        priced = r.get("cost_source") != "unpriced" and r.get("cost_usd") is not None
        for model, usage in _models(r):
            mlabel = ("model", _bounded(model, keep_model))
            for kind in TOKEN_KINDS:
                v = usage.get(kind)
                if isinstance(v, (int, float)) and v:
                    add("claude_run_tokens_total", base, (mlabel, ("type", kind)), float(v))
            cost = usage.get("cost_usd")
            if priced and isinstance(cost, (int, float)):
                add("claude_run_cost_usd_total", base, (mlabel,), float(cost))
        if not priced:
            add(
                "claude_run_unpriced_runs_total",
                base,
                (("model", _bounded(str(r.get("model") or UNKNOWN), keep_model)),),
                1,
            )
        tel = r.get("telemetry")
        if isinstance(tel, dict):
            requests = tel.get("requests")
            by_model = requests.get("by_model") if isinstance(requests, dict) else None
            if isinstance(by_model, dict):
                for model, count in by_model.items():
                    if isinstance(count, int):
                        add(
                            "claude_run_api_requests_total",
                            base,
                            (("model", _bounded(str(model), keep_model)),),
                            count,
                        )
        dur = r.get("duration_ms")
        if isinstance(dur, (int, float)):
            add("claude_run_duration_seconds_total", base, (), dur / 1000)
        ended = r.get("ended_at")
        if isinstance(ended, str) and ended > last:
            last = ended  # our timestamps are uniform ISO-8601 UTC: the greatest string is the latest
    for (name, base, extra), value in acc.items():
        exp.add(name, dict(base + extra), value)
    if last:
        with contextlib.suppress(ValueError):
            exp.set("claude_run_last_run_timestamp_seconds", {}, parse_iso(last).timestamp())
    exp.set("claude_run_ledger_records", {}, len(rows))
    return exp.render()


def _tags(r: dict[str, Any]) -> dict[str, Any]:
    tags = r.get("tags")
    return tags if isinstance(tags, dict) else {}


def _bounded(value: str, keep: set[str]) -> str:
    return value if value in keep else OTHER


def _models(r: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Per-model usage; a record without `models` counts under its main model."""
    models = r.get("models")
    if isinstance(models, dict) and models:
        for name, usage in models.items():
            if isinstance(usage, dict):
                yield str(name), usage
        return
    tokens = r.get("tokens")
    tokens = tokens if isinstance(tokens, dict) else {}
    yield str(r.get("model") or UNKNOWN), {**tokens, "cost_usd": r.get("cost_usd")}
