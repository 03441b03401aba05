//! Telemetry end to end: a scripted editor session against `moat lsp` with the real default
//! model (shown, accepted then deleted, partially accepted, dismissed, shown too briefly), then `moat
//! report --format json` on the database it wrote must give exactly the expected figures.

mod lsp_client;

use lsp_client::Client;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// Opens a document, asks for the completion at the end of its second line and returns the
/// item (the real model completes these bodies).
fn complete(c: &mut Client, repo: &std::path::Path, name: &str, op: &str) -> Value {
    let text = format!("def {name}(a, b):\n    return \n");
    let uri = format!("file://{}/{name}.py", repo.display());
    c.open(&uri, "python", &text);
    let r = c.inline(&uri, 1, 11);
    let item = r["result"]["items"][0].clone();
    let got = item["insertText"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(got.contains(op), "{name}: {got:?}");
    item
}

fn chars(item: &Value) -> f64 {
    item["insertText"].as_str().unwrap().chars().count() as f64
}

#[test]
fn a_scripted_session_gives_the_expected_report() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let db = dir.path().join("telemetry.db");
    let mut c = Client::start_with_lsp_args(&[
        "--telemetry-db",
        db.to_str().unwrap(),
        "--retention-after",
        "1,2",
    ]);
    c.initialize(&repo, json!({"debounceMs": 0}));
    c.wait_ready();
    let show = |c: &mut Client, item: &Value| {
        c.notify("textDocument/didShowCompletion", json!({"item": item}));
    };
    let visible = Duration::from_millis(800);

    let add = complete(&mut c, &repo, "add", "+");
    show(&mut c, &add);
    std::thread::sleep(visible);
    let r = c.request(
        "workspace/executeCommand",
        json!({"command": "moat.accept", "arguments": add["command"]["arguments"]}),
    );
    assert!(r.get("error").is_none(), "{r}");
    // The editor inserted it; 1.4 s later the user deletes it again: still there at the
    // 1 s check, gone at the 2 s one.
    let add_uri = format!("file://{}/add.py", repo.display());
    let inserted = add["insertText"].as_str().unwrap();
    let end = 11 + inserted.encode_utf16().count() as u32;
    assert!(!inserted.contains('\n'), "{inserted:?}");
    let edit = |c: &mut Client, version: i32, range: Value, text: &str| {
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": add_uri, "version": version},
                   "contentChanges": [{"range": range, "text": text}]}),
        );
    };
    let at = |a: u32, b: u32| json!({"start": {"line": 1, "character": a}, "end": {"line": 1, "character": b}});
    edit(&mut c, 2, at(11, 11), inserted);
    std::thread::sleep(Duration::from_millis(1400));
    edit(&mut c, 3, at(11, end), "");

    let mul = complete(&mut c, &repo, "mul", "*");
    show(&mut c, &mul);
    std::thread::sleep(visible);
    c.notify(
        "textDocument/didPartiallyAcceptCompletion",
        json!({"item": mul, "acceptedLength": 1}),
    );

    let sub = complete(&mut c, &repo, "sub", "-");
    show(&mut c, &sub);
    std::thread::sleep(visible);
    c.notify("moat/didDismissCompletion", json!({"item": sub}));

    // Shown for a moment only, then dismissed: not counted as shown.
    let neg = complete(&mut c, &repo, "minus", "-");
    show(&mut c, &neg);
    c.notify("moat/didDismissCompletion", json!({"item": neg}));
    c.shutdown();

    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args([
            "report", "--since", "1d", "--format", "json", "--by", "editor", "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &report["total"];
    // Four completions were shown to the user; the accept may have led to one more,
    // computed ahead and never shown.
    let made = t["completions"].as_u64().unwrap();
    assert!((4..=5).contains(&made), "{report}");
    assert_eq!(t["shown"], json!(3), "{report}");
    let accepted = 1.0 + 1.0 / chars(&mul);
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(close(&t["accepted"], accepted), "{report}");
    assert!(close(&t["acceptance_rate"], accepted / 3.0), "{report}");
    let shown_chars = chars(&add) + chars(&mul) + chars(&sub);
    assert_eq!(t["shown_chars"].as_f64(), Some(shown_chars), "{report}");
    assert!(close(&t["accepted_chars"], chars(&add) + 1.0), "{report}");
    assert_eq!(t["fully_accepted"], json!(1));
    assert_eq!(t["partially_accepted"], json!(1));
    assert_eq!(
        t["dismissed"],
        json!(1),
        "only the dismissal of a shown completion counts"
    );
    assert!(t["latency_p50_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(report["groups"][0]["key"], json!("moat-client"), "{report}");
    assert_eq!(t["retention"], json!({"1": 1.0, "2": 0.0}), "{report}");
    // No code is stored by default.
    let conn_text = std::fs::read(&db).unwrap();
    let body = chars(&add) as usize;
    let needle = add["insertText"].as_str().unwrap().as_bytes();
    assert!(
        body < 3 || !conn_text.windows(needle.len()).any(|w| w == needle),
        "the completion's text is in the database"
    );
}
