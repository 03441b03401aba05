//! Helpers shared by the CLI's integration tests.

use std::path::Path;
use std::process::Command;

/// Runs the `moat` binary with `MOAT_HOME` at `home`: success, stdout, stderr.
pub fn moat(args: &[&str], home: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .env("MOAT_HOME", home)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
