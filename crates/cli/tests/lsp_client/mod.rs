//! `moat_lsp::client` for tests: spawns the built `moat lsp`, and turns every protocol
//! failure (no answer, a closed pipe) into a test failure.

#![allow(dead_code)] // each test binary uses a part

use moat_lsp::client;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Client {
    pub inner: client::Client,
    /// Where telemetry goes unless the test says (never the user's own database).
    _telemetry: tempfile::TempDir,
}

impl Client {
    pub fn start(extra_env: &[(&str, &str)]) -> Self {
        Self::start_with(&[], extra_env)
    }

    /// With global options before `lsp` (e.g. the log's).
    pub fn start_with(options: &[&str], extra_env: &[(&str, &str)]) -> Self {
        Self::spawn(options, &[], extra_env)
    }

    /// With options of `moat lsp` itself.
    pub fn start_with_lsp_args(lsp_args: &[&str]) -> Self {
        Self::spawn(&[], lsp_args, &[])
    }

    fn spawn(options: &[&str], lsp_args: &[&str], extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
        let telemetry = tempfile::tempdir().unwrap();
        cmd.args(options)
            .args(["lsp", "--threads", "2"])
            .args(lsp_args)
            .stderr(Stdio::null());
        if !lsp_args.contains(&"--telemetry-db") {
            cmd.arg("--telemetry-db").arg(telemetry.path().join("t.db"));
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Self {
            inner: client::Client::spawn(cmd).expect("spawn moat lsp"),
            _telemetry: telemetry,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.inner.send_raw(bytes).unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.inner.notify(method, params).unwrap();
    }

    pub fn request_async(&mut self, method: &str, params: Option<Value>) -> i64 {
        self.inner.request_async(method, params).unwrap()
    }

    pub fn wait(&mut self, id: i64, timeout: Duration) -> Value {
        self.inner.wait(id, timeout).unwrap()
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.inner
            .request(method, params, Duration::from_secs(120))
            .unwrap()
    }

    pub fn initialize(&mut self, root: &std::path::Path, options: Value) -> Value {
        self.inner.initialize(root, options).unwrap()
    }

    pub fn status(&mut self) -> Value {
        self.inner.status().unwrap()
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
        self.inner.open(uri, language, 1, text).unwrap();
    }

    pub fn inline(&mut self, uri: &str, line: u32, character: u32) -> Value {
        let id = self.inner.inline_async(uri, line, character).unwrap();
        self.wait(id, Duration::from_secs(120))
    }

    /// kill -9.
    pub fn kill(&mut self) {
        self.inner.kill();
    }

    /// Shuts down politely and checks that the process exits.
    pub fn shutdown(self) {
        let exited = self.inner.shutdown(Duration::from_secs(10)).unwrap();
        assert!(exited, "the server did not exit");
    }
}
