#!/usr/bin/env bash
# The main job on a fresh machine: set up, run one tracked task through the REAL Claude Code CLI,
# into the default local ledger, then print the ledger's summary.
#
# No API key or network is needed: claude talks to a local mock of the Anthropic Messages API
# (scripts/mock_api.py) and keeps its own state in a throwaway HOME. The ledger is your real
# default one ($XDG_DATA_HOME/claude-run/ledger.jsonl, i.e. ~/.local/share/claude-run/ on Linux).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

claude_bin=$(ls node_modules/@anthropic-ai/claude-code-*/claude 2>/dev/null | head -n 1 || true)
if [ -z "$claude_bin" ]; then
  echo "demo: the Claude Code CLI is not installed (npm missing?)" >&2
  exit 127
fi

export XDG_DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"   # keep the default ledger where it belongs
unset CLAUDE_RUN_LEDGER
demo_home=$(mktemp -d)
url_file="$demo_home/mock-url"
.venv/bin/python scripts/mock_api.py --url-file "$url_file" &
mock_pid=$!
trap 'kill "$mock_pid" 2>/dev/null || true; rm -rf "$demo_home"' EXIT
for _ in $(seq 100); do [ -s "$url_file" ] && break; sleep 0.1; done

echo "\$ claude-run \"say hello\" --track --tag demo=yes -- --model claude-sonnet-4-5"
HOME="$demo_home" ANTHROPIC_BASE_URL="$(cat "$url_file")" ANTHROPIC_API_KEY="demo-key-not-a-secret" \
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  .venv/bin/claude-run "say hello" --track --tag demo=yes --claude-bin "$claude_bin" -- --model claude-sonnet-4-5

echo
echo "\$ claude-run ledger summary        # $(.venv/bin/claude-run ledger path 2>/dev/null || echo default ledger)"
.venv/bin/claude-run ledger summary
