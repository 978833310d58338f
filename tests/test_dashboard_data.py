"""The dashboard's view model: figures from a known ledger, live reopening, filters, formatting."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_run.dashboard.data import Filters, Live, build_view, parse_filters
from claude_run.dashboard.render import fmt_usd
from claude_run.errors import UsageError
from claude_run.ledger.store import append, encode
from claude_run.pricing import cache_savings
from claude_run.record.schema import new_id
from support.dashboard_ledger import known_records, make_record, with_quota, write_ledger

NOW = datetime(2026, 6, 15, 9, 0, tzinfo=timezone.utc)
TODAY = date(2026, 6, 15)


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    # Days are local days; pin the zone so expected days are plain UTC dates.
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()


def _view(ledger: Path, **filters: Any) -> Any:
    return build_view(ledger, parse_filters(**filters), today=TODAY)


def test_known_ledger_totals(tmp_path: Path) -> None:
    records = known_records(NOW)
    ledger = write_ledger(tmp_path / "l.jsonl", records)
    v = _view(ledger, period="30d")
    t = v["totals"]
    assert t["runs"] == 6
    assert t["cost_usd"] == pytest.approx(0.125 + 0.0009 + 1.5 + 2.75 + 0.031415)
    assert t["estimated_cost_usd"] == pytest.approx(2.75)
    # The unknown model's usage stays apart: counted as unpriced, never as $0 of cost.
    assert (t["unpriced_runs"], t["unpriced_tokens"]) == (1, 2000)
    assert t["tokens"] == sum(sum(r["tokens"].values()) for r in records)
    assert t["cache_read"] == 81000
    assert t["cache_hit_ratio"] == pytest.approx(81000 / (t["input"] + 81000 + t["cache_creation"]))
    # Savings count priced usage only (as `ledger summary`): the unpriced run's cache reads are out.
    expected_savings = sum(
        cache_savings(r["model"], r["tokens"]["cache_read"]) or 0
        for r in records
        if r["cost_usd"] is not None
    )
    assert t["cache_savings_usd"] == pytest.approx(expected_savings)
    assert t["unpriced_savings_tokens"] == 0
    assert v["days"][0] == "2026-05-17" and v["days"][-1] == "2026-06-15" and len(v["days"]) == 30
    by_project = {g["key"]: g["totals"]["cost_usd"] for g in v["by_project"]}
    assert by_project == pytest.approx({"alpha": 1.656415, "beta": 2.7509, "gamma": 0.0})
    by_tag = {g["key"]: g["totals"]["runs"] for g in v["by_tag"]}
    assert by_tag == {"team=web": 3, "team=data": 1, "pr=42": 1}
    # Branches are labelled with their project: "main" of two projects is two bars.
    assert {g["key"] for g in v["by_branch"]} == {
        "alpha · main",
        "beta · main",
        "beta · feat/x",
        "gamma · main",
    }
    assert [r["started_at"] for r in v["latest_runs"]] == sorted(
        (r["started_at"] for r in records), reverse=True
    )
    per_day = {}
    for row in v["by_day_by_model"]:
        per_day[row["day"]] = per_day.get(row["day"], 0) + row["cost_usd"]
    assert per_day == pytest.approx({"2026-06-13": 0.1259, "2026-06-14": 4.25, "2026-06-15": 0.031415})


def test_filters(tmp_path: Path) -> None:
    ledger = write_ledger(tmp_path / "l.jsonl", known_records(NOW))
    assert _view(ledger, project="beta")["totals"]["runs"] == 2
    assert _view(ledger, model="claude-haiku-4-5")["totals"]["cost_usd"] == pytest.approx(0.032315)
    web = _view(ledger, tag="team=web")
    assert web["totals"]["runs"] == 3
    assert {r["project"] for r in web["latest_runs"]} == {"alpha", "gamma"}
    assert _view(ledger, period="1d")["totals"]["runs"] == 2
    assert _view(ledger, period="2d")["totals"]["runs"] == 4
    assert _view(ledger, tag="team=nobody")["totals"]["runs"] == 0
    both = _view(ledger, project="alpha", tag="team=web")
    assert both["totals"]["cost_usd"] == pytest.approx(1.625)
    # The option lists stay complete whatever is filtered, so a filter can be undone.
    assert both["options"]["projects"] == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"period": "week"}, "bad period"),
        ({"period": "0d"}, "in the future"),
        ({"period": "2026-02-01..2026-01-01"}, "empty"),
        ({"tag": "team"}, "KEY=VALUE"),
    ],
)
def test_bad_filters(args: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_filters(**args)


def test_live_append_rotation_and_rewrite(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    records = known_records(NOW)
    write_ledger(ledger, records[:3])
    live = Live(ledger)
    assert live.behind and live.view(Filters(), today=TODAY)["read"]["records"] == 0
    assert live.refresh() is True and not live.behind
    assert live.refresh() is False  # nothing new: the engine stays open
    append(ledger, records[3])
    assert live.refresh() is True
    assert live.view(Filters(), today=TODAY)["totals"]["runs"] == 4
    # Rotation: the live file is renamed to a dated segment and a new live file starts.
    os.rename(ledger, tmp_path / "l.20260615T000000Z.jsonl")
    append(ledger, records[4])
    assert live.refresh() is True
    assert live.view(Filters(), today=TODAY)["read"]["records"] == 5
    # A torn tail is not a record until its newline arrives.
    with open(ledger, "ab") as fh:
        fh.write(encode(records[5])[:-20])
    live.refresh()
    assert live.view(Filters(), today=TODAY)["totals"]["runs"] == 5
    with open(ledger, "ab") as fh:
        fh.write(encode(records[5])[-20:])
    live.refresh()
    assert live.view(Filters(), today=TODAY)["totals"]["runs"] == 6
    # A file that shrank (prune, repair) is read afresh: no stale figures.
    write_ledger(ledger.with_suffix(".new"), records[:1])
    os.replace(ledger.with_suffix(".new"), ledger)
    (tmp_path / "l.20260615T000000Z.jsonl").unlink()
    assert live.refresh() is True
    assert live.view(Filters(), today=TODAY)["totals"]["runs"] == 1
    live.close()


def test_bad_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    ledger.write_bytes(
        b'\x00\xffgarbage\n{"v":1}\n[1,2]\n' + encode(known_records(NOW)[0]) + b'{"v":1,"id":"x"}\n'
    )
    v = _view(ledger)
    # `{"v":1,"id":"x"}` is a record (without a start time: in no figure), the rest bad lines.
    assert {k: v["read"][k] for k in ("records", "bad_lines", "not_counted")} == {
        "records": 2,
        "bad_lines": 3,
        "not_counted": 0,
    }
    assert v["totals"]["runs"] == 1
    assert _view(tmp_path / "missing.jsonl")["totals"]["runs"] == 0


def test_multi_model_run_is_split_into_its_parts(tmp_path: Path) -> None:
    rec = make_record(
        when=NOW,
        model="claude-sonnet-4-5",
        tokens=(110, 60, 0, 0),
        cost=0.5,
        models={
            "claude-sonnet-4-5": {"input": 100, "output": 50, "cost_usd": 0.4, "cost_source": "claude"},
            "claude-haiku-4-5": {"input": 10, "output": 10, "cost_usd": 0.1, "cost_source": "claude"},
        },
    )
    v = _view(write_ledger(tmp_path / "l.jsonl", [rec]))
    rows = {r["model"]: (r["runs"], r["cost_usd"], r["tokens"]) for r in v["by_day_by_model"]}
    # As `ledger summary --by model`: a run that used two models counts in both rows, once in total.
    assert rows == {"claude-sonnet-4-5": (1, 0.4, 150), "claude-haiku-4-5": (1, 0.1, 20)}
    assert v["totals"]["runs"] == 1 and v["totals"]["cost_usd"] == pytest.approx(0.5)


def test_parts_that_do_not_add_up_keep_the_residual_and_unpriced_parts(tmp_path: Path) -> None:
    rec = make_record(
        when=NOW,
        model="claude-sonnet-4-5",
        tokens=(200, 60, 0, 0),
        cost=1.0,
        models={
            "claude-sonnet-4-5": {"input": 100, "output": 50, "cost_usd": 0.4, "cost_source": "claude"},
            "mystery-x": {"input": 10, "output": 10, "cost_usd": None, "cost_source": "unpriced"},
        },
    )
    v = _view(write_ledger(tmp_path / "l.jsonl", [rec]))
    rows = {r["model"]: (r["cost_usd"], r["tokens"], r["unpriced_tokens"]) for r in v["by_day_by_model"]}
    # The residual (cost 0.6, 90 input tokens) is on the main part; the unpriced part is never $0.
    assert rows == {"claude-sonnet-4-5": (1.0, 240, 0), "mystery-x": (0.0, 20, 20)}
    assert (v["totals"]["cost_usd"], v["totals"]["tokens"], v["totals"]["unpriced_runs"]) == (1.0, 260, 0)


def test_zero_token_run_without_cost_is_unpriced_as_in_the_summary(tmp_path: Path) -> None:
    rec = make_record(when=NOW, tokens=(0, 0, 0, 0), cost=None, status="crashed")
    t = _view(write_ledger(tmp_path / "l.jsonl", [rec]))["totals"]
    assert (t["runs"], t["unpriced_runs"], t["unpriced_tokens"], t["cost_usd"]) == (1, 1, 0, 0)


def test_ci_links_only_http() -> None:
    from claude_run.dashboard.data import _ci

    assert _ci("github", None, None, "javascript:alert(1)") == (None, "github")
    assert _ci(None, None, "j", "https://ci.example/1") == ("https://ci.example/1", "j")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "unpriced"),
        (0, "$0.00"),
        (1234.5, "$1,234.50"),
        (0.01, "$0.01"),
        (0.0042, "$0.0042"),
        (0.000123, "$0.00012"),
        (0.0009, "$0.00090"),
        (-2.5, "-$2.50"),
    ],
)
def test_fmt_usd(value: float | None, text: str) -> None:
    assert fmt_usd(value) == text


_rec = st.builds(
    lambda day, model, project, tok, cost, tag: make_record(
        when=NOW - timedelta(days=day, minutes=tok[0] % 60),
        model=model,
        project=project,
        tokens=tok,
        cost=cost,
        tags={"team": tag} if tag else {},
    ),
    st.integers(0, 40),
    st.sampled_from(["claude-sonnet-4-5", "claude-haiku-4-5", "unknown-x", None]),
    st.sampled_from(["a", "b", None]),
    st.tuples(*[st.integers(0, 10**6)] * 4),
    st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
    st.sampled_from(["x", "y", None]),
)


@settings(max_examples=20, deadline=None)
@given(st.lists(_rec, max_size=30), st.lists(st.integers(1, 400), max_size=4), st.sampled_from(["7d", "all"]))
def test_live_views_equal_one_shot(
    tmp_path_factory: Any, records: list[dict[str, Any]], cuts: list[int], period: str
) -> None:
    """However the appends are split across looks (even mid-line), the live view matches one read."""
    ledger = tmp_path_factory.mktemp("inc") / "l.jsonl"
    data = b"".join(encode(r) for r in records)
    live = Live(ledger)
    ledger.write_bytes(b"")
    pos = 0
    for cut in cuts:
        with open(ledger, "ab") as fh:
            fh.write(data[pos : pos + cut])
        pos += cut
        live.refresh()
    with open(ledger, "ab") as fh:
        fh.write(data[pos:])
    live.refresh()
    filters = Filters(period=period)
    shown = live.view(filters, today=TODAY)
    live.close()
    once = build_view(ledger, filters, today=TODAY)
    for key in ("totals", "by_day_by_model", "by_project", "by_tag", "by_branch", "latest_runs", "read"):
        assert shown[key] == once[key], key  # type: ignore[literal-required]
    assert once["read"]["records"] == len(records)
    priced = [
        r
        for r in records
        if r["cost_usd"] is not None and (period == "all" or r["started_at"] >= "2026-06-09")
    ]
    assert once["totals"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in priced))


def _side(rec: dict[str, Any], *, mode: str, session: str, supersedes: str | None = None) -> dict[str, Any]:
    rec.update(mode=mode, source={"imported": "import"}.get(mode, mode), session_id=session)
    if supersedes:
        rec["supersedes"] = supersedes
    return rec


def test_fold_supersedes_and_duplicate_imports(tmp_path: Path) -> None:
    """The same records count as in `ledger summary`: superseded ones and re-imported runs do not."""
    t = NOW - timedelta(hours=3)
    run1 = make_record(when=t, cost=1.0)
    run1["session_id"] = "s1"
    imp_dup = _side(make_record(when=t, cost=1.0), mode="imported", session="s1")  # run1 already has it
    imp2 = _side(make_record(when=t, cost=2.0), mode="imported", session="s2")
    imp2b = _side(make_record(when=t, cost=2.5), mode="imported", session="s2", supersedes=imp2["id"])
    tel1 = _side(make_record(when=t, cost=4.0), mode="telemetry", session="s4")
    tel2 = _side(make_record(when=t, cost=4.5), mode="telemetry", session="s4", supersedes=tel1["id"])
    run3 = make_record(when=t, cost=8.0)
    run3b = make_record(when=t, cost=8.25)
    run3b["supersedes"] = run3["id"]  # replaces a tracked run
    imp5 = _side(make_record(when=t, cost=16.0), mode="imported", session="s5")
    run5 = make_record(when=t, cost=16.5)
    run5["session_id"] = "s5"  # the import came first; the tracked run wins
    records = [run1, imp_dup, imp2, imp2b, tel1, tel2, run3, run3b, imp5, run5]
    for i, rec in enumerate(records):  # "later" is id order (ULIDs sort by creation time)
        rec["id"] = new_id(int(t.timestamp() * 1000) + i)
    imp2b["supersedes"], tel2["supersedes"], run3b["supersedes"] = imp2["id"], tel1["id"], run3["id"]
    counted = [run1, imp2b, tel2, run3b, run5]
    ledger = tmp_path / "l.jsonl"
    watcher = Live(ledger)
    for rec in records:  # one look per append, as the live dashboard sees them
        append(ledger, rec)
        watcher.refresh()
    once = build_view(ledger, Filters(), today=TODAY)
    live = watcher.view(Filters(), today=TODAY)
    watcher.close()
    for v in (once, live):
        assert v["totals"]["runs"] == len(counted)
        assert v["totals"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in counted))
        assert {r["id"] for r in v["latest_runs"]} == {r["id"] for r in counted}
        assert v["read"]["not_counted"] == len(records) - len(counted)
        assert v["by_day_by_model"] == once["by_day_by_model"]


def test_a_cell_emptied_by_supersedes_is_not_drawn(tmp_path: Path) -> None:
    old = _side(make_record(when=NOW, project="gone", cost=0.1), mode="telemetry", session="s")
    new = _side(
        make_record(when=NOW, project="kept", cost=0.3), mode="telemetry", session="s", supersedes=old["id"]
    )
    new["id"] = new_id(int(NOW.timestamp() * 1000) + 1)  # "later" is id order
    ledger = tmp_path / "l.jsonl"
    live = Live(ledger)
    for rec in (old, new):
        append(ledger, rec)
        live.refresh()
    v = live.view(Filters(), today=TODAY)
    live.close()
    assert [g["key"] for g in v["by_project"]] == ["kept"]
    assert v["totals"]["cost_usd"] == pytest.approx(0.3)


def test_superseding_record_before_its_target(tmp_path: Path) -> None:
    """Merged ledgers can hold the replacement before the original: the original is still skipped."""
    old = _side(make_record(when=NOW, cost=1.0), mode="telemetry", session="s")
    new = _side(make_record(when=NOW, cost=3.0), mode="telemetry", session="s", supersedes=old["id"])
    new["id"] = new_id(int(NOW.timestamp() * 1000) + 1)  # "later" is id order, not file order
    v = _view(write_ledger(tmp_path / "l.jsonl", [new, old]))
    assert (v["totals"]["runs"], v["totals"]["cost_usd"]) == (1, 3.0)


def test_tag_keys_with_too_many_values_are_not_charted(tmp_path: Path) -> None:
    from claude_run.dashboard.data import MAX_TAG_VALUES

    recs = [
        make_record(when=NOW, cost=1.0, tags={"pr": str(i), "team": "web"}) for i in range(MAX_TAG_VALUES + 5)
    ]
    v = _view(write_ledger(tmp_path / "l.jsonl", recs))
    assert v["options"]["tags"] == ["team=web"]
    assert v["options"]["uncharted_tag_keys"] == ["pr"]
    assert [g["key"] for g in v["by_tag"]] == ["team=web"]
    assert v["by_tag"][0]["totals"]["runs"] == len(recs)


def test_a_lean_first_read_is_completed_when_the_index_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large ledger without an index is first read lean (no CI links) while the engine builds
    its index in the background; the next look after the index is published reopens on it."""
    from claude_run.query import engine

    monkeypatch.setattr(engine, "INLINE_BUILD_BYTES", 0)  # this small ledger counts as large
    spawned: list[Path] = []
    monkeypatch.setattr(engine, "_spawn_builder", spawned.append)  # the build is run below instead
    ledger = write_ledger(tmp_path / "l.jsonl", known_records(NOW))
    live = Live(ledger)
    assert live.refresh() is True and spawned == [ledger]
    lean = live.view(Filters(period="all"), today=TODAY)
    assert [r["ci_url"] for r in lean["latest_runs"]] == [None] * 6
    assert lean["by_ci"] == [] and lean["read"]["ci_columns"] == 0
    assert live.refresh() is False  # no index yet: nothing to reopen on
    assert engine.build_index(ledger)  # what the detached builder does
    assert live.refresh() is True and live.refresh() is False  # reopened once, on the index
    full = live.view(Filters(period="all"), today=TODAY)
    live.close()
    assert "https://github.com/acme/app/actions/runs/1" in [r["ci_url"] for r in full["latest_runs"]]
    assert full["totals"] == lean["totals"] and full["by_day_by_model"] == lean["by_day_by_model"]
    assert [g["job"] for g in full["by_ci"]] == ["review"] and full["read"]["ci_columns"] == 1


def _quota_ledger(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Runs over three days, most with the quota a subscription login reports; one API-key run."""
    figures = [  # (start, 5-hour, 7-day, project)
        (NOW - timedelta(days=2, hours=3), 0.12, 0.30, "alpha"),
        (NOW - timedelta(days=2, hours=1), 0.47, 0.33, "beta"),
        (NOW - timedelta(days=2), 0.05, None, "alpha"),  # a run that saw only the 5-hour window
        (NOW - timedelta(hours=2), 0.81, 0.52, "alpha"),
        (NOW - timedelta(hours=1), 1.07, 0.55, "beta"),  # above 1 happens
    ]
    records = [
        with_quota(make_record(when=when, project=project), five, seven, when + timedelta(seconds=5))
        for when, five, seven, project in figures
    ]
    records.append(make_record(when=NOW - timedelta(hours=1, minutes=30)))  # API key: no quota
    return write_ledger(tmp_path / "l.jsonl", records), records


def _expected_quota(records: list[dict[str, Any]]) -> dict[str, tuple[float | None, float | None, int]]:
    """Per start day: each window's highest utilization and the runs that reported one, from the records."""
    out: dict[str, tuple[float | None, float | None, int]] = {}
    for r in records:
        rl = r.get("rate_limits")
        if not rl:
            continue
        day = r["started_at"][:10]
        five = rl["windows"].get("five_hour", {}).get("utilization")
        seven = rl["windows"].get("seven_day", {}).get("utilization")
        old = out.get(day, (None, None, 0))
        out[day] = (
            max(x for x in (old[0], five) if x is not None)
            if five is not None or old[0] is not None
            else None,
            max(x for x in (old[1], seven) if x is not None)
            if seven is not None or old[1] is not None
            else None,
            old[2] + 1,
        )
    return out


def test_quota_series_equals_the_records(tmp_path: Path) -> None:
    ledger, records = _quota_ledger(tmp_path)
    q = _view(ledger, period="7d")["quota"]
    got = {d["day"]: (d["five_hour"], d["seven_day"], d["runs"]) for d in q["by_day"]}
    assert got == _expected_quota(records)
    last5 = records[4]["rate_limits"]["windows"]
    assert q["latest"] == {
        "five_hour": last5["five_hour"]["utilization"],
        "five_hour_resets_at": last5["five_hour"]["resets_at"],
        "seven_day": last5["seven_day"]["utilization"],
        "seven_day_resets_at": last5["seven_day"]["resets_at"],
        "seen_at": records[4]["rate_limits"]["seen_at"],
    }
    # The dashboard's filters apply: one project's runs only.
    beta = _view(ledger, period="7d", project="beta")["quota"]
    assert {d["day"]: (d["five_hour"], d["runs"]) for d in beta["by_day"]} == {
        r["started_at"][:10]: (r["rate_limits"]["windows"]["five_hour"]["utilization"], 1)
        for r in records
        if r["project"] == "beta" and "rate_limits" in r
    }


def test_no_quota_without_quota_data(tmp_path: Path) -> None:
    ledger = write_ledger(tmp_path / "l.jsonl", known_records(NOW))
    assert _view(ledger, period="30d")["quota"] == {"by_day": [], "latest": None}


def test_unreadable_quota_figures_are_missing_not_fatal(tmp_path: Path) -> None:
    rec = with_quota(make_record(when=NOW), 0.5, 0.25, NOW)
    rec["rate_limits"]["windows"]["five_hour"]["utilization"] = "half"
    bad_shape = {**make_record(when=NOW), "rate_limits": {"windows": ["five_hour"]}}
    v = _view(write_ledger(tmp_path / "l.jsonl", [rec, bad_shape]), period="7d")
    assert v["totals"]["runs"] == 2
    assert [(d["five_hour"], d["seven_day"], d["runs"]) for d in v["quota"]["by_day"]] == [(None, 0.25, 1)]


@pytest.mark.parametrize(
    ("period", "first", "end", "prev_first", "prev_end"),
    [
        # today is 2026-06-15, a Monday
        ("30d", "2026-05-17", None, "2026-04-17", "2026-05-17"),
        ("this-month", "2026-06-01", "2026-07-01", "2026-05-01", "2026-05-16"),  # the same 15 days
        ("last-month", "2026-05-01", "2026-06-01", "2026-04-01", "2026-05-01"),  # the whole month before
        ("this-quarter", "2026-04-01", "2026-07-01", "2026-01-01", "2026-03-18"),
        ("last-quarter", "2026-01-01", "2026-04-01", "2025-10-01", "2026-01-01"),
        ("this-year", "2026-01-01", "2027-01-01", "2025-01-01", "2025-06-16"),
        ("last-year", "2025-01-01", "2026-01-01", "2024-01-01", "2025-01-01"),  # 2024 had 366 days
        ("this-week", "2026-06-15", "2026-06-22", "2026-06-08", "2026-06-09"),
        ("last-week", "2026-06-08", "2026-06-15", "2026-06-01", "2026-06-08"),
        ("today", "2026-06-15", "2026-06-16", "2026-06-14", "2026-06-15"),
        ("2026-06-01..2026-06-10", "2026-06-01", "2026-06-11", "2026-05-22", "2026-06-01"),
        ("24h", "2026-06-14", None, "2026-06-12", "2026-06-14"),  # an instant: its whole day
    ],
)
def test_periods_are_the_cli_words(
    period: str, first: str, end: str | None, prev_first: str, prev_end: str
) -> None:
    from claude_run.dashboard.periods import resolve
    from claude_run.query.timeparse import parse_bound

    span = resolve(period, timezone.utc, TODAY)
    day = date.fromordinal
    assert (day(span.start).isoformat(), span.end and day(span.end).isoformat()) == (first, end)
    assert (day(span.prev_start).isoformat(), day(span.prev_end).isoformat()) == (prev_first, prev_end)
    if ".." not in period and period != "24h":  # the same words as `--since W` (and `--until W`)
        now = datetime(2026, 6, 15, 12, tzinfo=timezone.utc)
        assert parse_bound(period, timezone.utc, end=False, now=now).day == span.start
        if end is not None:
            assert parse_bound(period, timezone.utc, end=True, now=now).day == span.end


def test_a_calendar_period_counts_as_ledger_summary_since_until(tmp_path: Path) -> None:
    """`?period=last-month` is `ledger summary --since last-month --until last-month`."""
    from claude_run.query.filters import Filters as QF
    from claude_run.query.summary import aggregate
    from claude_run.query.timeparse import parse_bound

    recs = [
        make_record(when=datetime(2026, m, d, 12, tzinfo=timezone.utc), cost=float(m * 100 + d))
        for m, d in ((4, 30), (5, 1), (5, 31), (6, 1), (6, 15))
    ]
    ledger = write_ledger(tmp_path / "l.jsonl", recs)
    now = datetime(2026, 6, 15, 12, tzinfo=timezone.utc)
    f = QF(
        since=parse_bound("last-month", timezone.utc, end=False, now=now),
        until=parse_bound("last-month", timezone.utc, end=True, now=now),
    )
    report = aggregate(ledger, (), f, timezone.utc)
    view = _view(ledger, period="last-month")
    assert view["totals"]["runs"] == report.total.runs == 2
    assert view["totals"]["cost_usd"] == pytest.approx(float(report.total.cost)) == 501 + 531
    assert view["days"][0] == "2026-05-01" and view["days"][-1] == "2026-05-31"
    assert view["change"] is not None and view["change"]["cost_usd"] == 430  # April, whole


@pytest.mark.parametrize("period", ["0001-01-01", "0001-01-01..9999-12-31", "999999d"])
def test_a_period_at_the_calendars_edge(tmp_path: Path, period: str) -> None:
    """No previous period before year 1; the day axis starts at the first run, not in year 1."""
    ledger = write_ledger(tmp_path / "l.jsonl", known_records(NOW))
    try:
        v = _view(ledger, period=period)
    except UsageError as exc:
        assert "out of range" in exc.message
        return
    assert v["change"] is None and v["totals"]["runs"] == 6
    assert v["days"][0] == "2026-06-13" and v["days"][-1] >= "2026-06-15"


def test_spend_by_user_ci_job_and_pr(tmp_path: Path) -> None:
    """The panels a team lead reads: who spent, which CI job (with its latest run's link), which PR."""

    def ci(rec: dict[str, Any], job: str, pr: str | None, url: str) -> dict[str, Any]:
        rec["ci"] = {"provider": "github", "workflow": "review", "job": job, "pr": pr, "url": url}
        return rec

    recs = [
        ci(make_record(when=NOW - timedelta(hours=3), cost=1.0), "lint", "7", "https://ci.example/1"),
        ci(make_record(when=NOW - timedelta(hours=2), cost=2.0), "lint", "8", "https://ci.example/2"),
        ci(make_record(when=NOW - timedelta(hours=1), cost=4.0), "fix", "8", "javascript:alert(1)"),
        make_record(when=NOW, cost=8.0),
    ]
    recs[3]["user"] = "fedcba9876543210"
    recs[2]["status"] = "budget_exceeded"
    v = _view(write_ledger(tmp_path / "l.jsonl", recs))
    users = {g["key"]: g["totals"]["cost_usd"] for g in v["by_user"]}
    assert users == {"0123456789abcdef": 7.0, "fedcba9876543210": 8.0}
    jobs = {
        (g["workflow"], g["job"]): (g["totals"]["runs"], g["totals"]["cost_usd"], g["url"])
        for g in v["by_ci"]
    }
    # The latest run's link per job; a link that is not http(s) is never one.
    assert jobs == {("review", "lint"): (2, 3.0, "https://ci.example/2"), ("review", "fix"): (1, 4.0, None)}
    assert {g["key"]: g["totals"]["cost_usd"] for g in v["by_pr"]} == {"8": 6.0, "7": 1.0}
    assert {g["key"]: g["totals"]["runs"] for g in v["by_status"]} == {"success": 3, "budget_exceeded": 1}
