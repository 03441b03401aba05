#!/usr/bin/env bash
# GPU check (engine speed issue): the engine's GPU tests and the engine benchmark on the GPU,
# as one script for a machine with an NVIDIA GPU. CI has no GPU and never runs this.
#
#   benches/gpu/run.sh [--model GGUF]   builds here (needs nvcc and Rust), then runs
#   benches/gpu/run.sh --prebuilt DIR   runs binaries that benches/gpu/build.sh made elsewhere
#
# The GPU tests compare the tiny model's logits and greedy tokens on the GPU with the CPU's;
# MOAT_REQUIRE_GPU=1 makes a missing device a failure instead of a skip. The benchmark runs
# the real model when one is at hand (--model, or the default model in the store), and
# random weights with the Qwen2.5-Coder 0.5B, 1.5B and 7B shapes in any case: a GPU machine
# that reaches no network has no weights, and speed depends on the shapes alone.
# SHAPES overrides the shapes ("NAME:DTYPE ..."); OUT, where set, receives the JSON figures.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
prebuilt="" model=() failed=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prebuilt) prebuilt="$2"; shift 2 ;;
    --model) model=(--model "$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
if [[ -n "$prebuilt" ]]; then
  # CUDA's libraries where a GPU image keeps them (the toolkit, or PyTorch's wheels).
  for d in /usr/local/nvidia/lib64 /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    /opt/*/.venv/lib/python3*/site-packages/nvidia/cu1*/lib /usr/local/lib/python3*/dist-packages/nvidia/cu1*/lib; do
    [[ -d "$d" ]] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
  done
  export LD_LIBRARY_PATH
  if ldd "$prebuilt/moat" | grep 'not found'; then echo "missing libraries" >&2; exit 1; fi
  moat="$prebuilt/moat"
  MOAT_REQUIRE_GPU=1 "$prebuilt/gpu-tests" --nocapture --test-threads=1 || failed=1
else
  cargo build --release -p moat-cli --features cuda
  moat=target/release/moat
  MOAT_REQUIRE_GPU=1 cargo test --release -p moat-engine --features cuda --test gpu -- --nocapture ||
    failed=1
  cargo test --release -p moat-engine --features cuda --test tiny_model || failed=1
fi
save() { if [[ -n "${OUT:-}" ]]; then tee -a "$OUT/gpu-bench.jsonl"; else cat; fi; }
if [[ ${#model[@]} -gt 0 ]] || "$moat" model list 2>/dev/null | grep -q ready; then
  "$moat" bench engine --device cuda --runs 3 --json "${model[@]}" | save
fi
# A failed test does not stop the figures (a GPU lease is short), but fails the script.
for s in ${SHAPES:-qwen2.5-coder-0.5b:q8_0 qwen2.5-coder-1.5b:q8_0 qwen2.5-coder-7b:q8_0}; do
  "$moat" bench engine --device cuda --runs 3 --json --shape "${s%%:*}" --dtype "${s##*:}" | save ||
    failed=1
done
exit "$failed"
