"""The record → units rules as first written, one general path: the oracle for the short paths
`units.record_parts` / `units.record_dims` take for the usual record shapes (tests/test_reports_units.py)."""

from __future__ import annotations

from typing import Any

from claude_run.reports.units import UNKNOWN_MODEL, _int, _str, fixed, is_priced, tag_tuple


def slow_record_parts(rec: dict[str, Any]) -> list[list[Any]]:
    """[model, record priced, part priced, runs, parts, input, output, cache_read, cache_creation,
    cost] per model the record used; the main part carries `runs` and the residual."""
    cost = rec.get("cost_usd")
    rec_priced = 1 if is_priced(cost, rec.get("cost_source")) else 0
    rec_cost = fixed(cost) if rec_priced else None
    tokens = rec.get("tokens")
    if type(tokens) is not dict:
        tokens = {}
    t_in, t_out = _int(tokens.get("input")), _int(tokens.get("output"))
    t_cr, t_cc = _int(tokens.get("cache_read")), _int(tokens.get("cache_creation"))
    main_model = _str(rec.get("model")) or UNKNOWN_MODEL
    models = rec.get("models")
    if type(models) is not dict or not models:
        return [[main_model, rec_priced, rec_priced, 1, 1, t_in, t_out, t_cr, t_cc, rec_cost or 0]]
    out: list[list[Any]] = []
    main: list[Any] | None = None
    s_in = s_out = s_cr = s_cc = s_cost = 0
    for name, part in models.items():
        if type(part) is not dict:
            part = {}
        model = name if type(name) is str and name else UNKNOWN_MODEL
        p_cost_raw = part.get("cost_usd")
        p_priced = 1 if is_priced(p_cost_raw, part.get("cost_source")) else 0
        p_cost = (fixed(p_cost_raw) if p_priced else 0) or 0
        p_in, p_out = _int(part.get("input")), _int(part.get("output"))
        p_cr, p_cc = _int(part.get("cache_read")), _int(part.get("cache_creation"))
        s_in += p_in
        s_out += p_out
        s_cr += p_cr
        s_cc += p_cc
        s_cost += p_cost
        row = [model, rec_priced, p_priced, 0, 1, p_in, p_out, p_cr, p_cc, p_cost]
        if model == main_model and main is None:
            main = row
        out.append(row)
    if main is None:
        main = out[0]
    # The record's own totals are authoritative; model parts that do not add up leave a residual.
    main[3] = 1
    main[5] += t_in - s_in
    main[6] += t_out - s_out
    main[7] += t_cr - s_cr
    main[8] += t_cc - s_cc
    if rec_cost is not None:
        main[9] += rec_cost - s_cost
    return out


def slow_record_dims(
    rec: dict[str, Any], dropped: frozenset[str] | set[str] | tuple[()] = frozenset()
) -> list[Any]:
    """[project, branch, status, mode, ci_job, tags]."""
    git = rec.get("git")
    ci = rec.get("ci")
    out = [
        rec.get("project"),
        git.get("branch") if type(git) is dict else None,
        rec.get("status"),
        rec.get("mode"),
        ci.get("job") if type(ci) is dict else None,
    ]
    for i in range(5):
        v = out[i]
        if type(v) is not str or not v:
            out[i] = _str(v)
    tags = rec.get("tags")
    if type(tags) is dict and tags:
        if dropped or not all(type(v) is str for v in tags.values()):
            out.append(tag_tuple(tags, dropped))
        else:
            out.append(tuple(sorted(tags.items())))
    else:
        out.append(())
    return out
