#!/usr/bin/env bash
# Peer benchmark: moat against llama.cpp on the same GGUF, prompts and threads (see
# peer.py). llama.cpp's Python binding is compiled from source by pip (about ten
# minutes on two cores, once) into a throwaway virtualenv outside the repository; no
# llama.cpp code or binary ever enters the repository.
#
#   benches/peer/run.sh [--model GGUF] [--threads N] [--runs N] [--json]
#
# Without --model: the default model's prepared file. MOAT_PEER_VENV moves the virtualenv
# (default ~/.cache/moat/peer/llama-venv).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${MOAT_PEER_VENV:-$HOME/.cache/moat/peer/llama-venv}"

# Built for this CPU (-march=native) but without AMX: ggml's AMX code dies of an illegal
# instruction on this machine's virtual CPU (and has no kernel for Q5_0, the default
# model's main type, anyway). The marker records the flags a build was made with.
flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
marker="llama-cpp-python==0.3.36 GGML_NATIVE=ON $flags"
if [[ "$(cat "$venv/moat-peer-build" 2>/dev/null)" != "$marker" ]] ||
    ! "$venv/bin/python" -c "import llama_cpp, numpy" 2>/dev/null; then
    echo "building llama-cpp-python 0.3.36 into $venv (about ten minutes)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$flags' -DCMAKE_CXX_FLAGS='$flags'" \
        "$venv/bin/pip" install -q --no-cache-dir llama-cpp-python==0.3.36 numpy
    echo "$marker" > "$venv/moat-peer-build"
fi

moat="$root/target/release/moat"
(cd "$root" && cargo build -q --release -p moat-cli)

args=("$@")
if [[ " $* " != *" --model "* ]]; then
    args+=(--model "$("$moat" model path)")
fi
exec "$venv/bin/python" "$root/benches/peer/peer.py" --moat "$moat" "${args[@]}"
