#!/usr/bin/env bash
# claude-run in any CI (Jenkins, Buildkite, CircleCI, Azure Pipelines, a cron job...): run one task
# under a daily budget, keep this build's ledger for the artifacts and add it to a spend history.
#
#   examples/ci/claude-run-ci.sh TASK_NAME "PROMPT" [-- CLAUDE ARGS...]
#
# Environment (all optional):
#   CLAUDE_RUN_STATE_DIR    kept between builds (cache it): the spend history   [.claude-run]
#   CLAUDE_RUN_OUT_DIR      publish as build artifacts: ledger.jsonl, summary.md  [claude-run-out]
#   CLAUDE_RUN_DAILY_BUDGET daily budget in USD for the team tag                  [20]
#   CLAUDE_RUN_TEAM         the team tag the budget counts                        [default]
# Exit code: claude-run's (0 success, 75 budget reached and nothing run, else the run failed).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 TASK_NAME PROMPT [-- CLAUDE ARGS...]" >&2
  exit 2
fi
task=$1
prompt=$2
shift 2
[ "${1:-}" = "--" ] && shift

state=${CLAUDE_RUN_STATE_DIR:-.claude-run}
out=${CLAUDE_RUN_OUT_DIR:-claude-run-out}
history="$state/history/ledger.jsonl"
mkdir -p "$(dirname "$history")" "$out"
export CLAUDE_RUN_LEDGER="$out/ledger.jsonl"

rc=0
claude-run "$prompt" --track \
  --tag task="$task" --tag team="${CLAUDE_RUN_TEAM:-default}" \
  --budget-daily "${CLAUDE_RUN_DAILY_BUDGET:-20}" --budget-tag team --budget-ledger "$history" \
  -- "$@" || rc=$?

if [ -s "$CLAUDE_RUN_LEDGER" ]; then
  claude-run ledger summary --format markdown --title "Claude Code: $task" \
    --ledger "$CLAUDE_RUN_LEDGER" > "$out/summary.md"
  claude-run ledger merge "$CLAUDE_RUN_LEDGER" --ledger "$history"
fi
exit "$rc"
