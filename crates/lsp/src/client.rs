//! A small blocking LSP client over a child process's pipes: frames messages, answers the
//! server's own requests (progress tokens), keeps notifications, and hands out responses by
//! id in whatever order they arrive. Used by `moat bench lsp` and the tests; it is the
//! editor's side of the protocol, so the server crate holds both ends.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not start the server: {0}")]
    Spawn(std::io::Error),
    #[error("could not write to the server: {0}")]
    Write(std::io::Error),
    #[error("the server closed its output")]
    Closed,
    #[error("no response to request {id} within {timeout:?}")]
    Timeout { id: i64, timeout: Duration },
}

pub type Result<T> = std::result::Result<T, ClientError>;

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications seen so far (method, params).
    pub notifications: Vec<(String, Value)>,
    /// Responses not yet asked for (the server answers out of order).
    arrived: HashMap<i64, Value>,
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
    /// Starts `cmd` (a `moat lsp` command line) with piped stdin and stdout; stderr is the
    /// caller's choice.
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().map_err(ClientError::Spawn)?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(m) = read_message(&mut r) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            rx,
            next_id: 0,
            notifications: Vec::new(),
            arrived: HashMap::new(),
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stdin.write_all(bytes).map_err(ClientError::Write)?;
        self.stdin.flush().map_err(ClientError::Write)
    }

    pub fn send(&mut self, msg: &Value) -> Result<()> {
        let body = serde_json::to_vec(msg).expect("a JSON value serializes");
        let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        framed.extend(body);
        self.send_raw(&framed)
    }

    pub fn notify(&mut self, method: &str, params: Value) -> Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    /// Sends a request without waiting; returns its id.
    pub fn request_async(&mut self, method: &str, params: Option<Value>) -> Result<i64> {
        self.next_id += 1;
        let mut msg = json!({"jsonrpc": "2.0", "id": self.next_id, "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        self.send(&msg)?;
        Ok(self.next_id)
    }

    pub fn cancel(&mut self, id: i64) -> Result<()> {
        self.notify("$/cancelRequest", json!({"id": id}))
    }

    /// Reads what the server sent until `deadline`, and returns the responses that arrived
    /// (id, whole message), oldest first.
    pub fn poll(&mut self, deadline: Instant) -> Result<Vec<(i64, Value)>> {
        let mut out: Vec<(i64, Value)> = self.arrived.drain().collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => {
                    if let Some(r) = self.take(m)? {
                        out.push(r);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Ok(out),
                Err(RecvTimeoutError::Disconnected) => return Err(ClientError::Closed),
            }
        }
    }

    /// Handles a message: a server request is answered, a notification kept, and a response
    /// returned.
    fn take(&mut self, m: Value) -> Result<Option<(i64, Value)>> {
        if m.get("method").is_some() {
            if let Some(sid) = m.get("id") {
                // The server's own request (a progress token): say yes.
                let sid = sid.clone();
                self.send(&json!({"jsonrpc": "2.0", "id": sid, "result": null}))?;
            } else {
                self.notifications.push((
                    m["method"].as_str().unwrap_or("").to_string(),
                    m.get("params").cloned().unwrap_or(Value::Null),
                ));
            }
            return Ok(None);
        }
        // A response to a request without an id (a parse error) has id null: -1 here.
        let id = m.get("id").and_then(Value::as_i64).unwrap_or(-1);
        Ok(Some((id, m)))
    }

    /// The response to request `id` (the whole message: `result` or `error`).
    pub fn wait(&mut self, id: i64, timeout: Duration) -> Result<Value> {
        if let Some(m) = self.arrived.remove(&id) {
            return Ok(m);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match self.rx.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => return Err(ClientError::Timeout { id, timeout }),
                Err(RecvTimeoutError::Disconnected) => return Err(ClientError::Closed),
            };
            if let Some((rid, m)) = self.take(m)? {
                if rid == id {
                    return Ok(m);
                }
                self.arrived.insert(rid, m);
            }
        }
    }

    pub fn request(&mut self, method: &str, params: Value, timeout: Duration) -> Result<Value> {
        let id = self.request_async(method, Some(params))?;
        self.wait(id, timeout)
    }

    pub fn initialize(&mut self, root: &std::path::Path, options: Value) -> Result<Value> {
        let r = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": file_uri(root),
                "capabilities": {"window": {"workDoneProgress": true}},
                "initializationOptions": options,
                "clientInfo": {"name": "moat-client", "version": env!("CARGO_PKG_VERSION")},
            }),
            Duration::from_secs(30),
        )?;
        self.notify("initialized", json!({}))?;
        Ok(r)
    }

    pub fn status(&mut self) -> Result<Value> {
        Ok(self
            .request("moat/status", json!({}), Duration::from_secs(30))?
            .get("result")
            .cloned()
            .unwrap_or(Value::Null))
    }

    pub fn open(&mut self, uri: &str, language: &str, version: i32, text: &str) -> Result<()> {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": version, "text": text}}),
        )
    }

    /// An `inlineCompletion` request at a position (invoked automatically, as on typing).
    pub fn inline_async(&mut self, uri: &str, line: u32, character: u32) -> Result<i64> {
        self.request_async(
            "textDocument/inlineCompletion",
            Some(json!({
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 2},
            })),
        )
    }

    /// Asks the server to shut down and exit; true when the process ended within `timeout`.
    pub fn shutdown(mut self, timeout: Duration) -> Result<bool> {
        self.request("shutdown", Value::Null, timeout)?;
        self.notify("exit", Value::Null)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }

    /// Kills the server at once (SIGKILL on Unix: no shutdown code runs) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server process's exit status, if it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `file://` URI of an absolute path (percent-encoding what a URI may not hold).
pub fn file_uri(path: &std::path::Path) -> String {
    let mut s = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                s.push(b as char)
            }
            _ => s.push_str(&format!("%{b:02X}")),
        }
    }
    s
}
