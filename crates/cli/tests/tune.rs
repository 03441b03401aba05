//! `moat tune` end to end with the tiny model: data, training, held-out scores, the
//! adapter and manifest, merge (refused when flagged unless forced), resume, `model list`,
//! and clear errors.

use moat_engine::tiny::{write_tiny_model, TinySpec};

mod common;
use common::moat;

#[test]
fn tune_merge_list_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let model = dir.path().join("tiny.gguf");
    write_tiny_model(&model, &TinySpec::default()).unwrap();
    let m = model.to_str().unwrap();
    let repo = dir.path().join("shop");
    std::fs::create_dir(&repo).unwrap();
    for i in 0..12 {
        let text = format!("def price_{i}(cart):\n    total = cart.sum({i})\n    return total\n");
        std::fs::write(repo.join(format!("m{i}.py")), text).unwrap();
    }
    std::fs::write(repo.join(".env"), "TOKEN=secret\n").unwrap();
    let r = repo.to_str().unwrap();
    let args = [
        r,
        "--model",
        m,
        "--steps",
        "6",
        "--accumulate",
        "2",
        "--seq",
        "96",
        "--per-kb",
        "20",
        "--eval-every",
        "3",
        "--quality-holes",
        "3",
        "--lr",
        "1e-2",
        "--json",
    ];
    let mut first = vec!["tune"];
    first.extend(args);
    let (ok, out, err) = moat(&first, &home);
    assert!(ok, "{err}");
    assert!(
        err.contains("data: 9 training files (0 weighted as recent), 3 held out"),
        "{err}"
    );
    assert!(
        out.contains("held-out") && out.contains("exact match (3 holes)"),
        "{out}"
    );
    let adapter = home.join("adapters/shop");
    for f in [
        "adapter.safetensors",
        "manifest.json",
        "checkpoint.json",
        "merged.gguf",
    ] {
        assert!(adapter.join(f).exists(), "{f} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(adapter.join("manifest.json")).unwrap()).unwrap();
    let results = &manifest["results"];
    assert_eq!(results["steps"], 6);
    assert!(results["held_out_loss_before"].as_f64().unwrap() > 0.0);
    assert_eq!(results["quality_before"]["holes"], 3);
    assert_eq!(manifest["held_out_files"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["base"]["file"], "tiny.gguf");
    let better = results["better"].as_bool().unwrap();

    // The list shows the adapter and its verdict.
    let (ok, out, err) = moat(&["model", "list"], &home);
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("shop"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(if better { "better" } else { "FLAGGED" }),
        "{line}"
    );

    // Merge: refused for a flagged adapter unless forced.
    let merged = dir.path().join("merged.gguf");
    let mo = merged.to_str().unwrap();
    let (ok, _, err) = moat(&["tune", "merge", "shop", "--model", m, "--out", mo], &home);
    assert_eq!(ok, better, "{err}");
    if !better {
        assert!(err.contains("--force"), "{err}");
    }
    let (ok, out, err) = moat(
        &[
            "tune", "merge", "shop", "--model", m, "--out", mo, "--force",
        ],
        &home,
    );
    assert!(ok && out.contains("merged.gguf"), "{err}");
    let (ok, out, err) = moat(
        &[
            "complete",
            &format!("{r}/m0.py:2:5"),
            "--model",
            mo,
            "--context",
            "none",
        ],
        &home,
    );
    assert!(ok, "the merged model serves completions: {out} {err}");

    // `adapter:NAME` serves the merged model when the adapter beat the base, else says why.
    let (ok, out, err) = moat(
        &[
            "complete",
            &format!("{r}/m0.py:2:5"),
            "--model",
            "adapter:shop",
            "--context",
            "none",
        ],
        &home,
    );
    if better {
        assert!(ok, "{out} {err}");
    } else {
        assert!(!ok && err.contains("did not beat the base model"), "{err}");
    }

    // Another base model is refused by checksum.
    let other = dir.path().join("other.gguf");
    write_tiny_model(
        &other,
        &TinySpec {
            seed: 9,
            ..TinySpec::default()
        },
    )
    .unwrap();
    let (ok, _, err) = moat(
        &[
            "tune",
            "merge",
            "shop",
            "--model",
            other.to_str().unwrap(),
            "--force",
        ],
        &home,
    );
    assert!(!ok && err.contains("different base model"), "{err}");

    // More steps in the same directory resume from the checkpoint.
    let mut again = first.clone();
    let steps = again.iter().position(|a| *a == "6").unwrap();
    again[steps] = "8";
    let (ok, out, err) = moat(&again, &home);
    assert!(ok && err.contains("resuming from the checkpoint"), "{err}");
    assert!(out.contains("trained 8 updates"), "{out}");

    // A sequence far too long for this machine's memory is refused up front, with advice.
    let (ok, _, err) = moat(&["tune", r, "--model", m, "--seq", "100000"], &home);
    assert!(!ok && err.contains("try --seq 50000"), "{err}");

    // Nothing to learn from.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "hello\n").unwrap();
    let (ok, _, err) = moat(&["tune", empty.to_str().unwrap(), "--model", m], &home);
    assert!(
        !ok && err.contains("no eligible source files") && err.contains("unsupported"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
