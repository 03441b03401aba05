#!/usr/bin/env python3
"""moat against llama.cpp on the same GGUF, the same prompts and the same thread count.

The prompts are `moat bench engine`'s own, as token ids (`--dump-prompts`), so both engines
read exactly the same tokens. Runs alternate (moat, llama.cpp, moat, ...), each in a process
of its own so that peak RSS is each engine's; medians over the runs; ratios moat / llama.cpp.

Needs the `llama_cpp` module (llama.cpp's Python binding); `run.sh` builds it from source
into a virtualenv outside the repository and runs this file with that virtualenv's Python.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def llama_worker(args):
    """One llama.cpp run over the dumped prompts; prints one JSON object."""
    import numpy as np
    from llama_cpp import Llama

    with open(args.prompts) as f:
        prompts = json.load(f)
    tokens, sizes, steps = prompts["tokens"], prompts["sizes"], prompts["decode_steps"]
    t = time.perf_counter()
    llm = Llama(
        model_path=args.model,
        n_ctx=max(sizes) + steps + 16,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_batch=512,
        verbose=False,
    )
    load_ms = (time.perf_counter() - t) * 1e3
    # One untimed pass first, as `moat bench engine` does: llama.cpp maps the file and its
    # first evaluation reads the weights in and allocates its buffers.
    llm.eval(tokens[:32])
    prefill, decode = {}, {}
    for n in sizes:
        llm.reset()
        t = time.perf_counter()
        llm.eval(tokens[:n])
        prefill[str(n)] = n / (time.perf_counter() - t)
        # Greedy, end-of-text ignored, as `moat bench engine` decodes. The binding keeps
        # no logits unless asked for all of them: read the last row from the context.
        vocab = llm.n_vocab()

        def last_logits():
            return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(vocab,))

        t = time.perf_counter()
        for _ in range(steps):
            llm.eval([int(np.argmax(last_logits()))])
        decode[str(n)] = steps / (time.perf_counter() - t)
    print(
        json.dumps(
            {
                "load_ms": load_ms,
                "prefill_tok_s": prefill,
                "decode_tok_s": decode,
                # Linux reports kilobytes.
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def run_json(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--moat", help="the moat binary (a release build)")
    p.add_argument("--model", required=True, help="a GGUF file both engines load")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--prompts", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return llama_worker(args)
    if not args.moat:
        p.error("--moat is required")

    model = os.path.abspath(args.model)
    moat = [args.moat, "--threads", str(args.threads), "bench", "engine", "--model", model]
    with tempfile.TemporaryDirectory() as tmp:
        prompts = os.path.join(tmp, "prompts.json")
        subprocess.run(moat + ["--dump-prompts", prompts], check=True)
        llama = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model]
        llama += ["--threads", str(args.threads), "--prompts", prompts]
        runs = {"moat": [], "llama.cpp": []}
        for r in range(args.runs):
            print(f"run {r + 1}/{args.runs}", file=sys.stderr)
            runs["moat"].append(run_json(moat + ["--runs", "1", "--json"]))
            runs["llama.cpp"].append(run_json(llama))

    def med(engine, key, size=None):
        vals = [r[key] if size is None else r[key][size] for r in runs[engine]]
        return statistics.median(vals)

    sizes = sorted(runs["moat"][0]["prefill_tok_s"].keys(), key=int)
    rows = []
    for what in ("prefill_tok_s", "decode_tok_s"):
        for n in sizes:
            a, b = med("moat", what, n), med("llama.cpp", what, n)
            rows.append({"what": what, "context": int(n), "moat": a, "llama.cpp": b, "ratio": a / b})
    a, b = med("moat", "peak_rss_mb"), med("llama.cpp", "peak_rss_mb")
    rows.append({"what": "peak_rss_mb", "context": None, "moat": a, "llama.cpp": b, "ratio": a / b})
    if args.json:
        print(json.dumps({"model": model, "threads": args.threads, "runs": args.runs, "rows": rows}))
        return
    print(f"model {model}, {args.threads} threads, medians of {args.runs} alternating runs")
    print(f"{'':16}{'context':>8}{'moat':>10}{'llama.cpp':>11}{'moat/llama':>12}")
    for r in rows:
        ctx = "" if r["context"] is None else r["context"]
        print(f"{r['what']:16}{ctx:>8}{r['moat']:>10.1f}{r['llama.cpp']:>11.1f}{r['ratio']:>12.2f}")


if __name__ == "__main__":
    main()
