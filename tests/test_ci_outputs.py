"""GitHub step outputs (file format, multiline), the step summary, the dotenv file."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from claude_run.budgets.check import BudgetSpec, BudgetState, PeriodState, Spend
from claude_run.ci import outputs as ci_outputs

RECORD: dict[str, Any] = {
    "id": "01JABCDEFGHJKMNPQRSTVWXYZ0",
    "status": "success",
    "exit_code": 0,
    "model": "claude-sonnet-4-5",
    "tokens": {"input": 207, "output": 45, "cache_read": 8505, "cache_creation": 3065},
    "cost_usd": 0.015341249999999999,
    "cost_source": "claude",
    "duration_ms": 61_500,
    "num_turns": 2,
    "session_id": "3a9b37e0-e4a4-4c8c-a149-41ac5477a4c0",
    "tags": {"task": "lint|fix"},
}


def test_single_line_values_use_name_equals_value() -> None:
    text = ci_outputs.format_outputs({"cost_usd": "0.01534125", "status": "success"})
    assert text == "cost_usd=0.01534125\nstatus=success\n"


def test_multiline_value_uses_a_random_heredoc_delimiter() -> None:
    text = ci_outputs.format_outputs({"result": "line 1\nline 2", "status": "ok"})
    lines = text.split("\n")
    name, delim = lines[0].split("<<")
    assert name == "result"
    assert delim.startswith("ghadelimiter_") and len(delim) > len("ghadelimiter_") + 16
    assert lines[1:4] == ["line 1", "line 2", delim]
    assert lines[4] == "status=ok"
    # A second write draws a fresh delimiter: a value cannot be crafted to close a known one.
    again = ci_outputs.format_outputs({"result": "a\nb"}).split("\n")[0]
    assert again.split("<<")[1] != delim


def test_delimiter_found_in_the_value_is_redrawn() -> None:
    seq = iter(["EOF", "EOF", "OTHER"])
    text = ci_outputs.format_outputs({"result": "x\nEOF\ny"}, make_delimiter=lambda: next(seq))
    assert text == "result<<OTHER\nx\nEOF\ny\nOTHER\n"


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
        st.text(alphabet=st.characters(exclude_categories=("Cs",))),
    )
)
def test_outputs_round_trip_through_the_runner_format(values: dict[str, str]) -> None:
    assert ci_outputs.parse_outputs(ci_outputs.format_outputs(values)) == values


def test_output_values_carry_the_record() -> None:
    values = ci_outputs.output_values(RECORD, None, recorded=True, result_text="done\nall good")
    assert values["cost_usd"] == "0.01534125"
    assert values["input_tokens"] == "207"
    assert values["output_tokens"] == "45"
    assert values["cache_read_tokens"] == "8505"
    assert values["cache_creation_tokens"] == "3065"
    assert values["session_id"] == RECORD["session_id"]
    assert values["status"] == "success"
    assert values["record_id"] == RECORD["id"]
    assert values["budget_exceeded"] == "false"
    assert values["recorded"] == "true"
    assert values["result"] == "done\nall good"
    assert set(values) == set(ci_outputs.OUTPUT_NAMES)


def test_unpriced_cost_is_empty_not_zero() -> None:
    rec = {**RECORD, "cost_usd": None, "cost_source": "unpriced"}
    values = ci_outputs.output_values(rec, None, recorded=False)
    assert values["cost_usd"] == ""
    assert values["cost_source"] == "unpriced"
    assert "unpriced" in ci_outputs.summary_markdown(rec)


def test_fmt_cost_has_no_float_noise_or_exponent() -> None:
    assert ci_outputs.fmt_cost(0.015341249999999999) == "0.01534125"
    assert ci_outputs.fmt_cost(1e-7) == "0.0000001"
    assert ci_outputs.fmt_cost(0) == "0"
    assert ci_outputs.fmt_cost(12.5) == "12.5"


def _budget(before: float, limit: float, run: float | None) -> BudgetState:
    start = datetime(2026, 11, 23, tzinfo=timezone.utc)
    p = PeriodState("daily", limit, start, start, Spend(usd=before, records=3, unpriced=1))
    return BudgetState(BudgetSpec(daily=limit), [p]).with_run(run)


def test_step_summary_table() -> None:
    md = ci_outputs.summary_markdown(RECORD, _budget(4.99, 5.0, 0.02))
    assert md.startswith("### claude-run: success\n")
    rows = dict(
        (cells[1].strip(), cells[2].strip())
        for cells in (line.split("|") for line in md.splitlines())
        if len(cells) >= 4
    )
    assert rows["Status"] == "✅ success"
    assert rows["Model"] == "claude-sonnet-4-5"
    assert rows["Input tokens"] == "207"
    assert rows["Output tokens"] == "45"
    assert rows["Cache read tokens"] == "8,505"
    assert rows["Cache write tokens"] == "3,065"
    assert rows["Cost"] == "$0.0153"
    assert rows["Duration"] == "1m01s"
    assert rows["Turns"] == "2"
    assert rows["Daily budget"].startswith("⚠️ **reached**: $5.01 of $5.00")
    assert "1 unpriced run(s) not counted" in rows["Daily budget"]
    assert "`task=lint\\|fix`" in md  # the tag's pipe is escaped, the table keeps its columns
    assert md.endswith("\n\n")  # a second run's table starts on its own block


def test_summary_escapes_markup_from_outside() -> None:
    rec = {**RECORD, "model": "<img src=x onerror=alert(1)>", "status": "error"}
    md = ci_outputs.summary_markdown(rec)
    assert "<img" not in md and "&lt;img" in md
    assert "❌ error" in md


def test_write_for_run_writes_each_file_the_env_names(tmp_path: Path) -> None:
    out, summary, dotenv = tmp_path / "out", tmp_path / "summary.md", tmp_path / "claude.env"
    out.write_text("earlier=1\n")  # other steps' outputs stay
    env = {"GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary), "CLAUDE_RUN_DOTENV": str(dotenv)}
    warnings = ci_outputs.write_for_run(RECORD, _budget(0, 5, 0.02), env, recorded=True, result_text="a\nb")
    assert warnings == []
    parsed = ci_outputs.parse_outputs(out.read_text())
    assert parsed["earlier"] == "1"
    assert parsed["result"] == "a\nb"
    assert parsed["budget_exceeded"] == "false"
    assert "| Daily budget | ok: $0.02 of $5.00" in summary.read_text()
    env_lines = dotenv.read_text().splitlines()
    assert "CLAUDE_RUN_COST_USD=0.01534125" in env_lines
    assert "CLAUDE_RUN_CACHE_READ_TOKENS=8505" in env_lines
    assert not any(line.startswith("CLAUDE_RUN_RESULT=") for line in env_lines)  # multiline: left out


def test_unwritable_output_file_is_a_warning(tmp_path: Path) -> None:
    env = {"GITHUB_OUTPUT": str(tmp_path / "missing-dir" / "out")}
    warnings = ci_outputs.write_for_run(RECORD, None, env, recorded=True)
    assert len(warnings) == 1 and "cannot write CI file" in warnings[0]


def test_nothing_written_outside_ci(tmp_path: Path) -> None:
    assert ci_outputs.write_for_run(RECORD, None, {}, recorded=True) == []
    assert list(tmp_path.iterdir()) == []


def test_refusal_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ci_outputs.write_for_refusal("daily budget exceeded: $5.10 spent of $5.00", {"GITHUB_OUTPUT": str(out)})
    parsed = ci_outputs.parse_outputs(out.read_text())
    assert parsed["status"] == "refused"
    assert parsed["budget_exceeded"] == "true"
    assert parsed["exit_code"] == "75"
    assert parsed["cost_usd"] == ""


def test_output_names_are_distinct_and_valid() -> None:
    names = ci_outputs.OUTPUT_NAMES
    assert len(set(names)) == len(names)
    for a, b in itertools.combinations(names, 2):
        assert a != b
    ci_outputs.format_outputs(dict.fromkeys(names, "x"))
