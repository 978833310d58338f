#!/usr/bin/env bash
# The claude-run GitHub Action's first step (action.yml): check the inputs, choose the paths.
# Outputs: work (this invocation's scratch directory), ledger, ledger_dir, save_key, pip_key.
set -euo pipefail

given=0
for value in "${INPUT_PROMPT:-}" "${INPUT_PROMPT_FILE:-}" "${INPUT_EXECUTION_FILE:-}"; do
  [ -n "$value" ] && given=$((given + 1))
done
if [ "$given" -ne 1 ]; then
  echo "::error title=claude-run action::give exactly one of prompt, prompt_file and execution_file"
  exit 2
fi

base="${RUNNER_TEMP:?}/claude-run"
mkdir -p "$base"
work=$(mktemp -d "$base/step.XXXXXX") # one per use of the action in a job
ledger=${INPUT_LEDGER:-$base/ledger/ledger.jsonl}
ledger_dir=$(dirname "$ledger")
mkdir -p "$ledger_dir"
# Caches are immutable: each save needs a key of its own; restores take the newest by prefix.
save_key=""
if [ -n "${INPUT_CACHE_KEY:-}" ]; then
  save_key="$INPUT_CACHE_KEY-$GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT-$GITHUB_JOB-$(basename "$work")"
fi
# The pip cache follows what is installed: the spec, or this action's own pyproject.toml.
if [ -n "${INPUT_SPEC:-}" ]; then
  what=$INPUT_SPEC
else
  what=$(sha256sum "$GITHUB_ACTION_PATH/pyproject.toml" | cut -c1-16)
fi
pip_key="claude-run-pip-${RUNNER_OS:-Linux}-py${INPUT_PYTHON:-system}-$(printf '%s' "$what" | sha256sum | cut -c1-16)"
{
  echo "work=$work"
  echo "ledger=$ledger"
  echo "ledger_dir=$ledger_dir"
  echo "save_key=$save_key"
  echo "pip_key=$pip_key"
} >>"$GITHUB_OUTPUT"
