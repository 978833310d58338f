"""Usage folding against real Claude Code 2.1.330 output: the recorded totals equal what the API returned."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.stream.events import AssistantEvent, ResultEvent, StreamEvent, TokenCounts, parse_line
from claude_run.stream.usage import UsageFolder

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "claude-code-2.1.330"
if not SAMPLES.is_dir():  # a clean clone has shared/ beside it; a worktree may not
    SAMPLES = Path("/work/shared/samples/claude-code-2.1.330")

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not present")

# Sonnet 4.5 list prices in USD per token, as in the samples' README ($3 / $15 / $3.75 / $0.30 per MTok).
PRICE = {"input": 3e-6, "output": 15e-6, "cache_creation": 3.75e-6, "cache_read": 0.3e-6}


def truth(scenario_requests: list[int], file: str = "truth.jsonl") -> TokenCounts:
    rows = [orjson.loads(line) for line in (SAMPLES / file).read_bytes().splitlines() if line.strip()]
    total = TokenCounts()
    for row in rows:
        if row["n"] in scenario_requests:
            total = total + TokenCounts(
                input=row["input"],
                output=row["output"],
                cache_read=row["cache_read"],
                cache_creation=row["cache_creation"],
            )
    return total


def fold(name: str, *, drop_result: bool = False) -> UsageFolder:
    folder = UsageFolder()
    for line in (SAMPLES / name).read_bytes().splitlines():
        event = parse_line(line)
        assert event is not None, line[:80]
        if drop_result and isinstance(event, ResultEvent):
            continue
        folder.feed(event)
    return folder


def list_cost(t: TokenCounts) -> float:
    return (
        t.input * PRICE["input"]
        + t.output * PRICE["output"]
        + t.cache_creation * PRICE["cache_creation"]
        + t.cache_read * PRICE["cache_read"]
    )


def _same_tokens(a: TokenCounts, b: TokenCounts) -> None:
    assert (a.input, a.output, a.cache_read, a.cache_creation) == (
        b.input,
        b.output,
        b.cache_read,
        b.cache_creation,
    )


@pytest.mark.parametrize(
    ("sample", "requests"),
    [("stream-text.jsonl", [1]), ("stream-tool.jsonl", [2, 3]), ("stream-partial.jsonl", [4])],
)
def test_result_totals_equal_truth(sample: str, requests: list[int]) -> None:
    totals = fold(sample).totals()
    expected = truth(requests)
    _same_tokens(totals.tokens, expected)
    assert totals.cost_source == "claude"
    assert totals.cost_usd == pytest.approx(list_cost(expected), rel=1e-9)
    assert set(totals.models) == {"claude-sonnet-4-5"}


def test_budget_stop_takes_tokens_from_model_usage_not_the_zeroed_usage_block() -> None:
    folder = fold("stream-budget.jsonl")
    assert folder.result is not None and folder.result.usage.total == 0  # the trap is real
    totals = folder.totals()
    _same_tokens(totals.tokens, truth([6]))
    assert totals.cost_usd == pytest.approx(list_cost(truth([6])), rel=1e-9)


def test_multi_prompt_takes_the_last_cumulative_result_never_the_sum() -> None:
    folder = fold("stream-multi.jsonl")
    assert folder.result_count == 2
    totals = folder.totals()
    expected = truth([1, 2], "truth-multi.jsonl")
    _same_tokens(totals.tokens, expected)
    assert totals.cost_usd == pytest.approx(list_cost(expected), rel=1e-9)


def test_api_error_records_zero_usage_and_ignores_the_synthetic_message() -> None:
    folder = fold("stream-error-400.jsonl")
    totals = folder.totals()
    assert totals.tokens.total == 0
    assert totals.cost_usd == 0
    assert folder.result is not None and folder.result.api_error_status == 400
    assert not folder.messages  # the <synthetic> assistant message was never billed


def test_without_result_partial_messages_give_exact_tokens_and_an_estimate() -> None:
    # stream-partial carries message_delta events with the final output count.
    totals = fold("stream-partial.jsonl", drop_result=True).totals()
    _same_tokens(totals.tokens, truth([4]))
    assert totals.cost_source == "estimate"
    assert totals.cost_usd == pytest.approx(list_cost(truth([4])), rel=1e-9)
    assert any("no result event" in n for n in totals.notes)


def test_without_result_or_partials_output_is_a_lower_bound_and_still_estimated() -> None:
    totals = fold("stream-tool.jsonl", drop_result=True).totals()
    t = truth([2, 3])
    assert (totals.tokens.input, totals.tokens.cache_read, totals.tokens.cache_creation) == (
        t.input,
        t.cache_read,
        t.cache_creation,
    )
    assert 0 < totals.tokens.output <= t.output
    assert totals.cost_source == "estimate"


def test_unknown_model_without_result_is_unpriced_never_zero() -> None:
    folder = UsageFolder()
    raw = {
        "type": "assistant",
        "message": {"id": "m1", "model": "acme-llm-9", "usage": {"input_tokens": 10, "output_tokens": 5}},
    }
    folder.feed(parse_line(orjson.dumps(raw)))  # type: ignore[arg-type]
    totals = folder.totals()
    assert totals.cost_usd is None
    assert totals.cost_source == "unpriced"
    assert totals.models["acme-llm-9"].cost_source == "unpriced"


def test_one_message_split_over_events_counts_once() -> None:
    folder = fold("stream-tool.jsonl")
    assistant = [
        parse_line(line)
        for line in (SAMPLES / "stream-tool.jsonl").read_bytes().splitlines()
        if b'"assistant"' in line
    ]
    dup = UsageFolder()
    for ev in assistant + assistant:  # the same messages seen twice
        assert ev is not None
        dup.feed(ev)
    assert dup.live_tokens().input == folder.live_tokens().input


usage_dicts = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": st.one_of(st.integers(-5, 10**9), st.none(), st.text(), st.floats()),
        "output_tokens": st.one_of(st.integers(0, 10**9), st.booleans()),
        "cache_read_input_tokens": st.integers(0, 10**9),
        "cache_creation_input_tokens": st.integers(0, 10**9),
        "cache_creation": st.one_of(st.none(), st.dictionaries(st.text(), st.integers())),
    },
)


# The machine is shared and slow at times: generation speed is not what this test is about.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), usage_dicts), max_size=30))
def test_folding_never_raises_and_counts_each_message_once(
    messages: list[tuple[str, dict[str, object]]],
) -> None:
    folder = UsageFolder()
    for mid, usage in messages:
        folder.feed(
            AssistantEvent(
                {"type": "assistant"}, message_id=mid, model="m", usage=TokenCounts.from_api(usage)
            )
        )
    assert len(folder.messages) == len({m for m, _ in messages})
    assert all(v >= 0 for v in folder.live_tokens().as_dict().values())


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_parse_line_never_raises(data: bytes) -> None:
    event = parse_line(data)
    assert event is None or event.raw is not None


def test_message_delta_final_output_wins_over_start_count() -> None:
    folder = UsageFolder()
    folder.feed(
        AssistantEvent({}, message_id="m", model="claude-sonnet-4-5", usage=TokenCounts(input=3, output=1))
    )
    folder.feed(StreamEvent({}, kind="message_delta", message_id="m", usage=TokenCounts(output=40)))
    assert folder.live_tokens().output == 40
    assert folder.live_tokens().input == 3


@pytest.mark.parametrize("name", ["stream-text.jsonl", "stream-tool.jsonl", "stream-tool-otel.jsonl"])
def test_the_live_turn_count_is_the_results(name: str) -> None:
    """Issue 21 item 9: the status line's turns end where the result's num_turns does."""
    folder = fold(name)
    assert folder.result is not None and folder.turns == folder.result.num_turns


def test_a_subagents_messages_are_not_turns() -> None:
    folder = fold("stream-tool.jsonl", drop_result=True)
    before = folder.turns
    line = {
        "type": "assistant",
        "parent_tool_use_id": "toolu_1",
        "session_id": "s",
        "message": {
            "id": "msg_sub",
            "model": "claude-haiku-4-5",
            "usage": {"input_tokens": 5, "output_tokens": 1},
        },
    }
    event = parse_line(orjson.dumps(line))
    assert event is not None
    folder.feed(event)
    assert folder.turns == before and "msg_sub" in folder.messages


def test_the_live_cost_is_shown_before_the_result() -> None:
    """Issue 21 item 9: "cost so far" while claude works, Claude's own figure once the result is in."""
    from claude_run.pricing import rates

    live = fold("stream-tool.jsonl", drop_result=True)
    assert live.live_cost() is None  # without the price table: nothing made up
    estimate = live.live_cost(rates)
    assert estimate is not None and estimate == pytest.approx(list_cost(live.live_tokens()), rel=1e-6)
    done = fold("stream-tool.jsonl")
    assert done.result is not None and done.live_cost(rates) == done.result.total_cost_usd
