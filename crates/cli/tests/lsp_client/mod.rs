//! A small LSP client for tests: spawns `moat lsp`, frames messages, answers the server's
//! own requests, and waits for responses by id.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications seen so far (method, params).
    pub notifications: Vec<(String, Value)>,
    /// Responses that arrived while another was awaited (the server answers out of order).
    early: std::collections::HashMap<i64, Value>,
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl Client {
    pub fn start(extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
        cmd.args(["lsp", "--threads", "2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn moat lsp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(m) = read_message(&mut r) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            rx,
            next_id: 0,
            notifications: Vec::new(),
            early: std::collections::HashMap::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn send(&mut self, msg: &Value) {
        let body = serde_json::to_vec(msg).unwrap();
        let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        framed.extend(body);
        self.send_raw(&framed);
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request without waiting; returns its id.
    pub fn request_async(&mut self, method: &str, params: Option<Value>) -> i64 {
        self.next_id += 1;
        let mut msg = json!({"jsonrpc": "2.0", "id": self.next_id, "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        self.send(&msg);
        self.next_id
    }

    /// The response to request `id` (the whole message: `result` or `error`).
    pub fn wait(&mut self, id: i64, timeout: Duration) -> Value {
        if let Some(m) = self.early.remove(&id) {
            return m;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no response to request {id} within {timeout:?}"));
            if m.get("method").is_some() {
                if let Some(sid) = m.get("id") {
                    // A request from the server (progress token creation): say yes.
                    let sid = sid.clone();
                    self.send(&json!({"jsonrpc": "2.0", "id": sid, "result": null}));
                } else {
                    self.notifications.push((
                        m["method"].as_str().unwrap_or("").to_string(),
                        m.get("params").cloned().unwrap_or(Value::Null),
                    ));
                }
                continue;
            }
            if m.get("id") == Some(&json!(id)) {
                return m;
            }
            if let Some(other) = m.get("id").and_then(Value::as_i64) {
                self.early.insert(other, m);
            }
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.request_async(method, Some(params));
        self.wait(id, Duration::from_secs(120))
    }

    pub fn initialize(&mut self, root: &std::path::Path, options: Value) -> Value {
        let r = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": format!("file://{}", root.display()),
                "capabilities": {"window": {"workDoneProgress": true}},
                "initializationOptions": options,
                "clientInfo": {"name": "moat-tests", "version": "0"},
            }),
        );
        self.notify("initialized", json!({}));
        r
    }

    pub fn status(&mut self) -> Value {
        self.request("moat/status", json!({}))["result"].clone()
    }

    /// Waits until the model is ready (or fails the test with the status).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.status();
            match s["model"]["state"].as_str() {
                Some("ready") => return,
                Some("failed") => panic!("model failed: {s}"),
                _ if Instant::now() > deadline => panic!("model not ready: {s}"),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}),
        );
    }

    pub fn inline(&mut self, uri: &str, line: u32, character: u32) -> Value {
        self.request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 2},
            }),
        )
    }

    /// Shuts down politely and checks that the process exits.
    pub fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "{r}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success() || status.code().is_some());
                return;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
