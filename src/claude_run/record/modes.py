"""The values of a record's `mode`. Plain names, no imports: the run's start-up path reads them.

Three are the ways claude-run runs claude (their behaviour is the mode table, `run/modes.py`); two
say how a record arrived without a run of ours.
"""

NON_INTERACTIVE = "non-interactive"
HYBRID = "hybrid"
INTERACTIVE = "interactive"
RUN_MODES = (NON_INTERACTIVE, HYBRID, INTERACTIVE)
IMPORTED = "imported"  # read from a transcript or an execution file; gives way to any record of its session
TELEMETRY = "telemetry"  # written by `claude-run telemetry serve`
MODES = (*RUN_MODES, IMPORTED, TELEMETRY)
