"""Reports over the ledger: the command-line grammar (dates, filters, `--by`) and the output formats.

The numbers come from the one read engine (`claude_run.query`); the CLI commands
(`claude-run ledger summary|compare|list|show|export|sql`) are thin wrappers in
`claude_run.commands.ledger_reports`.
"""
