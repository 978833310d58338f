"""The HTML document around the rendered fragments: inline CSS and JS, nothing fetched, ever.

One template serves both the live page (`live=True`: a small script opens an EventSource on
`/events` and swaps the server-rendered fragments in) and the self-contained report file (no script
needs the network; the filter bar becomes a line of text).
"""

from __future__ import annotations

from html import escape

from .data import View
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
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px;
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
.two { display:grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 0 24px; }
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
td.tags { color: var(--muted); max-width: 260px; overflow-wrap:anywhere; }
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


def document(view: View, *, live: bool) -> str:
    ledger = escape(view["ledger"])
    if live:
        bar = (
            f'<form id="filters" method="get" action="/" data-sig="{options_signature(view)}"'
            f' aria-label="Filters">{filter_form(view)}</form>'
        )
        status = '<span id="live-status" role="status" aria-live="polite">connecting…</span>'
        script = f"<script>{LIVE_JS}</script>"
    else:
        f = view["filters"]
        bits = [f"period {f['period']}"] + [f"{k} {f[k]}" for k in ("project", "model", "tag") if f[k]]
        bar = f'<p class="filters-text" id="filters">Filters: {escape(", ".join(bits))}</p>'
        status = f'<span id="live-status">snapshot of {escape(view["generated_at"])}</span>'
        script = ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Belt and braces for the report file: even a stray reference could not load anything.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self';"
        " form-action 'self'\">"
        "<title>claude-run · spend</title>"
        f"<style>{CSS}</style></head>"
        f'<body data-live="{1 if live else 0}" data-updates="0">'
        f'<header><h1>claude-run · spend</h1><span class="where">ledger {ledger}</span>{status}</header>'
        f'<main>{bar}<div id="content">{content(view)}</div></main>'
        "<footer>Costs are Claude's own figures, or list-price estimates where marked; unpriced usage"
        " is shown apart, never as $0. Generated by claude-run.</footer>"
        f"{script}</body></html>\n"
    )
