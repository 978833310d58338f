#!/usr/bin/env bash
# The claude-run GitHub Action's main step (see action.yml and README "GitHub Action").
#
# Runs one task through claude-run (`prompt` / `prompt_file`), or imports claude-code-action's
# execution file (`execution_file`), into the ledger. Inputs arrive as INPUT_* environment
# variables, never spliced into this script's text, so no input can inject shell.
# claude-run itself writes the step outputs (cost_usd, tokens, status, session_id...) and the
# summary table; this script adds result_file, summary_file and exit_code, and always exits 0 so
# that the action's later steps (cache, artifact, comment) run; the action's last step fails it.
set -uo pipefail

fail() {
  echo "::error title=claude-run action::$1"
  echo "exit_code=2" >>"$GITHUB_OUTPUT"
  exit 0
}

# Split like a shell does (quotes group words) without expanding anything: NUL-separated words.
split_words() {
  python3 -c 'import shlex, sys
for word in shlex.split(sys.argv[1]):
    sys.stdout.write(word + "\0")' "$1"
}

# words NAME TEXT: the array NAME holds TEXT split into words.
words() {
  local tmp
  tmp=$(mktemp "$work/words.XXXXXX")
  split_words "$2" >"$tmp" || fail "cannot split input ${1,,}: unbalanced quotes?"
  mapfile -d '' -t "$1" <"$tmp"
  rm -f "$tmp"
}

# The venv the action's install step made (else the claude-run on PATH, as in the tests' runner).
claude_run="$RUNNER_TEMP/claude-run/venv/bin/claude-run"
[ -x "$claude_run" ] || claude_run=claude-run

work=${CLAUDE_RUN_ACTION_DIR:?}
ledger=${CLAUDE_RUN_ACTION_LEDGER:?}
summary=$(mktemp "$work/summary.XXXXXX.md")
result=""
real_summary=${GITHUB_STEP_SUMMARY:-/dev/null}

if [ -n "${INPUT_ANTHROPIC_API_KEY:-}" ]; then
  export ANTHROPIC_API_KEY="$INPUT_ANTHROPIC_API_KEY"
fi
if [ -n "${INPUT_CLAUDE_CODE_OAUTH_TOKEN:-}" ]; then
  export CLAUDE_CODE_OAUTH_TOKEN="$INPUT_CLAUDE_CODE_OAUTH_TOKEN"
fi

words TAGS "${INPUT_TAGS:-}"
tag_args=()
for t in "${TAGS[@]}"; do tag_args+=(--tag "$t"); done

if [ -n "${INPUT_EXECUTION_FILE:-}" ]; then
  cmd=("$claude_run" ledger import --ledger "$ledger" --execution-file "$INPUT_EXECUTION_FILE" "${tag_args[@]}")
  GITHUB_STEP_SUMMARY="$summary" "${cmd[@]}"
  rc=$?
else
  if [ -n "${INPUT_PROMPT_FILE:-}" ]; then
    [ -f "$INPUT_PROMPT_FILE" ] || fail "prompt_file not found: $INPUT_PROMPT_FILE"
    prompt_src=$INPUT_PROMPT_FILE
  else
    prompt_src=$(mktemp "$work/prompt.XXXXXX")
    printf '%s' "${INPUT_PROMPT:-}" >"$prompt_src"
  fi
  cmd=("$claude_run" - --track --ledger "$ledger" "${tag_args[@]}")
  [ -n "${INPUT_MAX_COST:-}" ] && cmd+=(--max-cost "$INPUT_MAX_COST")
  [ -n "${INPUT_BUDGET_DAILY:-}" ] && cmd+=(--budget-daily "$INPUT_BUDGET_DAILY")
  [ -n "${INPUT_BUDGET_MONTHLY:-}" ] && cmd+=(--budget-monthly "$INPUT_BUDGET_MONTHLY")
  [ -n "${INPUT_BUDGET_LEDGER:-}" ] && cmd+=(--budget-ledger "$INPUT_BUDGET_LEDGER")
  words BUDGET_TAGS "${INPUT_BUDGET_TAG:-}"
  for t in "${BUDGET_TAGS[@]}"; do cmd+=(--budget-tag "$t"); done
  cmd+=(--)
  [ -n "${INPUT_MODEL:-}" ] && cmd+=(--model "$INPUT_MODEL")
  words CLAUDE_ARGS "${INPUT_CLAUDE_ARGS:-}"
  cmd+=("${CLAUDE_ARGS[@]}")
  result=$(mktemp "$work/result.XXXXXX.md")
  GITHUB_STEP_SUMMARY="$summary" "${cmd[@]}" <"$prompt_src" >"$result"
  rc=$?
  if [ -s "$result" ]; then
    echo "::group::Claude's result"
    cat "$result"
    echo
    echo "::endgroup::"
  fi
fi

cat "$summary" >>"$real_summary"
[ -s "$summary" ] || summary=""
{
  echo "result_file=$result"
  echo "summary_file=$summary"
  echo "exit_code=$rc"
} >>"$GITHUB_OUTPUT"
[ "$rc" -eq 0 ] || echo "::warning title=claude-run action::claude-run exited $rc"
exit 0
