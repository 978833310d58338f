"""Command groups of the claude-run CLI, one module each."""
