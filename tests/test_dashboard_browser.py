"""The dashboard and the HTML report in a real headless chromium, driven over the DevTools protocol.

Screenshots (and the printed report, `report.pdf`) land in `$DASHBOARD_ARTIFACTS` if set, else in
`.test-output/dashboard/` (gitignored), for a human to look at; CI can keep that directory.
"""

from __future__ import annotations

import calendar
import io
import os
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from claude_run.ledger.store import append
from claude_run.pricing import cache_savings
from support.dashboard_cdp import Page, chromium, chromium_path
from support.dashboard_ledger import known_records, make_record, with_quota, write_ledger
from support.dashboard_server import dashboard

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("DASHBOARD_ARTIFACTS") or ROOT / ".test-output" / "dashboard")

pytestmark = [
    pytest.mark.skipif(
        chromium_path() is None,
        reason="chromium is not installed (Debian: apt-get install -y chromium); CI installs it",
    ),
    pytest.mark.slow,  # a real browser: about 1-3 s per test, plus one chromium start per module
]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return write_ledger(tmp_path / "ledger.jsonl", known_records(datetime.now(timezone.utc)))


@pytest.fixture(scope="module")
def _chromium_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    base = tmp_path_factory.mktemp("chromium")
    with chromium(base / "profile", base / "chromium.log") as new_page:
        yield new_page()


@pytest.fixture
def browser(_chromium_page: Page) -> Page:
    """One chromium per module (its start is the slow part); each test starts from a blank page."""
    _chromium_page.navigate("about:blank")
    _chromium_page.events.clear()
    return _chromium_page


@pytest.fixture
def server(tmp_path: Path, ledger: Path) -> Iterator[str]:
    with dashboard(ledger, tmp_path / "server.log") as url:
        yield url


def _expected(records: list[dict[str, object]]) -> dict[str, object]:
    priced = [r for r in records if r["cost_usd"] is not None]
    by_model: dict[str, float] = {}
    for r in priced:
        by_model[str(r["model"])] = by_model.get(str(r["model"]), 0.0) + float(r["cost_usd"])  # type: ignore[arg-type]
    savings = 0.0
    for r in records:
        s = cache_savings(str(r["model"]), r["tokens"]["cache_read"])  # type: ignore[index]
        savings += s or 0.0
    return {
        "runs": len(records),
        "cost": sum(float(r["cost_usd"]) for r in priced),  # type: ignore[arg-type]
        "tokens": sum(sum(r["tokens"].values()) for r in records),  # type: ignore[attr-defined]
        "by_model": by_model,
        "unpriced_tokens": sum(sum(r["tokens"].values()) for r in records if r["cost_usd"] is None),  # type: ignore[attr-defined]
        "savings": savings,
    }


_READ_DOM = """(() => {
  const num = (sel) => Number(document.querySelector(sel).getAttribute('data-value'));
  const byModel = {};
  for (const rect of document.querySelectorAll('#chart-cost-usd rect.bar')) {
    const m = rect.getAttribute('data-model');
    byModel[m] = (byModel[m] || 0) + Number(rect.getAttribute('data-value'));
  }
  const projects = {};
  for (const row of document.querySelectorAll('#chart-project .bar-row')) {
    projects[row.getAttribute('data-key')] = Number(row.getAttribute('data-value'));
  }
  return {
    runs: num('#total-runs'), cost: num('#total-cost'), tokens: num('#total-tokens'),
    savings: num('#total-cache-savings'),
    costText: document.querySelector('#total-cost .big').textContent,
    tokensText: document.querySelector('#total-tokens .big').textContent,
    chartCost: Number(document.querySelector('#chart-cost-usd').getAttribute('data-total')),
    chartTokens: Number(document.querySelector('#chart-tokens').getAttribute('data-total')),
    unpricedTokens: Number(document.querySelector('#total-unpriced').getAttribute('data-tokens')),
    byModel, projects,
    rows: document.querySelectorAll('#latest-runs tbody tr').length,
  };
})()"""


def _check_totals(dom: dict[str, object], records: list[dict[str, object]]) -> None:
    exp = _expected(records)
    assert dom["runs"] == exp["runs"]
    assert dom["cost"] == pytest.approx(exp["cost"])
    assert dom["chartCost"] == pytest.approx(exp["cost"])
    assert dom["tokens"] == exp["tokens"]
    # The unknown model's tokens are in the token chart but its cost is kept apart, not drawn as $0.
    assert dom["chartTokens"] == exp["tokens"]
    assert dom["unpricedTokens"] == exp["unpriced_tokens"]
    assert dom["costText"] == f"${exp['cost']:,.2f}"  # type: ignore[str-format]
    assert dom["tokensText"] == f"{exp['tokens']:,}"
    assert dom["byModel"] == pytest.approx(exp["by_model"])
    assert dom["savings"] == pytest.approx(exp["savings"])
    assert dom["rows"] == len(records)


def test_page_renders_known_totals(browser: Page, server: str, ledger: Path) -> None:
    records = known_records(datetime.now(timezone.utc))
    browser.navigate(server + "?period=30d")
    browser.wait_for("document.body.getAttribute('data-updates') >= '1'")
    dom = browser.eval(_READ_DOM)
    _check_totals(dom, records)
    assert dom["projects"] == pytest.approx(
        {"alpha": 0.125 + 1.5 + 0.031415, "beta": 0.0009 + 2.75, "gamma": 0.0}
    )
    assert browser.eval("document.getElementById('live-status').textContent") == "live"
    assert browser.eval("document.getElementById('chart-quota') === null")  # no quota in this ledger
    browser.screenshot(OUT / "dashboard.png")

    # A filter is applied server-side and pushed back over a new event stream.
    browser.eval(
        "(() => { const s = document.getElementById('f-project'); s.value = 'beta';"
        " s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )
    browser.wait_for("document.getElementById('total-runs').getAttribute('data-value') === '2'")
    assert browser.eval("location.search").endswith("project=beta&tag=") or "project=beta" in browser.eval(
        "location.search"
    )
    assert float(
        browser.eval("document.getElementById('total-cost').getAttribute('data-value')")
    ) == pytest.approx(2.7509)
    browser.screenshot(OUT / "dashboard-filtered.png")


def test_appended_run_appears_without_reload(browser: Page, server: str, ledger: Path) -> None:
    browser.navigate(server)
    browser.wait_for("document.body.getAttribute('data-updates') === '1'")
    browser.eval("window.__sameDocument = 'yes'")
    new = make_record(
        when=datetime.now(timezone.utc) - timedelta(minutes=1),
        model="claude-sonnet-4-5",
        project="delta",
        tokens=(10, 20, 30, 40),
        cost=12.5,
        ci_url="https://github.com/acme/app/actions/runs/99",
    )
    append(ledger, new)
    browser.wait_for(f"!!document.querySelector('#latest-runs tr[data-id=\"{new['id']}\"]')")
    assert browser.eval("window.__sameDocument") == "yes"  # no reload: the same document got the update
    assert browser.eval("performance.getEntriesByType('navigation').length") == 1
    records = [*known_records(datetime.now(timezone.utc)), new]
    _check_totals(browser.eval(_READ_DOM), records)
    ci_link = browser.eval(f"document.querySelector('#latest-runs tr[data-id=\"{new['id']}\"] a').href")
    assert ci_link == "https://github.com/acme/app/actions/runs/99"
    browser.screenshot(OUT / "dashboard-live-update.png")


def test_quota_panel_appears_with_quota_data(browser: Page, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    noon = (now - timedelta(days=1)).replace(hour=12, minute=0)  # yesterday, two runs (UTC days)
    records = [
        with_quota(make_record(when=noon), 0.35, 0.2, noon + timedelta(minutes=1)),
        with_quota(make_record(when=noon + timedelta(hours=1)), 0.6, 0.25, noon + timedelta(hours=1)),
        with_quota(make_record(when=noon + timedelta(days=1)), 0.9, 0.31, noon + timedelta(days=1)),
        make_record(when=noon + timedelta(days=1, hours=1)),  # an API-key run: no quota
    ]
    ledger = write_ledger(tmp_path / "quota.jsonl", records)
    with dashboard(ledger, tmp_path / "server.log") as url:
        browser.navigate(url + "?period=7d")
        browser.wait_for("document.body.getAttribute('data-updates') >= '1'")
        dom = browser.eval(
            """(() => {
              const svg = document.getElementById('chart-quota');
              const points = [...svg.querySelectorAll('circle.point')].map(
                c => [c.getAttribute('data-window'), Number(c.getAttribute('data-value'))]);
              const box = svg.getBoundingClientRect();
              return {points, lines: svg.querySelectorAll('polyline.line').length, width: box.width,
                      height: box.height, latest: document.getElementById('quota-latest').textContent,
                      heading: document.getElementById('h-quota').textContent,
                      label: document.getElementById(svg.getAttribute('aria-labelledby')).textContent};
            })()"""
        )
        browser.screenshot(OUT / "dashboard-quota.png")
    # Per day, each window's highest figure (the runs' days are those of their start).
    assert sorted(dom["points"]) == sorted(
        [["five_hour", 0.6], ["seven_day", 0.25], ["five_hour", 0.9], ["seven_day", 0.31]]
    )
    assert dom["lines"] == 2 and dom["width"] > 300 and dom["height"] > 50
    assert dom["heading"] == "Plan quota" and "highest utilization per day" in dom["label"]
    assert "5-hour 90.0%" in dom["latest"] and "7-day 31.0%" in dom["latest"]


def _report_app() -> typer.Typer:
    from claude_run.commands.ledger_html import register

    app = typer.Typer()

    @app.callback()
    def _group() -> None:  # a group, as `claude-run ledger` is
        pass

    register(app)
    return app


def test_html_report_opens_without_network(browser: Page, ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        _report_app(),
        ["report", "--html", str(out), "--ledger", str(ledger), "--period", "all"],
        env={"TZ": "UTC"},
    )
    assert result.exit_code == 0, result.output
    url = out.as_uri()
    browser.call("Network.enable")
    browser.call("Log.enable")
    browser.navigate(url)
    browser.drain(1.0)
    # Chromium reports a request here even when the page's CSP then blocks it (checked by hand with a
    # sabotaged report), so an empty list means the page asked for nothing.
    requested = [e["params"]["request"]["url"] for e in browser.events_named("Network.requestWillBeSent")]
    assert requested == [url]
    assert [e["params"]["entry"]["text"] for e in browser.events_named("Log.entryAdded")] == []
    assert browser.events_named("Network.webSocketCreated") == []
    records = known_records(datetime.now(timezone.utc))
    _check_totals(browser.eval(_READ_DOM), records)
    assert browser.eval("document.body.getAttribute('data-live')") == "0"
    browser.screenshot(OUT / "report.png")


# -- issue 20: a team lead's questions ------------------------------------------------------------


def _noon(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.utc)


def month_records(today: date) -> list[dict[str, object]]:
    """Runs this month and last month (some inside the stretch of last month that the change compares
    with, one after it), an unpriced run, and a partly priced run: its main model has no price, its
    side calls to a priced model cost $0.12."""
    first = today.replace(day=1)
    prev_first = (first - timedelta(days=1)).replace(day=1)
    inside = min(prev_first + timedelta(days=today.day - 1), first - timedelta(days=1))
    recs = [
        make_record(when=_noon(today), model="claude-sonnet-4-5", project="web", cost=1.25),
        make_record(when=_noon(first, 9), model="claude-haiku-4-5", project="api", cost=2.5),
        make_record(when=_noon(prev_first, 10), model="claude-sonnet-4-5", project="web", cost=0.75),
        make_record(when=_noon(inside, 11), model="claude-opus-4-1", project="api", cost=0.5, status="error"),
        make_record(when=_noon(today, 8), model="mystery-model-9", project="web", cost=None),
    ]
    after = prev_first + timedelta(days=today.day)
    if after < first:  # the rest of last month: not in the stretch compared with
        recs.append(make_record(when=_noon(after), project="web", cost=10.0))
    partial = make_record(
        when=_noon(today, 7),
        model="mystery-model-9",
        project="web",
        tokens=(200_000, 1_000, 1_000_000, 0),
        cost=0.12,
        models={
            "mystery-model-9": {
                "input": 199_000,
                "output": 500,
                "cache_read": 1_000_000,
                "cache_creation": 0,
                "cost_usd": None,
                "cost_source": "unpriced",
            },
            "claude-haiku-4-5": {
                "input": 1_000,
                "output": 500,
                "cache_read": 0,
                "cache_creation": 0,
                "cost_usd": 0.12,
                "cost_source": "claude",
            },
        },
    )
    return [*recs, partial]


def _day_of(rec: dict[str, object]) -> date:
    return date.fromisoformat(str(rec["started_at"])[:10])


def _cost_between(records: list[dict[str, object]], first: date, end: date) -> float:
    return sum(
        float(r["cost_usd"])  # type: ignore[arg-type]
        for r in records
        if r["cost_usd"] is not None and first <= _day_of(r) < end
    )


_READ_MONTH = """(() => {
  const cost = document.getElementById('total-cost'), month = document.getElementById('month-to-date');
  const avg = {};
  for (const c of document.querySelectorAll('#chart-cost-usd circle.avg-point'))
    avg[c.getAttribute('data-day')] = Number(c.getAttribute('data-value'));
  return {
    cost: Number(cost.getAttribute('data-value')), previous: Number(cost.getAttribute('data-previous')),
    changePct: cost.getAttribute('data-change-pct'), costSub: cost.querySelector('.sub').textContent,
    month: Number(month.getAttribute('data-value')),
    projection: Number(month.getAttribute('data-projection')),
    monthSub: month.querySelector('.sub').textContent, avg,
    budgets: [...document.querySelectorAll('line.budget')].map(l => Number(l.getAttribute('data-value'))),
    scope: document.getElementById('scope').textContent,
  };
})()"""


def test_this_month_change_and_projection_equal_the_fixture(browser: Page, tmp_path: Path) -> None:
    today = datetime.now(timezone.utc).date()
    records = month_records(today)
    ledger = write_ledger(tmp_path / "month.jsonl", records)
    with dashboard(ledger, tmp_path / "server.log", "--budget-daily", "5", "--budget-monthly", "40") as url:
        browser.navigate(url + "?period=this-month")
        browser.wait_for("document.body.getAttribute('data-updates') >= '1'")
        dom = browser.eval(_READ_MONTH)
    first = today.replace(day=1)
    prev_first = (first - timedelta(days=1)).replace(day=1)
    tomorrow = today + timedelta(days=1)
    # This month so far; the same number of days at the start of last month (not past its end).
    now = _cost_between(records, first, tomorrow)
    before = _cost_between(records, prev_first, min(prev_first + timedelta(days=today.day), first))
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    assert dom["cost"] == pytest.approx(now) and dom["month"] == pytest.approx(now)
    assert dom["previous"] == pytest.approx(before)
    assert float(dom["changePct"]) == pytest.approx((now / before - 1) * 100)
    assert f"{(now / before - 1) * 100:+.0f}%" in dom["costSub"]
    assert dom["projection"] == pytest.approx(now / today.day * days_in_month)
    assert f"day {today.day} of {days_in_month}" in dom["monthSub"] and "budget $40.00" in dom["monthSub"]
    # The 7-day moving average of today: the mean cost of today and the six days before.
    week = _cost_between(records, today - timedelta(days=6), tomorrow)
    assert dom["avg"][today.isoformat()] == pytest.approx(week / 7)
    assert sorted(dom["budgets"]) == [5.0, 40.0]  # the daily line on the day chart, the monthly one
    assert f"{first.isoformat()} to {today.isoformat()} (this-month)" in dom["scope"] or first == today


def test_partly_priced_run_is_never_priced_under_its_unpriced_model(browser: Page, tmp_path: Path) -> None:
    from claude_run.query.summary import aggregate

    today = datetime.now(timezone.utc).date()
    records = month_records(today)
    ledger = write_ledger(tmp_path / "month.jsonl", records)
    partial = records[-1]
    with dashboard(ledger, tmp_path / "server.log") as url:
        browser.navigate(url + "?period=this-month")
        browser.wait_for("document.body.getAttribute('data-updates') >= '1'")
        dom = browser.eval(
            f"""(() => {{
              const row = document.querySelector('#latest-runs tr[data-id="{partial["id"]}"]');
              const unpriced = document.getElementById('total-unpriced');
              return {{
                mystery: [...document.querySelectorAll('#chart-cost-usd rect[data-model="mystery-model-9"]')]
                  .map(r => Number(r.getAttribute('data-value'))),
                haiku: [...document.querySelectorAll('#chart-cost-usd rect[data-model="claude-haiku-4-5"]')]
                  .map(r => [r.getAttribute('data-day'), Number(r.getAttribute('data-value'))]),
                mysteryCell: row.querySelector('.part[data-model="mystery-model-9"]').textContent,
                haikuCell: row.querySelector('.part[data-model="claude-haiku-4-5"]').textContent,
                rowPartial: row.getAttribute('data-partial'),
                costCell: row.querySelector('td.cost').textContent,
                unpricedRuns: Number(unpriced.getAttribute('data-runs')),
                unpricedTokens: Number(unpriced.getAttribute('data-tokens')),
                partialRuns: Number(unpriced.getAttribute('data-partial-runs')),
                partialTokens: Number(unpriced.getAttribute('data-partial-tokens')),
                costCard: document.querySelector('#total-cost .big').textContent,
              }};
            }})()"""
        )
    # The unpriced model has no dollar figure anywhere on the page: not in the chart, not in the row.
    assert dom["mystery"] == []  # no cost bar at all (its tokens are in the token chart)
    assert "$" not in dom["mysteryCell"] and "unpriced" in dom["mysteryCell"]
    assert "$0.12" in dom["haikuCell"] and (today.isoformat(), 0.12 + 2.5 * (today.day == 1)) in [
        (d, pytest.approx(v)) for d, v in dom["haiku"]
    ]
    assert dom["rowPartial"] == "1" and "partial" in dom["costCell"] and "partial" in dom["costCard"]
    # One count of unpriced usage, and it is `ledger summary`'s: by record, then by model.
    since = datetime.combine(today.replace(day=1), time(0), tzinfo=timezone.utc).timestamp()
    from claude_run.query.filters import Filters as QF
    from claude_run.query.timeparse import Bound

    f = QF(since=Bound(instant=since))
    whole = aggregate(ledger, (), f, timezone.utc, persist=False)
    by_model = aggregate(ledger, ("model",), f, timezone.utc, persist=False)
    assert (dom["unpricedRuns"], dom["unpricedTokens"]) == (
        whole.unpriced_total.runs,
        whole.unpriced_total.total_tokens,
    )
    assert dom["unpricedTokens"] + dom["partialTokens"] == by_model.unpriced_total.total_tokens
    assert (dom["partialRuns"], dom["partialTokens"]) == (1, 199_000 + 500 + 1_000_000)


_LAYOUT = """(() => {
  const cards = [...document.querySelectorAll('.cards > .card')];
  const tick = document.querySelector('#chart-cost-usd text.tick');
  const lines = (el) => {  // how many lines the element's text takes
    const range = document.createRange(); range.selectNodeContents(el);
    const rects = [...range.getClientRects()].filter(r => r.width > 0).sort((a, b) => a.top - b.top);
    let count = 0, bottom = -Infinity;  // boxes that overlap vertically are one line
    for (const r of rects) { if (r.top >= bottom - 1) count++; bottom = Math.max(bottom, r.bottom); }
    return count;
  };
  const words = [...document.querySelectorAll('#latest-runs td')].filter(
    td => !td.classList.contains('tags') && !td.classList.contains('models') && lines(td) > 1
  ).map(td => td.textContent);
  return {
    cardTops: cards.map(c => Math.round(c.getBoundingClientRect().top)),
    cards: cards.length,
    pageWidth: document.documentElement.scrollWidth,
    tickPx: tick.getBoundingClientRect().height,
    wrapped: words,
    tagsBroken: [...document.querySelectorAll('#latest-runs .tag, #latest-runs .part')].filter(
      t => lines(t) > 1).length,
    barWidth: Math.max(...[...document.querySelectorAll('#chart-project .bar-fill')].map(
      b => b.getBoundingClientRect().width)),
    sectionWidth: document.querySelector('#chart-project').getBoundingClientRect().width,
    barsInside: [...document.querySelectorAll('.bar-value, .bar-label')].every(
      el => el.getBoundingClientRect().right <= document.documentElement.clientWidth + 0.5),
  };
})()"""


@pytest.mark.parametrize(("width", "mobile"), [(1280, False), (390, True)])
def test_layout_on_a_screen_and_a_phone(browser: Page, tmp_path: Path, width: int, mobile: bool) -> None:
    now = datetime.now(timezone.utc)
    records = [*month_records(now.date()), *known_records(now)]
    ledger = write_ledger(tmp_path / "month.jsonl", records)
    with dashboard(ledger, tmp_path / "server.log", "--budget-daily", "5", "--budget-monthly", "40") as url:
        browser.viewport(width, 900, mobile=mobile)
        try:
            browser.navigate(url + "?period=30d")
            browser.wait_for("document.body.getAttribute('data-updates') >= '1'")
            dom = browser.eval(_LAYOUT)
            browser.screenshot(OUT / f"dashboard-{width}.png")
        finally:
            browser.call("Emulation.clearDeviceMetricsOverride")
    assert dom["cards"] == 6
    assert dom["wrapped"] == []  # dates, costs, statuses: never broken across lines
    assert dom["tagsBroken"] == 0  # a tag may move to the next line, never split in it
    if not mobile:
        assert len(set(dom["cardTops"])) == 1  # one row of cards
        assert dom["barWidth"] >= 0.4 * dom["sectionWidth"]  # the largest bar uses the panel's width
    else:
        assert dom["pageWidth"] <= width  # nothing wider than the phone: tables scroll in their box
        assert dom["barsInside"]  # every bar's label and figures on the screen
        assert dom["tickPx"] >= 9  # axis text readable (it is drawn in the chart's scaled units)


def test_printed_report_keeps_every_section_on_one_page(browser: Page, tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    now = datetime.now(timezone.utc)
    records = [*month_records(now.date()), *known_records(now)]
    ledger = write_ledger(tmp_path / "month.jsonl", records)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        _report_app(),
        [
            "report",
            "--html",
            str(out),
            "--ledger",
            str(ledger),
            "--since",
            "this-month",
            "--title",
            "Team spend",
            "--hide-path",
            "--budget-monthly",
            "40",
        ],
        env={"TZ": "UTC"},
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<title>Team spend</title>" in html and str(ledger) not in html
    browser.navigate(out.as_uri())
    summary = browser.eval("document.getElementById('pr-summary').textContent")
    assert summary.startswith(f"**Claude spend, {now.date().replace(day=1).isoformat()}")
    # Mark where each section starts and ends, then print as Chromium prints.
    sections = browser.eval(
        """(() => [...document.querySelectorAll('section')].map((s, i) => {
          const a = document.createElement('span'), b = document.createElement('span');
          a.textContent = 'SECSTART' + i + 'X'; b.textContent = 'SECEND' + i + 'X';
          s.prepend(a); s.append(b); return s.querySelector('h2').textContent;
        }))()"""
    )
    data = browser.pdf()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.pdf").write_bytes(data)
    pages = [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]

    def page_of(marker: str) -> int:
        found = [i for i, text in enumerate(pages) if marker in text.replace(" ", "").replace("\n", "")]
        assert len(found) == 1, (marker, found)
        return found[0]

    assert len(sections) >= 10 and len(pages) >= 2
    split = [h for i, h in enumerate(sections) if page_of(f"SECSTART{i}X") != page_of(f"SECEND{i}X")]
    assert split == []
