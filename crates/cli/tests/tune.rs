//! `moat tune` end to end with the tiny model: data, training, held-out scores, the
//! adapter and manifest, merge (refused when flagged unless forced), resume, `model list`,
//! and clear errors.

use moat_engine::tiny::{write_tiny_model, TinySpec};

mod common;
mod lsp_client;
use common::moat;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

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
    // Prompts as the server's default builds them: with repository context.
    assert!(err.contains("3 held out, repo context"), "{err}");
    assert_eq!(manifest["samples"]["context"], "repo");
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

    serve_unmerged(dir.path(), &home, m, better);

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
    // And unmerged, on top of the base model.
    let unmerged = |force: bool| {
        let mut a = vec![
            "complete".to_string(),
            format!("{r}/m0.py:2:5"),
            "--model".into(),
            m.into(),
            "--context".into(),
            "none".into(),
            "--adapter".into(),
            "shop".into(),
        ];
        if force {
            a.push("--adapter-force".into());
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        moat(&a, &home)
    };
    let (ok, out, err) = unmerged(true);
    assert!(ok, "{out} {err}");
    let (ok, _, err) = unmerged(false);
    assert_eq!(ok, better, "{err}");

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

/// The adapter served unmerged by `moat lsp`, switched by settings while it runs.
fn serve_unmerged(dir: &std::path::Path, home: &std::path::Path, model: &str, better: bool) {
    let mut c = lsp_client::Client::start(&[("MOAT_HOME", home.to_str().unwrap())]);
    c.initialize(
        &dir.join("shop"),
        json!({"model": model, "debounceMs": 0, "adapter": "shop"}),
    );
    c.notify("initialized", json!({}));
    c.wait_ready();
    let settle = |c: &mut lsp_client::Client| -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let a = c.status()["adapter"].clone();
            if a["state"] != "loading" || Instant::now() > deadline {
                return a;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let configure = |c: &mut lsp_client::Client, settings: Value| {
        c.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"moat": settings}}),
        );
    };
    let a = settle(&mut c);
    if better {
        assert_eq!(a, json!({"state": "active", "name": "shop"}));
    } else {
        assert_eq!(a["state"], "failed", "{a}");
        assert!(a["error"].as_str().unwrap().contains("did not beat"), "{a}");
        configure(&mut c, json!({"adapterForce": true}));
        assert_eq!(settle(&mut c), json!({"state": "active", "name": "shop"}));
    }
    let uri = format!("file://{}/shop/new.py", dir.display());
    c.open(&uri, "python", "def price_total(cart):\n    ");
    let r = c.inline(&uri, 1, 4);
    assert!(
        r.get("result").is_some(),
        "a completion with the adapter: {r}"
    );

    // An adapter that does not exist: said so, and the base model serves.
    configure(&mut c, json!({"adapter": "nope"}));
    let a = settle(&mut c);
    assert_eq!(a["state"], "failed", "{a}");
    assert!(
        a["error"].as_str().unwrap().contains("no adapter `nope`"),
        "{a}"
    );
    let warned = (0..50).any(|_| {
        let _ = c.status();
        let hit = c.inner.notifications.iter().any(|(m, p)| {
            m == "window/showMessage" && p["message"].as_str().unwrap_or("").contains("nope")
        });
        if !hit {
            std::thread::sleep(Duration::from_millis(50));
        }
        hit
    });
    assert!(warned, "the user is told: {:?}", c.inner.notifications);
    let r = c.inline(&uri, 1, 4);
    assert!(
        r.get("result").is_some(),
        "the base model still serves: {r}"
    );

    configure(&mut c, json!({"adapter": null}));
    assert_eq!(settle(&mut c), json!({"state": "none"}));
    c.shutdown();
}
