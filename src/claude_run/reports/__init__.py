"""Reports over the ledger: filters, grouping, folding, a rebuildable rollup, and output formats.

The public, stable entry points live in `claude_run.reports.query` (`Filters`, `aggregate`, `latest`,
`find`, `iter_selected`); the CLI commands (`claude-run ledger summary|compare|list|show|export`) are
thin wrappers in `claude_run.commands.ledger_reports`.
"""
