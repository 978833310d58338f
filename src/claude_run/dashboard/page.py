"""The HTML document around the rendered fragments: inline CSS and JS, nothing fetched, ever.

One template serves both the live page (`live=True`: a small script opens an EventSource on
`/events` and swaps the server-rendered fragments in) and the self-contained report file (no script
needs the network; the filter bar becomes a line of text).
"""

from __future__ import annotations

from html import escape

from .model import View
from .render import content, filter_form, options_signature

# Text #1b1b1b on #fff is 17:1; muted #4a4a4a is 8.9:1; both pass WCAG AAA for body text.
CSS = """
:root { color-scheme: light; --fg:#1b1b1b; --muted:#4a4a4a; --line:#d0d0d0; --card:#f5f7fa; --ok:#00603f;
  --bad:#a3191f; }
* { box-sizing: border-box; }
body { margin:0;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--fg); background:#fff; }
header { padding: 14px 24px; border-bottom: 1px solid var(--line); display:flex; flex-wrap:wrap;
  gap:8px 24px; align-items:baseline; }
header h1 { font-size: 20px; margin:0; }
header .where { color: var(--muted); font-size: 13px; overflow-wrap:anywhere; }
#live-status { font-size: 13px; color: var(--muted); }
#live-status.live::before { content:"● "; color: var(--ok); }
main { padding: 12px 24px 40px; max-width: 1280px; margin: 0 auto; }
form#filters, .filters-text { display:flex; flex-wrap:wrap; gap: 8px 18px; margin: 6px 0 10px;
  align-items:center; }
form#filters label { font-size: 14px; }
select { font: inherit; padding: 3px 6px; border:1px solid #767676; border-radius: 4px; background:#fff;
  color: var(--fg); }
select:focus-visible, a:focus-visible, button:focus-visible { outline: 3px solid #0072B2;
  outline-offset: 2px; }
.scope { color: var(--muted); font-size: 13px; margin: 4px 0 12px; }
.loading { background: #fff6ea; border: 1px solid #b35c00; border-radius: 6px; padding: 6px 10px; }
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px;
  margin-bottom: 8px; }
.card { background: var(--card); border:1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card h3 { margin:0; font-size: 13px; font-weight:600; color: var(--muted); text-transform: uppercase;
  letter-spacing: .03em; }
.card .big { margin: 2px 0; font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .big.long { font-size: 20px; }
.card .sub { font-size: 12.5px; color: var(--muted); }
.card.warn { border-color: #b35c00; background:#fff6ea; }
section { margin-top: 22px; }
h2 { font-size: 16px; margin: 0 0 6px; }
.two { display:grid; grid-template-columns: repeat(auto-fit, minmax(min(480px, 100%), 1fr)); gap: 0 24px; }
svg.chart { width: 100%; height: auto; display:block; }
svg .grid { stroke: #e3e3e3; stroke-width: 1; }
svg .axis { stroke: #767676; stroke-width: 1; }
svg .tick { font-size: 12px; fill: var(--muted); font-variant-numeric: tabular-nums; }
svg .label { font-size: 14px; fill: var(--fg); }
svg .value { font-size: 13px; fill: var(--fg); font-variant-numeric: tabular-nums; }
svg .sub { font-size: 11.5px; fill: var(--muted); font-variant-numeric: tabular-nums; }
svg rect.bar { stroke: #fff; stroke-width: 0.6; }
svg rect.bar:hover { stroke: #000; stroke-width: 1.5; }
.legend { list-style:none; display:flex; flex-wrap:wrap; gap: 4px 16px; padding:0; margin: 2px 0 6px;
  font-size: 13.5px; }
.swatch { display:inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px;
  vertical-align: -1px; border: 1px solid rgba(0,0,0,.35); }
.empty { color: var(--muted); font-style: italic; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align:left; vertical-align: top; }
th { font-weight: 600; background: #fafafa; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
.bars { display: grid; grid-template-columns: minmax(6em, max-content) minmax(80px, 1fr) max-content;
  gap: 4px 10px; align-items: center; margin: 4px 0 8px; font-size: 14px; }
.bar-row { display: contents; }
.bar-label { text-align: right; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  max-width: 16em; }
.bar-track { height: 20px; }
.bar-fill { display: block; height: 100%; min-width: 1px; background: #0072B2; border-radius: 2px; }
.bar-fill.other { background: #6E6E6E; }
.bar-row:hover .bar-fill { outline: 1.5px solid #000; }
.bar-value { font-variant-numeric: tabular-nums; white-space: nowrap; font-size: 13px; }
.bar-value small { display: block; color: var(--muted); font-size: 11.5px; }
td, th { white-space: nowrap; }
td.tags { color: var(--muted); white-space: normal; min-width: 12ch; }
.tag { white-space: nowrap; }
.part small { color: var(--muted); }
.part.unpriced small, .partial { color: #8a4600; font-weight: 600; }
.partial { font-size: 12px; }
.card .big .partial { font-size: 12px; vertical-align: middle; }
.swatch.avg { background: repeating-linear-gradient(90deg, #1b1b1b 0 3px, #fff 3px 5px); }
.swatch.budget { background: #a3191f; }
svg .budget-label { font-size: 12px; fill: #a3191f; }
#pr-summary { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px;
  margin: 8px 0 12px; white-space: pre-wrap; font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
/* A phone: the charts' text is drawn in the chart's own units, so it is made larger there, and every
   other day label is left out to make room. */
@media (max-width: 640px) {
  header, main { padding-left: 12px; padding-right: 12px; }
  svg .tick { font-size: 26px; }
  svg .tick.alt { display: none; }
  svg .budget-label { font-size: 22px; }
  .bars { grid-template-columns: minmax(0, 1fr) max-content; }
  .bar-label { grid-column: 1 / -1; text-align: left; max-width: none; margin-top: 4px; }
  .card .big { font-size: 22px; }
}
/* Print: no section is cut across pages, headings stay with what follows, tables fit the width. */
@media print {
  @page { size: A4; margin: 12mm; }
  body { font-size: 11px; }
  main, footer { max-width: none; padding: 0; }
  header { padding: 0 0 6px; }
  #live-status, form#filters, noscript { display: none; }
  .cards { grid-template-columns: repeat(3, 1fr); }
  .two { display: block; }
  section, .card, figure, svg, tr, #pr-summary { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  section { margin-top: 12px; }
  th { position: static; }
  thead { display: table-header-group; }
  table { font-size: 9.5px; table-layout: auto; }
  td, th { padding: 2px 4px; white-space: normal; }
  .scroll { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
.status { white-space: nowrap; font-weight: 600; }
.status.ok { color: var(--ok); }
.status.bad { color: var(--bad); }
a { color: #005a9c; }
footer { color: var(--muted); font-size: 12px; padding: 0 24px 24px; max-width:1280px; margin: 0 auto; }
"""

# No polling loop: the server pushes a new rendering over server-sent events when the ledger changes.
# EventSource reconnects by itself after a dropped connection.
LIVE_JS = """
(function () {
  var form = document.getElementById('filters');
  var statusEl = document.getElementById('live-status');
  var content = document.getElementById('content');
  if (!form || !window.EventSource) return;
  var source = null;
  function setStatus(text, live) { statusEl.textContent = text; statusEl.className = live ? 'live' : ''; }
  function query() { return new URLSearchParams(new FormData(form)).toString(); }
  function connect() {
    if (source) source.close();
    source = new EventSource('/events?' + query());
    source.addEventListener('view', function (ev) {
      var data = JSON.parse(ev.data);
      content.innerHTML = data.content;
      if (data.sig !== form.getAttribute('data-sig')) {
        form.innerHTML = data.filters;
        form.setAttribute('data-sig', data.sig);
      }
      var updates = Number(document.body.getAttribute('data-updates') || 0) + 1;
      document.body.setAttribute('data-updates', String(updates));
      setStatus('live', true);
    });
    source.addEventListener('error', function () { setStatus('reconnecting…', false); });
  }
  form.addEventListener('change', function () {
    history.replaceState(null, '', '?' + query());
    connect();
  });
  form.addEventListener('submit', function (ev) { ev.preventDefault(); connect(); });
  connect();
})();
"""


def summary_text(view: View) -> str:
    """A few lines of Markdown to paste into a pull request or a chat: the period, the cost and its
    change, the month's projection, unpriced usage and the top projects."""
    from .render import fmt_int, fmt_usd

    t = view["totals"]
    lines = [
        f"**Claude spend, {view['period']['label']}**: {fmt_usd(t['cost_usd'])} over {fmt_int(t['runs'])}"
        f" run{'s' if t['runs'] != 1 else ''}"
    ]
    c = view["change"]
    if c is not None:
        pct = f" ({c['change_pct']:+.0f}%)" if c["change_pct"] is not None else ""
        sign = "+" if c["change_usd"] >= 0 else "-"
        lines.append(
            f"- vs {c['first']} to {c['last']}: {fmt_usd(c['cost_usd'])},"
            f" {sign}{fmt_usd(abs(c['change_usd']))}{pct}"
        )
    m = view["month"]
    budget = view["budgets"]["monthly"]
    lines.append(
        f"- this month so far: {fmt_usd(m['cost_usd'])}, projected {fmt_usd(m['projection_usd'])}"
        + (f" of a {fmt_usd(budget)} budget" if budget else "")
    )
    if t["unpriced_runs"] or t["partial_runs"]:
        lines.append(
            f"- not in the cost: {fmt_int(t['unpriced_tokens'] + t['partial_tokens'])} tokens with no"
            f" known price ({t['unpriced_runs']} unpriced, {t['partial_runs']} partly priced"
            f" run{'s' if t['partial_runs'] != 1 else ''})"
        )
    top = [g for g in view["by_project"] if not g["key"].endswith(" others")][:3]
    if top:
        lines.append(
            "- top projects: " + ", ".join(f"{g['key']} {fmt_usd(g['totals']['cost_usd'])}" for g in top)
        )
    return "\n".join(lines)


def document(view: View, *, live: bool, title: str | None = None, hide_path: bool = False) -> str:
    heading = escape(title or "claude-run · spend")
    where = "" if hide_path else f'<span class="where">ledger {escape(view["ledger"])}</span>'
    summary = ""
    if live:
        bar = (
            f'<form id="filters" method="get" action="/" data-sig="{options_signature(view)}"'
            f' aria-label="Filters">{filter_form(view)}</form>'
        )
        status = '<span id="live-status" role="status" aria-live="polite">connecting…</span>'
        script = f"<script>{LIVE_JS}</script>"
    else:
        f = view["filters"]
        bits = [view["period"]["label"]] + [f"{k} {f[k]}" for k in ("project", "model", "tag") if f[k]]
        bar = f'<p class="filters-text" id="filters">{escape(", ".join(bits))}</p>'
        status = f'<span id="live-status">snapshot of {escape(view["generated_at"])}</span>'
        script = ""
        summary = (
            '<section aria-labelledby="h-summary"><h2 id="h-summary">Summary (Markdown, to paste into a'
            f' pull request)</h2><pre id="pr-summary">{escape(summary_text(view))}</pre></section>'
        )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Belt and braces for the report file: even a stray reference could not load anything.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self';"
        " form-action 'self'\">"
        f"<title>{heading}</title>"
        f"<style>{CSS}</style></head>"
        f'<body data-live="{1 if live else 0}" data-updates="0">'
        f"<header><h1>{heading}</h1>{where}{status}</header>"
        f'<main>{bar}{summary}<div id="content">{content(view)}</div></main>'
        "<footer>Costs are Claude's own figures, or list-price estimates where marked; unpriced usage"
        " is shown apart, never as $0. Generated by claude-run.</footer>"
        f"{script}</body></html>\n"
    )
