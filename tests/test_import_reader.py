"""The transcript reader: dedup, sidechain, cost sources, malformed lines, session facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_run.transcripts import read_session, scan_file, session_fields
from claude_run.transcripts.fields import model_cost
from support.import_lines import SID, assistant, cost_state, user, write

SAMPLES = Path("/work/shared/samples/claude-code-2.1.330/transcripts")


def test_streamed_copies_keep_the_largest_usage(tmp_path: Path) -> None:
    # Claude writes a message once per content block; an early copy can carry partial counts.
    path = write(
        tmp_path,
        [
            user(),
            assistant("msg_1", "req_1", out=1),
            assistant("msg_1", "req_1", out=40),
            assistant("msg_1", "req_1", out=40),
            assistant("msg_2", "req_2", out=7),
        ],
    )
    fields = session_fields(path)
    assert fields["tokens"] == {"input": 20, "output": 47, "cache_read": 200, "cache_creation": 40}
    assert fields["num_turns"] == 2


def test_larger_copy_after_a_smaller_one_replaces_it_and_never_adds(tmp_path: Path) -> None:
    path = write(
        tmp_path, [assistant("m", "r", out=3), assistant("m", "r", out=2), assistant("m", "r", out=9)]
    )
    assert session_fields(path)["tokens"]["output"] == 9


def test_same_message_id_other_request_counts_apart(tmp_path: Path) -> None:
    path = write(tmp_path, [assistant("m", "r1"), assistant("m", "r2")])
    assert session_fields(path)["num_turns"] == 2


def test_lines_without_request_id_are_never_deduplicated(tmp_path: Path) -> None:
    # As ccusage: no (id, request) pair, no dedup.
    path = write(tmp_path, [assistant("m", None), assistant("m", None)])
    assert session_fields(path)["tokens"]["input"] == 20


def test_sidechain_counted_once_and_reported_apart(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            assistant("m1", "r1", out=10),
            assistant("s1", "rs1", out=100, sidechain=True, model="claude-haiku-4-5"),
            assistant("s1", "rs1", out=100, sidechain=True, model="claude-haiku-4-5"),
        ],
    )
    fields = session_fields(path)
    assert fields["tokens"]["output"] == 110
    assert fields["sidechain_tokens"]["output"] == 100
    assert fields["models"]["claude-haiku-4-5"]["output"] == 100


def test_subagent_file_folds_into_its_session(tmp_path: Path) -> None:
    from claude_run.transcripts.locate import discover, roots_for

    write(tmp_path, [assistant("m1", "r1")])
    sub = tmp_path / "projects" / "-home-dev-project" / SID / "subagents" / "agent-a1.jsonl"
    sub.parent.mkdir(parents=True)
    sub.write_text(assistant("m2", "r2", sidechain=True) + "\n")
    files = discover(roots_for([tmp_path]))
    assert {f.session_key for f in files} == {SID}
    assert [f.subagent for f in files] == [False, True]


def test_cost_state_wins_when_it_covers_the_transcript(tmp_path: Path) -> None:
    lines = [assistant("m1", "r1", inp=10, out=5, cr=100, cc=20)]
    usage = {
        "inputTokens": 10,
        "outputTokens": 5,
        "cacheReadInputTokens": 100,
        "cacheCreationInputTokens": 20,
    }
    path = write(tmp_path, [*lines, cost_state({"claude-sonnet-4-5": {**usage, "costUSD": 0.5}})])
    fields = session_fields(path)
    assert fields["cost_usd"] == 0.5
    assert fields["cost_source"] == "claude"


def test_cost_state_covering_another_span_is_not_trusted(tmp_path: Path) -> None:
    usage = {"inputTokens": 1, "outputTokens": 1, "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0}
    path = write(
        tmp_path, [assistant("m1", "r1"), cost_state({"claude-sonnet-4-5": {**usage, "costUSD": 9.0}})]
    )
    fields = session_fields(path)
    assert fields["cost_source"] == "estimate"
    assert fields["cost_usd"] == pytest.approx(10 * 3e-6 + 5 * 15e-6 + 100 * 0.3e-6 + 20 * 3.75e-6)


def test_unknown_model_is_unpriced_never_zero(tmp_path: Path) -> None:
    path = write(tmp_path, [assistant("m1", "r1", model="mystery-model-9"), assistant("m2", "r2")])
    fields = session_fields(path)
    assert fields["cost_usd"] is None
    assert fields["cost_source"] == "unpriced"
    assert fields["models"]["mystery-model-9"]["cost_usd"] is None
    assert fields["models"]["claude-sonnet-4-5"]["cost_usd"] > 0
    assert any("mystery-model-9" in n for n in fields["notes"])


def test_per_line_cost_usd_of_old_versions_is_claudes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [assistant("m1", "r1", extra={"costUSD": 0.25}), assistant("m2", "r2", extra={"costUSD": 0.5})],
    )
    fields = session_fields(path)
    assert fields["cost_usd"] == 0.75
    assert fields["cost_source"] == "claude"


def test_long_context_request_priced_per_request() -> None:
    # 250k prompt tokens in ONE request is billed at the long-context tier; the linear sum is not.
    big = ("claude-sonnet-4-5", 250_000, 1000, 0, 0, 0, False, None, None)
    from claude_run import pricing

    direct = pricing.message_cost("claude-sonnet-4-5", input=250_000, output=1000)
    assert model_cost("claude-sonnet-4-5", [big]) == pytest.approx(direct)


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            assistant("m1", "r1"),
            '{"type":"assistant","message":{"usage":{"input_tokens":5',  # torn mid-file
            "not json at all",
            assistant("m2", "r2", extra={"version": ""}),  # ccusage's schema rejects it: so do we
            assistant("m3", "r3", extra={"timestamp": "yesterday"}),
        ],
    )
    session, _ = read_session(path)
    assert len(session.messages) == 1
    assert session.bad_lines == 1  # only lines that looked like usage are parsed at all


def test_torn_last_line_is_left_for_next_time(tmp_path: Path) -> None:
    path = write(tmp_path, [assistant("m1", "r1")])
    whole = path.stat().st_size
    with open(path, "a") as fh:
        fh.write(assistant("m2", "r2")[:50])
    scan = scan_file(str(path))
    assert scan.end == whole
    assert len(scan.messages) == 1


def test_complete_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(assistant("m1", "r1") + "\n" + assistant("m2", "r2"))
    scan = scan_file(str(path))
    assert len(scan.messages) == 2
    assert scan.end == path.stat().st_size


def test_usage_inside_a_string_is_not_a_message(tmp_path: Path) -> None:
    # A tool result that quotes a transcript: its "usage" is escaped and never counted.
    path = write(tmp_path, [user(text=assistant("mx", "rx", inp=999)), assistant("m1", "r1")])
    assert session_fields(path)["tokens"]["input"] == 10


def test_session_facts(tmp_path: Path) -> None:
    from claude_run.transcripts.fields import session_facts

    path = write(tmp_path, [user(entrypoint="sdk-cli"), assistant("m1", "r1", entrypoint="sdk-cli")])
    session, _ = read_session(path)
    facts = session_facts(session)
    assert facts["interactive"] is False
    assert facts["project"] == "project"
    assert facts["git"] == {"branch": "main"}
    assert facts["claude_version"] == "2.1.330"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared Claude Code samples not on this machine")
def test_samples_match_the_mock_truth() -> None:
    # truth.jsonl: text run = request 1, tool run = requests 2 and 3 (the mock's known usage).
    text = session_fields(SAMPLES / "-home-dev-project" / "3ea5fe67-58b4-4f54-b6af-8457015d21e4.jsonl")
    tool = session_fields(SAMPLES / "-home-dev-project" / "3a9b37e0-e4a4-4c8c-a149-41ac5477a4c0.jsonl")
    assert text["tokens"] == {"input": 48, "output": 12, "cache_read": 4101, "cache_creation": 1513}
    assert tool["tokens"] == {
        "input": 85 + 122,
        "output": 19 + 26,
        "cache_read": 4202 + 4303,
        "cache_creation": 1526 + 1539,
    }
    assert tool["cost_source"] == "claude"
    assert tool["cost_usd"] == pytest.approx(0.01534125)


def test_session_fields_counts_subagent_transcripts_from_the_start(tmp_path: Path) -> None:
    path = write(tmp_path, [assistant("m1", "r1", out=10)])
    sub = path.with_suffix("") / "subagents" / "agent-a1.jsonl"
    sub.parent.mkdir(parents=True)
    sub.write_text(
        assistant("s1", "rs1", out=100, sidechain=True) + "\n" + assistant("m1", "r1", out=10) + "\n"
    )
    fields = session_fields(path)
    assert fields["tokens"]["output"] == 110  # m1 copied into the subagent file counts once
    assert fields["sidechain_tokens"]["output"] == 100
    assert session_fields(path, offset=path.stat().st_size)["tokens"]["output"] == 0  # offset: main file only


def test_non_ascii_digits_in_a_timestamp_are_rejected_as_ccusage_does(tmp_path: Path) -> None:
    fullwidth_year = "\uff12\uff10\uff12\uff16"
    odd = assistant("m1", "r1", ts=f"{fullwidth_year}-11-20T10:00:00.000Z")
    path = write(tmp_path, [odd, assistant("m2", "r2")])
    assert session_fields(path)["num_turns"] == 1
