//! Bad input to the `moat` binary: each is a clear error on stderr and exit status 1, never a
//! panic. These use a tiny model, so they need no download.

use moat_engine::tiny::{write_tiny_model, TinySpec};

mod common;
use common::moat;

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let model = dir.path().join("tiny.gguf");
    write_tiny_model(&model, &TinySpec::default()).unwrap();
    let m = model.to_str().unwrap();
    let src = dir.path().join("a.py");
    std::fs::write(&src, "x = 1\ny = 2\n").unwrap();
    let bin = dir.path().join("b.py");
    std::fs::write(&bin, b"x = '\xff\xfe'\n").unwrap();
    let notgguf = dir.path().join("n.gguf");
    std::fs::write(&notgguf, "hello").unwrap();
    let s = |p: &std::path::Path| p.display().to_string();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "complete".into(),
                format!("{}:9:1", s(&src)),
                "--model".into(),
                m.into(),
            ],
            "past the end of the file",
        ),
        (
            vec![
                "complete".into(),
                format!("{}:1:40", s(&src)),
                "--model".into(),
                m.into(),
            ],
            "past the end of line 1",
        ),
        (
            vec![
                "complete".into(),
                format!("{}:1:1", s(&bin)),
                "--model".into(),
                m.into(),
            ],
            "not UTF-8",
        ),
        (
            vec![
                "complete".into(),
                format!("{}:1:1", s(&src)),
                "--model".into(),
                s(&notgguf),
            ],
            "not a GGUF",
        ),
        (
            vec![
                "complete".into(),
                format!("{}:1:1", s(&src)),
                "--model".into(),
                "/no/such.gguf".into(),
            ],
            "does not exist",
        ),
        (
            vec![
                "complete".into(),
                format!("{}:1:1", s(&src)),
                "--model".into(),
                "no-such-model".into(),
            ],
            "unknown model",
        ),
        (
            vec![
                "complete".into(),
                format!("{}:1:1", s(&src)),
                "--model".into(),
                m.into(),
                "--device".into(),
                "tpu".into(),
            ],
            "unknown device",
        ),
        (vec!["model".into(), "path".into()], "not fetched yet"),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = moat(&args, &home);
        assert!(!ok, "{args:?} succeeded");
        assert!(
            err.contains(want),
            "{args:?}: stderr {err:?} lacks {want:?}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    // And a good request with the tiny model works and prints one line of text.
    let (ok, out, err) = moat(
        &[
            "complete",
            &format!("{}:2:5", s(&src)),
            "--model",
            m,
            "--json",
        ],
        &home,
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["text"].is_string());
}
