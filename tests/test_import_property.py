"""Property: importing a transcript in any split of appends gives the totals of one import."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.transcripts.importer import run_import
from support.import_lines import SID, assistant, cost_state

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "mystery-model")

line_st = st.one_of(
    st.builds(
        lambda mid, rid, inp, out, model, side: assistant(
            f"msg_{mid}", f"req_{rid}", inp=inp, out=out, cr=inp * 3, cc=out, model=model, sidechain=side
        ),
        st.integers(0, 5),
        st.integers(0, 2),
        st.integers(0, 500),
        st.integers(0, 500),
        st.sampled_from(MODELS),
        st.booleans(),
    ),
    st.builds(lambda n: assistant(f"msg_anon{n}", None, inp=n), st.integers(0, 50)),
    st.just('{"type":"attachment","attachment":{"type":"date"},"timestamp":"2026-11-20T10:00:00.000Z"}'),
    st.just('{"type":"assistant","message":{"usage":{"input_tokens":'),  # torn forever
    st.builds(
        lambda cost: cost_state({"claude-sonnet-4-5": {"inputTokens": 1, "costUSD": cost}}),
        st.floats(0, 1, allow_nan=False),
    ),
)


def _live(ledger: Path) -> dict[str, Any]:
    recs = [json.loads(x) for x in ledger.read_text().splitlines()] if ledger.exists() else []
    superseded = {r["supersedes"] for r in recs if r.get("supersedes")}
    live = [r for r in recs if r["id"] not in superseded]
    assert len(live) <= 1
    if not live:
        return {}
    r = live[0]
    return {
        "tokens": r["tokens"],
        "models": {k: {kk: vv for kk, vv in v.items() if kk != "cost_usd"} for k, v in r["models"].items()},
        "costs": {k: v["cost_usd"] for k, v in r["models"].items()},
        "side": r.get("sidechain_tokens"),
        "turns": r["num_turns"],
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line_st, min_size=1, max_size=25), cuts=st.lists(st.floats(0, 1), max_size=5))
def test_any_split_of_appends_gives_the_same_totals(lines: list[str], cuts: list[float]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    # Cut anywhere, mid-line included: an import may run while Claude is writing a line.
    points = sorted({int(c * len(data)) for c in cuts} | {len(data)})
    with tempfile.TemporaryDirectory() as once_dir, tempfile.TemporaryDirectory() as split_dir:
        once, split = Path(once_dir), Path(split_dir)
        for root in (once, split):
            (root / "projects" / "p").mkdir(parents=True)
        (once / "projects" / "p" / f"{SID}.jsonl").write_bytes(data)
        run_import(once / "ledger.jsonl", [once], workers=1)
        path = split / "projects" / "p" / f"{SID}.jsonl"
        done = 0
        for point in points:
            with open(path, "ab") as fh:
                fh.write(data[done:point])
            done = point
            run_import(split / "ledger.jsonl", [split], workers=1)
        assert _live(split / "ledger.jsonl") == _live(once / "ledger.jsonl")


msg_st = st.tuples(
    st.sampled_from(MODELS),
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.integers(0, 2**20),
    st.booleans(),
    st.none(),
    st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
)


@given(st.dictionaries(st.text(min_size=1), msg_st, max_size=30))
def test_packed_messages_round_trip(messages: dict[str, Any]) -> None:
    from claude_run.transcripts.packed import Packed

    packed = Packed.pack(messages)
    assert packed.unpack() == messages
    assert Packed.from_json(json.loads(json.dumps(packed.to_json()))).unpack() == messages
