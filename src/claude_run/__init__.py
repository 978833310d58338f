"""claude-run: make every Claude Code run accountable."""

__version__ = "0.1.0"
