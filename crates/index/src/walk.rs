//! Which files of a repository get indexed: git's ignore rules (and `.ignore`,
//! `.moatignore`), no secrets, nothing vendored, generated, minified, binary or huge.

use crate::lang::Lang;
use ignore::overrides::OverrideBuilder;
use ignore::WalkBuilder;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Files larger than this are skipped (default 1 MB).
    pub max_bytes: u64,
}

impl Default for WalkOptions {
    fn default() -> Self {
        Self { max_bytes: 1 << 20 }
    }
}

/// Why a file was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    Unsupported,
    TooLarge,
    Binary,
    NotUtf8,
    Minified,
    Generated,
    Unreadable,
}

/// Secrets are never read, whatever the ignore files say.
const SECRET_GLOBS: [&str; 14] = [
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.crt",
    "*.cer",
    "*.der",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_ed25519*",
    "*.kdbx",
];

/// Directories of other people's or generated code.
const VENDORED_DIRS: [&str; 9] = [
    "node_modules",
    "vendor",
    "third_party",
    "bower_components",
    "site-packages",
    ".venv",
    "venv",
    "__pycache__",
    ".git",
];

fn walker(root: &Path, start: &Path, max_depth: Option<usize>) -> ignore::Walk {
    builder(root, start, max_depth).build()
}

fn builder(root: &Path, start: &Path, max_depth: Option<usize>) -> WalkBuilder {
    let mut ov = OverrideBuilder::new(root);
    for g in SECRET_GLOBS {
        // Adding a fixed, valid glob cannot fail.
        ov.add(&format!("!{g}")).expect("valid glob");
    }
    let overrides = ov.build().expect("valid overrides");
    let mut b = WalkBuilder::new(start);
    b.max_depth(max_depth)
        .add_custom_ignore_filename(".moatignore")
        .require_git(false)
        .follow_links(false)
        .overrides(overrides)
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && VENDORED_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
        });
    b
}

/// Candidate source files under `root` (relative paths with `/`), in a stable order. The
/// directories are read on every core: in a first index the walk is the one step that
/// nothing overlaps.
pub fn candidates(root: &Path) -> Vec<(String, PathBuf)> {
    let found = std::sync::Mutex::new(Vec::new());
    builder(root, root, None)
        .threads(rayon::current_num_threads())
        .build_parallel()
        .run(|| {
            Box::new(|entry| {
                match entry {
                    Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => {
                        let path = e.into_path();
                        if let Some(rel) = relative(root, &path) {
                            // A poisoned lock only means another walker thread panicked.
                            found
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((rel, path));
                        }
                    }
                    Ok(_) => {}
                    // An unreadable directory or a broken link: logged, never fatal.
                    Err(err) => tracing::debug!("walk: {err}"),
                }
                ignore::WalkState::Continue
            })
        });
    let mut out = found.into_inner().unwrap_or_else(|p| p.into_inner());
    out.sort();
    out
}

/// Whether the walk of `root` would yield `path` (for files reported one at a time, by a
/// watcher or an editor): the same ignore files, secrets and vendored directories.
pub fn is_candidate(root: &Path, path: &Path) -> bool {
    let Some(rel) = relative(root, path) else {
        return false;
    };
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for p in &parts[..parts.len().saturating_sub(1)] {
        if VENDORED_DIRS.contains(p) {
            return false;
        }
        dir.push(p);
        // An ignored directory hides everything below it.
        if !walker(root, dir.parent().unwrap_or(root), Some(1))
            .flatten()
            .any(|e| e.path() == dir)
        {
            return false;
        }
    }
    walker(root, dir.as_path(), Some(1))
        .flatten()
        .any(|e| e.path() == path && e.file_type().is_some_and(|t| t.is_file()))
}

/// `path` relative to `root`, with `/` separators; `None` outside the root.
pub fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// Reads and vets one file: its language and text, or why it is skipped.
pub fn read_source(path: &Path, opts: &WalkOptions) -> Result<(Lang, String), Skip> {
    let lang = Lang::from_path(path).ok_or(Skip::Unsupported)?;
    let meta = std::fs::metadata(path).map_err(|_| Skip::Unreadable)?;
    if meta.len() > opts.max_bytes {
        return Err(Skip::TooLarge);
    }
    let bytes = std::fs::read(path).map_err(|_| Skip::Unreadable)?;
    if bytes.len() as u64 > opts.max_bytes {
        return Err(Skip::TooLarge); // grew while we looked
    }
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err(Skip::Binary);
    }
    let text = String::from_utf8(bytes).map_err(|_| Skip::NotUtf8)?;
    if is_generated(&text) {
        return Err(Skip::Generated);
    }
    if is_minified(path, &text) {
        return Err(Skip::Minified);
    }
    let lang = Lang::from_path_and_text(path, &text).unwrap_or(lang);
    Ok((lang, text))
}

/// The markers code generators leave in a file's first lines.
fn is_generated(text: &str) -> bool {
    text.lines().take(5).any(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("@generated")
            || l.contains("do not edit")
            || l.contains("code generated by")
            || l.contains("autogenerated")
            || l.contains("auto-generated")
    })
}

/// Minified or machine-packed: very long lines on average, or one enormous line.
fn is_minified(path: &Path, text: &str) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.contains(".min.") {
        return true;
    }
    let (mut lines, mut longest) = (0usize, 0usize);
    for l in text.lines() {
        lines += 1;
        longest = longest.max(l.len());
    }
    let avg = text.len() / lines.max(1);
    avg > 300 || longest > 5000
}

/// Files skipped, by reason (for statistics).
pub type SkipCounts = BTreeMap<Skip, usize>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristics_recognise_generated_and_minified_code() {
        assert!(is_generated(
            "// Code generated by protoc. DO NOT EDIT.\npackage x\n"
        ));
        assert!(!is_generated("def f():\n    pass\n"));
        let long = format!("var a={};\n", "1,".repeat(4000));
        assert!(is_minified(Path::new("a.js"), &long));
        assert!(is_minified(Path::new("lib.min.js"), "x"));
        assert!(!is_minified(Path::new("a.js"), "let a = 1;\nlet b = 2;\n"));
    }
}
