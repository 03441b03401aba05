#!/usr/bin/env bash
# GPU check (engine speed issue): the CUDA build, the engine's GPU tests, and the engine
# benchmark on the GPU, as one script for a machine with an NVIDIA GPU, the CUDA toolkit
# (nvcc) and a Rust toolchain. CI has no GPU and never runs this.
#
#   benches/gpu/run.sh [--model GGUF]
#
# The GPU tests compare the tiny model's logits and greedy tokens on the GPU with the CPU's;
# MOAT_REQUIRE_GPU=1 makes a missing device a failure instead of a skip.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
cargo build --release -p moat-cli --features cuda
MOAT_REQUIRE_GPU=1 cargo test --release -p moat-engine --features cuda --test gpu -- --nocapture
cargo test --release -p moat-engine --features cuda --test tiny_model
target/release/moat bench engine --device cuda --runs 3 --json "$@"
