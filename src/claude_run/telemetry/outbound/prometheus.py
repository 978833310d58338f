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

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...record.schema import TOKEN_KINDS

if TYPE_CHECKING:
    from ...query.engine import Engine

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
    eng: Engine,
    *,
    tag_labels: Sequence[str] = (),
    top_projects: int = 10,
    top_models: int = 10,
    top_tag_values: int = 10,
) -> str:
    """The counted records of an open ledger (`query.engine`) as exposition text. Tokens and costs
    per model are the engine's model parts (the residual on the main part), as `summary --by model`."""
    tag_cols = "".join(f", l.tags[{_sql_text(t)}] AS t{i}" for i, t in enumerate(tag_labels))
    tag_names = [label_name(t) for t in tag_labels]
    n_tags = len(tag_labels)
    runs = eng.con.execute(
        f"""SELECT coalesce(l.project, '{UNKNOWN}'){tag_cols}, coalesce(l.status, '{UNKNOWN}'),
                   coalesce(l.mode, '{UNKNOWN}'), l.priced, l.model, count(*),
                   sum(l.cost_usd) FILTER (WHERE l.priced), sum(l.duration_ms), max(l.ended_at)
            FROM _lines l WHERE l.counted GROUP BY ALL"""
    ).fetchall()
    parts = eng.con.execute(
        f"""SELECT coalesce(l.project, '{UNKNOWN}'){tag_cols}, p.model, sum(p.input), sum(p.output),
                   sum(p.cache_read), sum(p.cache_creation), sum(p.cost) FILTER (WHERE p.part_priced)
            FROM _lines l JOIN _parts p USING (rid) WHERE l.counted GROUP BY ALL"""
    ).fetchall()
    requests = eng.con.execute(
        f"""SELECT coalesce(l.project, '{UNKNOWN}'){tag_cols}, e.key, sum(e.value)
            FROM (SELECT *, unnest(map_entries(api_requests)) AS e FROM _lines WHERE counted) l
            GROUP BY ALL"""
    ).fetchall()

    # Rank each labelled dimension by cost (then runs) to keep its cardinality bounded.
    proj_w: dict[str, tuple[float, int]] = {}
    model_w: dict[str, tuple[float, int]] = {}
    tag_w: dict[str, dict[str, tuple[float, int]]] = {t: {} for t in tag_labels}

    def bump(d: dict[str, tuple[float, int]], key: str, cost: float, n: int) -> None:
        c, k = d.get(key, (0.0, 0))
        d[key] = (c + cost, k + n)

    for r in runs:
        cost, n = float(r[n_tags + 6] or 0), int(r[n_tags + 5])
        bump(proj_w, str(r[0]), cost, n)
        for t, value in zip(tag_labels, r[1 : 1 + n_tags], strict=True):
            if value is not None:
                bump(tag_w[t], str(value), cost, n)
    for r in parts:
        bump(model_w, str(r[1 + n_tags]), float(r[6 + n_tags] or 0), 1)
    keep_proj = top_values(proj_w, top_projects)
    keep_model = top_values(model_w, top_models)
    keep_tag = {t: top_values(tag_w[t], top_tag_values) for t in tag_labels}

    def base(row: tuple[Any, ...]) -> dict[str, str]:
        labels = {"project": _bounded(str(row[0]), keep_proj)}
        for name, t, value in zip(tag_names, tag_labels, row[1 : 1 + n_tags], strict=True):
            labels[name] = "" if value is None else _bounded(str(value), keep_tag[t])
        return labels

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
    records = 0
    last = None
    for r in runs:
        labels = base(r)
        status, mode, priced, model, n = r[1 + n_tags : 6 + n_tags]
        records += int(n)
        exp.add("claude_run_runs_total", {**labels, "status": str(status), "mode": str(mode)}, int(n))
        if not priced:
            exp.add(
                "claude_run_unpriced_runs_total", {**labels, "model": _bounded(str(model), keep_model)}, n
            )
        dur, ended = r[7 + n_tags], r[8 + n_tags]
        if dur is not None:
            exp.add("claude_run_duration_seconds_total", labels, float(dur) / 1000)
        if ended is not None and (last is None or ended > last):
            last = ended
    for r in parts:
        labels = {**base(r), "model": _bounded(str(r[1 + n_tags]), keep_model)}
        for kind, value in zip(TOKEN_KINDS, r[2 + n_tags : 6 + n_tags], strict=True):
            if value:
                exp.add("claude_run_tokens_total", {**labels, "type": kind}, float(value))
        if r[6 + n_tags] is not None:
            exp.add("claude_run_cost_usd_total", labels, float(r[6 + n_tags]))
    for r in requests:
        labels = {**base(r), "model": _bounded(str(r[1 + n_tags]), keep_model)}
        exp.add("claude_run_api_requests_total", labels, float(r[2 + n_tags] or 0))
    if last is not None:
        exp.set("claude_run_last_run_timestamp_seconds", {}, last.timestamp())
    exp.set("claude_run_ledger_records", {}, records)
    return exp.render()


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _bounded(value: str, keep: set[str]) -> str:
    return value if value in keep else OTHER
