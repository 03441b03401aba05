#!/usr/bin/env bash
# Builds the CUDA binaries on a machine without a GPU, for a GPU machine without Rust:
#
#   benches/gpu/build.sh OUTDIR        then, there:  benches/gpu/run.sh --prebuilt OUTDIR
#
# Needs CUDA_ROOT: a CUDA toolkit with nvcc, its headers and the libraries candle links
# (cudart, cublas, cublasLt, curand, nvrtc). One from pip, by package name:
#   python3 -m pip install --target DIR "cuda-toolkit[nvcc,cudart,cublas,curand,nvrtc,crt,cccl]==13.0.*"
#   CUDA_ROOT=DIR/nvidia/cu13
# Match the toolkit's major version to the GPU machine's driver. CUDA_COMPUTE_CAP picks the
# GPU generation (default 90: H100/H200; 80: A100; 86: A10).
set -euo pipefail
out="${1:?usage: benches/gpu/build.sh OUTDIR}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
: "${CUDA_ROOT:?set CUDA_ROOT to a CUDA toolkit (see the comment at the top)}"
export CUDA_ROOT PATH="$CUDA_ROOT/bin:$PATH" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
lib="$CUDA_ROOT/lib"
# The linker wants unversioned names; pip's wheels ship only the versioned ones.
for f in "$lib"/lib{cublas,cublasLt,cudart,curand,nvrtc}.so.*; do
  [[ "$f" == *builtins* || "$f" == *.alt.* ]] && continue
  base="${f%%.so.*}.so"
  [[ -e "$base" ]] || ln -s "$(basename "$f")" "$base"
done
# The driver library comes with the driver, not the toolkit. Without a driver here, link
# against a stub that defines every driver function cudarc declares; the real libcuda.so.1
# is loaded on the GPU machine.
if ! ldconfig -p | grep -q 'libcuda\.so\b' && [[ ! -e "$lib/stubs/libcuda.so" ]]; then
  decl="$(cd "$root" && cargo metadata --format-version 1 --features moat-cli/cuda |
    python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc"))')"
  mkdir -p "$lib/stubs"
  grep -ohE '^\s+fn cu[A-Za-z0-9_]+\(' "$(dirname "$decl")/src/driver/sys/mod.rs" |
    sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/void \1(void){}/' | sort -u >"$lib/stubs/cuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$lib/stubs/libcuda.so" "$lib/stubs/cuda_stub.c"
fi
cd "$root"
cargo build --release -p moat-cli --features cuda
mkdir -p "$out"
cp target/release/moat "$out/moat"
tests="$(cargo test --release -p moat-engine --features cuda --test gpu --no-run --message-format=json |
  python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="gpu": print(m["executable"])')"
cp "$tests" "$out/gpu-tests"
ls -la "$out"
