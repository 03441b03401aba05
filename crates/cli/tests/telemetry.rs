//! Telemetry end to end: a scripted editor session against `moat lsp` with the real default
//! model (shown, accepted then deleted, accepted and committed, partially accepted,
//! dismissed, shown too briefly), then `moat report --format json` on the database it wrote
//! and the git repository must give exactly the expected figures; the HTML report renders in
//! headless Chromium without a single network request.

mod lsp_client;

use lsp_client::Client;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

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
    git(&repo, &["init", "-q"]);
    git(&repo, &["config", "user.email", "ann@example.com"]);
    git(&repo, &["config", "user.name", "Ann"]);
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

    // Accepted and committed: moat wrote the body line, Ann the signature.
    let area_text = "def area(w, h):\n    \n";
    let area_uri = format!("file://{}/area.py", repo.display());
    c.open(&area_uri, "python", area_text);
    let r = c.inline(&area_uri, 1, 4);
    let area = r["result"]["items"][0].clone();
    let body = area["insertText"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert!(
        body.starts_with("return") && !body.contains('\n'),
        "{body:?}"
    );
    show(&mut c, &area);
    std::thread::sleep(visible);
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": area_uri, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 1, "character": 4},
                                             "end": {"line": 1, "character": 4}},
                                   "text": body}]}),
    );
    let r = c.request(
        "workspace/executeCommand",
        json!({"command": "moat.accept", "arguments": area["command"]["arguments"]}),
    );
    assert!(r.get("error").is_none(), "{r}");
    std::fs::write(
        repo.join("area.py"),
        format!("def area(w, h):\n    {body}\n"),
    )
    .unwrap();
    git(&repo, &["add", "area.py"]);
    git(&repo, &["commit", "-q", "-m", "area"]);

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

    let run_report = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_moat"))
            .args(["report", "--since", "1d", "--db"])
            .arg(&db)
            .arg("--git")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let table = run_report(&[]);
    println!("{}", String::from_utf8_lossy(&table));
    let report: Value =
        serde_json::from_slice(&run_report(&["--format", "json", "--by", "editor"])).unwrap();
    let t = &report["total"];
    // Five completions were asked for; each of the two accepts may have led to one more,
    // computed ahead and never shown.
    let made = t["completions"].as_u64().unwrap();
    assert!((5..=7).contains(&made), "{report}");
    assert_eq!(t["shown"], json!(4), "{report}");
    let accepted = 2.0 + 1.0 / chars(&mul);
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(close(&t["accepted"], accepted), "{report}");
    assert!(close(&t["acceptance_rate"], accepted / 4.0), "{report}");
    let shown_chars = chars(&add) + chars(&area) + chars(&mul) + chars(&sub);
    assert_eq!(t["shown_chars"].as_f64(), Some(shown_chars), "{report}");
    assert!(
        close(&t["accepted_chars"], chars(&add) + chars(&area) + 1.0),
        "{report}"
    );
    assert_eq!(t["fully_accepted"], json!(2));
    assert_eq!(t["partially_accepted"], json!(1));
    assert_eq!(
        t["dismissed"],
        json!(1),
        "only the dismissal of a shown completion counts"
    );
    assert!(t["latency_p50_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(report["groups"][0]["key"], json!("moat-client"), "{report}");
    // add.py was emptied again after 1.4 s; area.py kept its line.
    assert_eq!(t["retention"], json!({"1": 1.0, "2": 0.5}), "{report}");
    // The commit: two lines, the body moat's.
    assert_eq!(t["committed_lines"], json!(2), "{report}");
    assert_eq!(t["committed_from_moat"], json!(1), "{report}");
    assert_eq!(t["committed_share"], json!(0.5), "{report}");
    let by_user: Value =
        serde_json::from_slice(&run_report(&["--format", "json", "--by", "user"])).unwrap();
    assert_eq!(
        by_user["groups"][0]["key"],
        json!("ann@example.com"),
        "{by_user}"
    );
    assert_eq!(
        by_user["groups"][0]["committed_share"],
        json!(0.5),
        "{by_user}"
    );

    let html = dir.path().join("report.html");
    run_report(&["--format", "html", "--out", html.to_str().unwrap()]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("ann@example.com"));
    for remote in [
        "http:", "https:", "src=", "href=", "url(", "@import", "<script",
    ] {
        assert!(!page.contains(remote), "the report page holds `{remote}`");
    }
    browser_check(&html);
    // No code is stored by default.
    let conn_text = std::fs::read(&db).unwrap();
    let body = chars(&add) as usize;
    let needle = add["insertText"].as_str().unwrap().as_bytes();
    assert!(
        body < 3 || !conn_text.windows(needle.len()).any(|w| w == needle),
        "the completion's text is in the database"
    );
}

/// Renders the report page in headless Chromium, keeps a screenshot (a CI artifact) and
/// checks from Chromium's network log that the page made no request. A control page with an
/// image on another host proves that the check sees requests. Without Chromium the check is
/// skipped, unless `MOAT_REQUIRE_BROWSER` is set (CI sets it).
fn browser_check(page: &Path) {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(
            std::env::var_os("MOAT_REQUIRE_BROWSER").is_none(),
            "Chromium is required (apt-get install chromium)"
        );
        eprintln!("no Chromium: the HTML report was not rendered");
        return;
    };
    let artifacts = std::env::var_os("MOAT_ARTIFACTS").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/ci-artifacts"
            ))
        },
        PathBuf::from,
    );
    std::fs::create_dir_all(&artifacts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.html");
    std::fs::write(&control, "<img src=\"http://192.0.2.1/x.png\">").unwrap();
    let requests = |page: &Path, shot: &Path| -> Vec<String> {
        let net = dir.path().join("net.json");
        let profile = tempfile::tempdir().unwrap();
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1280,1700",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("--log-net-log={}", net.display()))
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            shot.metadata().map_or(0, |m| m.len()) > 1000,
            "no screenshot"
        );
        let log: Value = serde_json::from_slice(&std::fs::read(&net).unwrap()).unwrap();
        // Requests made for the page carry its (file://) site in their isolation key; the
        // browser's own background requests do not.
        let start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == start)
            .filter(|e| {
                e["params"]["network_isolation_key"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("file://"))
            })
            .map(|e| e["params"]["url"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let seen = requests(&control, &dir.path().join("control.png"));
    assert!(
        seen.iter().any(|u| u.contains("192.0.2.1")),
        "the check sees no request: {seen:?}"
    );
    let shot = artifacts.join("report.png");
    let seen = requests(page, &shot);
    assert!(seen.is_empty(), "the report page made requests: {seen:?}");
    println!("report screenshot: {}", shot.display());
}

/// kill -9 during a burst of events: the database stays consistent, and everything the
/// server had received more than a second before the kill is in it (the recorder writes a
/// batch every 250 ms).
#[test]
fn a_killed_server_loses_at_most_the_last_second() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut c = Client::start_with_lsp_args(&["--telemetry-db", db.to_str().unwrap()]);
    c.initialize(dir.path(), json!({"debounceMs": 0}));
    c.wait_ready();
    let item = complete(&mut c, dir.path(), "add", "+");
    let burst = |c: &mut Client, ms: u64| {
        let end = std::time::Instant::now() + Duration::from_millis(ms);
        let mut n = 0;
        while std::time::Instant::now() < end {
            for _ in 0..20 {
                c.notify("textDocument/didShowCompletion", json!({"item": item}));
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    };
    let before = burst(&mut c, 1500);
    // A request answered after the burst: the server has received all of it.
    c.status();
    std::thread::sleep(Duration::from_millis(1100));
    let after = burst(&mut c, 300);
    c.kill();

    // What the restarted server does first: open the database (read-write).
    let store = moat_telemetry::Store::open(&db).unwrap();
    store.check().unwrap();
    let data = store.load(0, i64::MAX).unwrap();
    assert_eq!(data.completions.len(), 1, "the completion");
    let shown = data.events.len();
    assert!(
        shown >= before && shown <= before + after,
        "{shown} events recorded; {before} sent more than a second before the kill, {after} after"
    );
    println!(
        "kill -9: {before} events before, {shown} recorded of {}",
        before + after
    );
}
