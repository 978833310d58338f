#!/usr/bin/env bash
# Set up a development environment from scratch: a venv with claude-run and its test tools, and the
# real Claude Code CLI (npm) that the end-to-end tests drive. Idempotent: re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
CLAUDE_CODE_VERSION="${CLAUDE_CODE_VERSION:-2.1.330}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]'

# The real CLI for end-to-end tests. --ignore-scripts: the postinstall step is not needed, we run
# the platform binary directly (node_modules/@anthropic-ai/claude-code-linux-x64/claude).
if command -v npm >/dev/null 2>&1; then
  if [ ! -e "node_modules/@anthropic-ai/claude-code/package.json" ] || [ ! -e node_modules/ccusage/package.json ] ||
     ! grep -q "\"version\": \"$CLAUDE_CODE_VERSION\"" node_modules/@anthropic-ai/claude-code/package.json; then
    # One install for all: separate --no-save installs remove each other's packages. ccusage 18 and
    # the native ccusage 20 are for the import cross-check test and benchmark.
    extra=()
    if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ]; then extra+=("@ccusage/ccusage-linux-x64@20"); fi
    npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
      "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" ccusage@18 "${extra[@]}" >/dev/null
  fi
else
  echo "setup: npm not found: end-to-end tests with the real Claude CLI will be skipped" >&2
fi
