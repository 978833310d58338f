"""The one read engine: every report, the dashboard, metrics, push and budgets read the ledger here.

`engine.open_engine(ledger)` gives a DuckDB connection whose views are the counted rows (the fold,
the multi-model split with its residual, unpriced parts apart); `summary`, `selection` and the
rest are small Python around plain SQL over those views.
"""
