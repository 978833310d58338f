"""The dashboard and the HTML report in a real headless chromium, driven over the DevTools protocol.

Screenshots land in `.test-output/dashboard/` (gitignored) for a human to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
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
OUT = ROOT / ".test-output" / "dashboard"

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
  for (const rect of document.querySelectorAll('#chart-project rect.bar')) {
    projects[rect.getAttribute('data-key')] = Number(rect.getAttribute('data-value'));
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
