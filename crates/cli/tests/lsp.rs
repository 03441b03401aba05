//! `moat lsp` driven over pipes, as an editor would: the lifecycle, document sync,
//! inline completion, the accept command, status, and bad input. Tiny models for the
//! protocol; the real default model for one content check and the typing-through cache.

mod lsp_client;

use lsp_client::Client;
use moat_engine::tiny::{write_tiny_model, TinySpec};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Setup {
    dir: tempfile::TempDir,
    model: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    write_tiny_model(&model, &TinySpec::default()).unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(
        repo.join("util.py"),
        "def parse_row(line):\n    return line.split(',')\n",
    )
    .unwrap();
    Setup {
        model: model.display().to_string(),
        dir,
    }
}

fn start(s: &Setup, options: Value) -> Client {
    let mut opts = json!({"model": s.model, "debounceMs": 0});
    for (k, v) in options.as_object().unwrap() {
        opts[k] = v.clone();
    }
    let mut c = Client::start(&[("MOAT_HOME", s.dir.path().to_str().unwrap())]);
    let init = c.initialize(&s.dir.path().join("repo"), opts);
    let caps = &init["result"]["capabilities"];
    assert_eq!(caps["inlineCompletionProvider"], json!(true), "{init}");
    assert_eq!(
        caps["executeCommandProvider"]["commands"],
        json!(["moat.accept"])
    );
    assert_eq!(caps["positionEncoding"], json!("utf-16"));
    c
}

fn uri(s: &Setup, name: &str) -> String {
    format!("file://{}/repo/{name}", s.dir.path().display())
}

#[test]
fn lifecycle_sync_completion_accept_and_status() {
    let s = setup();
    let mut c = start(&s, json!({}));
    c.wait_ready();
    let u = uri(&s, "main.py");
    c.open(
        &u,
        "python",
        "from util import parse_row\n\ndef load(f):\n    return \n",
    );
    // An incremental edit: type `[` after `return `.
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": u, "version": 2},
            "contentChanges": [{"range": {"start": {"line": 3, "character": 11}, "end": {"line": 3, "character": 11}}, "text": "["}],
        }),
    );
    let r = c.inline(&u, 3, 12);
    assert!(r.get("error").is_none(), "{r}");
    let items = r["result"]["items"].as_array().expect("a list").clone();
    for it in &items {
        assert!(it["insertText"].is_string());
        assert_eq!(it["range"]["start"], json!({"line": 3, "character": 12}));
        assert_eq!(it["command"]["command"], json!("moat.accept"));
    }
    // The same text as a plain completion item, for clients without inline support.
    let plain = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": u}, "position": {"line": 3, "character": 12}}),
    );
    assert!(plain.get("error").is_none(), "{plain}");
    // Accept (with the item's id if there was one; an unknown id is still counted).
    let id = items
        .first()
        .and_then(|i| i["command"]["arguments"][0].as_str())
        .unwrap_or("moat-unknown")
        .to_string();
    c.notify(
        "textDocument/didShowCompletion",
        json!({"item": {"command": {"title": "", "command": "moat.accept", "arguments": [id]}}}),
    );
    let acc = c.request(
        "workspace/executeCommand",
        json!({"command": "moat.accept", "arguments": [id]}),
    );
    assert!(acc.get("error").is_none(), "{acc}");
    let st = c.status();
    assert_eq!(st["counters"]["accepted"], json!(1), "{st}");
    assert_eq!(st["counters"]["shown"], json!(1), "{st}");
    assert_eq!(st["documents"], json!(1));
    assert!(st["counters"]["requests"].as_u64().unwrap() >= 2, "{st}");
    // Status without params works too.
    let id = c.request_async("moat/status", None);
    let bare = c.wait(id, Duration::from_secs(10));
    assert_eq!(bare["result"]["documents"], json!(1), "{bare}");
    c.shutdown();
}

#[test]
fn bad_input_gets_errors_never_a_crash() {
    let s = setup();
    let mut c = start(&s, json!({}));
    // Malformed JSON and an unknown method: the server goes on.
    c.send_raw(b"Content-Length: 12\r\n\r\n{not json!!}");
    let r = c.request("moat/noSuchMethod", json!({}));
    assert_eq!(r["error"]["code"], json!(-32601), "{r}");
    // Completion for a document that is not open.
    let r = c.inline(&uri(&s, "nowhere.py"), 0, 0);
    assert!(
        r["error"]["message"].as_str().unwrap().contains("not open"),
        "{r}"
    );
    // Positions: past the end of the file is an error; past the end of a line is the end.
    let u = uri(&s, "a.py");
    c.open(&u, "python", "x = 1\r\ny = '😀'\n");
    let r = c.inline(&u, 9, 0);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("past the end"),
        "{r}"
    );
    let r = c.inline(&u, 0, 99);
    assert!(r.get("error").is_none(), "{r}");
    let r = c.inline(&u, 1, 6); // inside the surrogate pair
    assert!(r.get("error").is_none(), "{r}");
    // An edit out of range is refused whole; the document is unchanged and still served.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 40, "character": 0}, "end": {"line": 41, "character": 0}}, "text": "z"}]}),
    );
    let r = c.inline(&u, 0, 5);
    assert!(r.get("error").is_none(), "{r}");
    // Unknown command, and accept without an id.
    let r = c.request(
        "workspace/executeCommand",
        json!({"command": "rm -rf", "arguments": []}),
    );
    assert!(r.get("error").is_some(), "{r}");
    let r = c.request(
        "workspace/executeCommand",
        json!({"command": "moat.accept", "arguments": []}),
    );
    assert!(r.get("error").is_some(), "{r}");
    // A big document (20 MB) opens; it is served, not indexed.
    let big = "x = 1\n".repeat(20 << 20 >> 3);
    let bu = uri(&s, "big.py");
    c.open(&bu, "python", &big);
    let st = c.status();
    assert_eq!(st["documents"], json!(2), "{st}");
    c.shutdown();
}

#[test]
fn a_burst_of_requests_is_answered_and_the_last_one_counts() {
    let s = setup();
    let mut c = start(&s, json!({"debounceMs": 30}));
    c.wait_ready();
    let u = uri(&s, "burst.py");
    c.open(&u, "python", "def f(x):\n    return x\n\nprint(f(1))\n");
    let t = Instant::now();
    let ids: Vec<i64> = (0..200)
        .map(|i| {
            c.request_async(
                "textDocument/inlineCompletion",
                Some(json!({"textDocument": {"uri": u}, "position": {"line": 1, "character": 4 + (i % 6)}, "context": {"triggerKind": 2}})),
            )
        })
        .collect();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "sending took {:?}",
        t.elapsed()
    );
    for id in &ids {
        let r = c.wait(*id, Duration::from_secs(120));
        assert!(r.get("error").is_none(), "{r}");
    }
    let st = c.status();
    // All but the last few were superseded while they waited: the model ran rarely.
    let calls = st["counters"]["model_calls"].as_u64().unwrap();
    assert!(calls < 20, "{calls} model calls for a burst: {st}");
    c.shutdown();
}

#[test]
fn a_missing_model_is_reported_not_hung() {
    let s = setup();
    let mut c = start(&s, json!({"model": "/nonexistent/model.gguf"}));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = c.status();
        if st["model"]["state"] == json!("failed") {
            assert!(
                st["model"]["error"]
                    .as_str()
                    .unwrap()
                    .contains("does not exist"),
                "{st}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let u = uri(&s, "a.py");
    c.open(&u, "python", "x = \n");
    let r = c.inline(&u, 0, 4);
    assert_eq!(r["result"]["items"], json!([]), "{r}");
    c.shutdown();
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The real default model (fetched by `.ci/run`) through the protocol: the completion's
/// content, the typing-through cache, and the accept.
#[test]
fn real_model_completes_and_typing_through_needs_no_model_call() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let text = "def fib(n):\n    \n\n\nprint(fib(10))\n";
    std::fs::write(repo.join("fib.py"), text).unwrap();
    let log = dir.path().join("moat.log");
    let mut c = Client::start_with(
        &["--log", "debug", "--log-file", log.to_str().unwrap()],
        &[],
    );
    // The content check wants the whole body, however slow the machine decodes.
    c.initialize(&repo, json!({"debounceMs": 0, "decodeBudgetMs": 0}));
    c.wait_ready();
    let u = format!("file://{}/fib.py", repo.display());
    c.open(&u, "python", text);
    let r = c.inline(&u, 1, 4);
    let item = r["result"]["items"][0].clone();
    let shown = item["insertText"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert!(squash(&shown).contains("fib(n-1)+fib(n-2)"), "{shown:?}");
    let calls = c.status()["counters"]["model_calls"].as_u64().unwrap();
    // The user types the first three characters of what is shown.
    let typed: String = shown.chars().take(3).collect();
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}}, "text": typed}]}),
    );
    let r = c.inline(&u, 1, 4 + typed.chars().count() as u32);
    assert_eq!(
        r["result"]["items"][0]["insertText"].as_str(),
        Some(&shown[typed.len()..]),
        "{r}"
    );
    let st = c.status();
    assert_eq!(st["counters"]["model_calls"].as_u64(), Some(calls), "{st}");
    assert_eq!(st["counters"]["typing_cache_hits"], json!(1), "{st}");
    let id = item["command"]["arguments"][0].clone();
    let acc = c.request(
        "workspace/executeCommand",
        json!({"command": "moat.accept", "arguments": [id]}),
    );
    assert!(acc.get("error").is_none(), "{acc}");
    assert_eq!(c.status()["counters"]["accepted"], json!(1));
    // The editor inserts the rest; the server computes the next completion ahead, at the end
    // of the accepted text, before it is asked.
    let n = c.status()["latencyMs"]["n"].as_u64().unwrap();
    let end_line = 1 + shown.matches('\n').count() as u32;
    let end_col = match shown.rfind('\n') {
        Some(i) => shown[i + 1..].encode_utf16().count(),
        None => 4 + shown.encode_utf16().count(),
    } as u32;
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 3},
               "contentChanges": [{"range": {"start": {"line": 1, "character": 4 + typed.chars().count() as u32}, "end": {"line": 1, "character": 4 + typed.chars().count() as u32}}, "text": &shown[typed.len()..]}]}),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let st = loop {
        let st = c.status();
        if st["latencyMs"]["n"].as_u64() == Some(n + 1) {
            break st;
        }
        assert!(Instant::now() < deadline, "no speculative completion: {st}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(st["counters"]["speculative"], json!(1), "{st}");
    let calls = st["counters"]["model_calls"].as_u64();
    let r = c.inline(&u, end_line, end_col);
    assert!(r.get("error").is_none(), "{r}");
    // Answered from the speculative completion (even when it is empty), no model call.
    let st = c.status();
    assert_eq!(st["counters"]["model_calls"].as_u64(), calls, "{st}");
    assert_eq!(st["counters"]["speculative_hits"], json!(1), "{st}");
    c.shutdown();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("model ready"), "{log}");
    assert!(log.contains("completion:"), "{log}");
}
