//! End to end with the real default model (fetched by `moat model fetch`; `.ci/run` does it).
//! Greedy decoding, so the outputs are deterministic; each case has one right answer.

use moat_engine::{CancelFlag, Engine, EngineOptions, FimPrompt, GenerateParams};
use std::process::Command;

/// One real model at a time: two would each spin up a thread per core and slow both 10x.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn model_path() -> std::path::PathBuf {
    let store = moat_models::Store::from_env();
    store.ready_path(&moat_models::default_model()).expect(
        "the default model must be fetched first: run `moat model fetch` (bash .ci/run does)",
    )
}

/// Removes all whitespace, so that `fib(n-1)` matches `fib(n - 1)`.
/// `moat complete LOCATION --json --threads 2 EXTRA…`, which must succeed.
fn complete_json(location: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["complete", location, "--json", "--threads", "2"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

struct Case {
    lang: &'static str,
    path: &'static str,
    prefix: &'static str,
    suffix: &'static str,
    /// Any of these, whitespace removed, must be in the completion.
    expect_any: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        lang: "python",
        path: "fib.py",
        prefix: "def fib(n):\n    ",
        suffix: "\n\n\nprint(fib(10))\n",
        expect_any: &["fib(n-1)+fib(n-2)"],
    },
    Case {
        lang: "rust",
        path: "src/main.rs",
        prefix: "fn factorial(n: u64) -> u64 {\n    if n == 0 { 1 } else { n * ",
        suffix: " }\n}\n\nfn main() {\n    println!(\"{}\", factorial(5));\n}\n",
        expect_any: &["factorial(n-1)"],
    },
    Case {
        lang: "typescript",
        path: "src/math.ts",
        prefix: "export function add(a: number, b: number): number {\n  return ",
        suffix: ";\n}\n",
        expect_any: &["a+b"],
    },
    Case {
        lang: "go",
        path: "max.go",
        prefix: "package main\n\nfunc max(a, b int) int {\n\tif a > b {\n\t\treturn ",
        suffix: "\n\t}\n\treturn b\n}\n",
        expect_any: &["a"],
    },
    Case {
        lang: "java",
        path: "Parity.java",
        prefix: "public class Parity {\n    public static boolean isEven(int n) {\n        return ",
        suffix: ";\n    }\n}\n",
        expect_any: &["n%2==0"],
    },
];

#[test]
fn real_model_fills_unambiguous_holes_in_five_languages() {
    let _one = serial();
    let mut engine = Engine::load(&model_path(), &EngineOptions::default()).unwrap();
    let params = GenerateParams {
        max_tokens: 48,
        ..Default::default()
    };
    let mut failures = Vec::new();
    for case in CASES {
        let prompt = FimPrompt {
            prefix: case.prefix.into(),
            suffix: case.suffix.into(),
            path: Some(case.path.into()),
            ..Default::default()
        };
        let g = engine
            .complete(&prompt, &params, &CancelFlag::new(), &mut |_| {})
            .unwrap();
        eprintln!(
            "{}: {:?} ({:?}, {} tokens)",
            case.lang, g.text, g.stop, g.timings.generated_tokens
        );
        let got = squash(&g.text);
        let ok = if case.expect_any == ["a"] {
            got == "a"
        } else {
            case.expect_any.iter().any(|e| got.contains(e))
        };
        if !ok {
            failures.push(format!("{}: {:?}", case.lang, g.text));
        }
        // Trimming: nothing of the suffix's next line is repeated.
        let next = case
            .suffix
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && *l != ";")
            .unwrap_or("");
        if !next.is_empty() && next.len() > 2 {
            assert!(
                !g.text.contains(next),
                "{}: repeats the suffix: {:?}",
                case.lang,
                g.text
            );
        }
    }
    assert!(failures.is_empty(), "wrong completions: {failures:#?}");
}

#[test]
fn real_model_warm_cache_matches_cold_run() {
    let _one = serial();
    let path = model_path();
    let mut warm = Engine::load(&path, &EngineOptions::default()).unwrap();
    let base = "import os\n\ndef list_python_files(root):\n    result = []\n    for dirpath, _, names in os.walk(root):\n        for name in names:\n            if name.endswith(";
    let params = GenerateParams {
        max_tokens: 12,
        ..Default::default()
    };
    let p1 = FimPrompt {
        prefix: base.into(),
        suffix: "):\n".into(),
        ..Default::default()
    };
    let p2 = FimPrompt {
        prefix: format!("{base}\".py\""),
        suffix: "):\n".into(),
        ..Default::default()
    };
    warm.complete(&p1, &params, &CancelFlag::new(), &mut |_| {})
        .unwrap();
    let w = warm
        .complete(&p2, &params, &CancelFlag::new(), &mut |_| {})
        .unwrap();
    assert!(
        w.timings.cached_tokens > 30,
        "prefix was not reused: {:?}",
        w.timings
    );
    let mut cold = Engine::load(&path, &EngineOptions::default()).unwrap();
    let c = cold
        .complete(&p2, &params, &CancelFlag::new(), &mut |_| {})
        .unwrap();
    assert_eq!(w.tokens, c.tokens);
}

#[test]
fn cli_complete_prints_json_with_timings() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fib.py");
    std::fs::write(&file, "def fib(n):\n    \n\n\nprint(fib(10))\n").unwrap();
    let v = complete_json(&format!("{}:2:5", file.display()), &[]);
    assert!(
        squash(v["text"].as_str().unwrap()).contains("fib(n-1)+fib(n-2)"),
        "{v}"
    );
    for key in [
        "load_ms",
        "prompt_tokens",
        "prefill_ms",
        "generated_tokens",
        "decode_ms",
        "cached_tokens",
    ] {
        assert!(v["timings"][key].is_number(), "timings.{key} missing: {v}");
    }
}

#[test]
fn own_kernels_pick_the_same_tokens_as_candle_kernels() {
    let _one = serial();
    let path = model_path();
    let prompt = FimPrompt {
        prefix: "import json\n\ndef load_config(path):\n    ".into(),
        suffix: "\n".into(),
        ..Default::default()
    };
    let load = |own_kernels| {
        let opts = EngineOptions {
            own_kernels,
            ..Default::default()
        };
        Engine::load(&path, &opts).unwrap()
    };
    let (mut ours, mut theirs) = (load(true), load(false));
    let mut ids = ours.render_fim(&prompt).unwrap();
    // Both engines read the same text (candle's choices, teacher-forced). Our kernels round
    // differently (8-bit activations everywhere, f16 KV cache), so a near tie may flip;
    // anything else must agree.
    let argmax = |l: &[f32]| (0..l.len()).max_by(|a, b| l[*a].total_cmp(&l[*b])).unwrap();
    let mut flips = 0;
    for step in 0..32 {
        let (a, b) = (ours.logits(&ids).unwrap(), theirs.logits(&ids).unwrap());
        let (ta, tb) = (argmax(&a), argmax(&b));
        if ta != tb {
            let margin = b[tb] - b[ta];
            assert!(
                margin < 0.5,
                "step {step}: ours picked {ta}, candle {tb} by a margin of {margin}"
            );
            flips += 1;
        }
        ids.push(tb as u32);
    }
    assert!(flips <= 2, "{flips} of 32 top-1 tokens differ");
}

#[test]
fn cli_complete_draws_on_the_repository() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pricing.py"),
        "\"\"\"Prices in cents.\"\"\"\n\n\ndef apply_discount(price_cents, percent_off):\n    \"\"\"The price after taking `percent_off` percent off, rounded down.\"\"\"\n    return price_cents * (100 - percent_off) // 100\n\n\ndef add_tax(price_cents, rate):\n    return price_cents + price_cents * rate // 100\n",
    )
    .unwrap();
    let file = dir.path().join("checkout.py");
    std::fs::write(
        &file,
        "from pricing import apply_discount, add_tax\n\n\ndef checkout(cart, coupon_percent):\n    subtotal = sum(item.price_cents for item in cart)\n    discounted = \n    return add_tax(discounted, 8)\n",
    )
    .unwrap();
    let location = format!("{}:6:18", file.display());
    let run = |context: &str| complete_json(&location, &["--context", context]);
    let repo = run("repo");
    let sources = repo["sources"].as_array().unwrap();
    assert!(
        sources
            .iter()
            .any(|s| s["kind"] == "definition" && s["path"] == "pricing.py"),
        "{repo}"
    );
    // The helper's own definition is in the prompt, and the model calls it.
    assert!(
        repo["text"].as_str().unwrap().contains("apply_discount("),
        "{repo}"
    );
    let file_only = run("file");
    assert!(
        !file_only["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["path"] == "pricing.py"),
        "{file_only}"
    );
}
