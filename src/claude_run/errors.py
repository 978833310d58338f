"""One small hierarchy of errors, each mapped once (in the CLI) to a message and an exit code.

Exit codes are part of the public contract (README, "Exit codes"): scripts and CI steps branch on them.
"""

from __future__ import annotations


class ClaudeRunError(Exception):
    """Base of every error claude-run reports as a one-line message instead of a traceback."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def report(self) -> int:
        """Say it on stderr, in the one shape every command uses; the exit code to end with."""
        import sys

        sys.stderr.write(f"claude-run: {self.message}\n")
        return self.exit_code


class UsageError(ClaudeRunError):
    """Bad command-line input (unknown option, malformed tag, bad date)."""

    exit_code = 2


class LedgerError(ClaudeRunError):
    """The ledger cannot be read or written (permissions, symlink, disk full, lock)."""

    exit_code = 74  # EX_IOERR


class LedgerCorrupt(LedgerError):
    """`ledger verify` found torn or invalid lines."""

    exit_code = 1


class BadInputFile(ClaudeRunError):
    """A file handed to an import is not what it claims to be (malformed, truncated): nothing imported."""

    exit_code = 65  # EX_DATAERR


class BudgetExceeded(ClaudeRunError):
    """A daily/monthly budget is already spent: the run is refused before it starts."""

    exit_code = 75


class ClaudeNotFound(ClaudeRunError):
    """The `claude` executable is not installed or not where we were told."""

    exit_code = 127


class TelemetryError(ClaudeRunError):
    """The OTLP receiver or exporter could not start or deliver."""

    exit_code = 70
