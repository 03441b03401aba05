//! Which files a tuning run learns from and which it is judged on: the index's walk (ignore
//! rules, no secrets, nothing vendored, generated, minified, binary or huge), duplicates
//! removed, whole files held out for evaluation.

use crate::error::{Result, TuneError};
use moat_index::walk::{candidates, read_source, WalkOptions};
use moat_index::Lang;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Relative to the repository root, with `/`.
    pub path: String,
    pub lang: Lang,
    pub text: String,
    /// Samples are cut in proportion to size times this (recently changed files: more).
    pub weight: f64,
}

#[derive(Debug, Clone)]
pub struct DataOptions {
    /// Share of files held out for evaluation.
    pub holdout: f64,
    /// Held-out files at least.
    pub min_holdout: usize,
    pub seed: u64,
    pub walk: WalkOptions,
    /// The files git saw change most recently (uncommitted, then the latest commits) get
    /// `recent_weight` times the samples; 0 files: no weighting.
    pub recent_files: usize,
    pub recent_weight: f64,
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            holdout: 0.1,
            min_holdout: 3,
            seed: 1,
            walk: WalkOptions::default(),
            recent_files: 0,
            recent_weight: 2.0,
        }
    }
}

/// Files, and why the others were left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DataSummary {
    pub train_files: usize,
    pub held_out_files: usize,
    pub bytes: usize,
    /// Training files weighted up as recently changed.
    #[serde(default)]
    pub recent_weighted: usize,
    /// Reason → files.
    pub skipped: BTreeMap<String, usize>,
}

pub struct Corpus {
    pub train: Vec<SourceFile>,
    pub held_out: Vec<SourceFile>,
    pub summary: DataSummary,
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Reads the repository at `root` and splits it into training and held-out files.
pub fn collect(root: &Path, opts: &DataOptions) -> Result<Corpus> {
    if !(0.0..1.0).contains(&opts.holdout) {
        return Err(TuneError::Invalid(format!(
            "holdout {} (0 to <1)",
            opts.holdout
        )));
    }
    let mut summary = DataSummary::default();
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for (rel, path) in candidates(root) {
        match read_source(&path, &opts.walk) {
            Ok((lang, text)) => {
                if text.trim().is_empty() {
                    *summary.skipped.entry("empty".into()).or_default() += 1;
                } else if !seen.insert(hash(&[text.as_bytes()])) {
                    *summary.skipped.entry("duplicate".into()).or_default() += 1;
                } else {
                    files.push(SourceFile {
                        path: rel,
                        lang,
                        text,
                        weight: 1.0,
                    });
                }
            }
            Err(skip) => {
                let reason = serde_json::to_value(skip)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{skip:?}"));
                *summary.skipped.entry(reason).or_default() += 1;
            }
        }
    }
    if files.is_empty() {
        let skipped = if summary.skipped.is_empty() {
            "no files at all".to_string()
        } else {
            summary
                .skipped
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(TuneError::NoFiles {
            root: root.to_path_buf(),
            skipped,
        });
    }
    let n_held = ((files.len() as f64 * opts.holdout).ceil() as usize).max(opts.min_holdout);
    if files.len() <= n_held {
        return Err(TuneError::TooLittleData {
            what: format!(
                "{} eligible files, and {n_held} are held out for evaluation",
                files.len()
            ),
        });
    }
    // A seeded hash of the path picks the held-out files: stable as the repository grows.
    let seed = opts.seed.to_le_bytes();
    files.sort_by_cached_key(|f| hash(&[&seed, f.path.as_bytes()]));
    let train = files.split_off(n_held);
    let mut held_out = files;
    held_out.sort_by(|a, b| a.path.cmp(&b.path));
    let mut train = train;
    train.sort_by(|a, b| a.path.cmp(&b.path));
    if opts.recent_files > 0 {
        // Outside git there is no history to weight by; every file keeps weight 1.
        let recent = moat_index::git::recent_files(root, opts.recent_files).unwrap_or_default();
        for f in &mut train {
            if recent.contains(&f.path) {
                f.weight = opts.recent_weight;
                summary.recent_weighted += 1;
            }
        }
    }
    summary.train_files = train.len();
    summary.held_out_files = held_out.len();
    summary.bytes = train.iter().chain(&held_out).map(|f| f.text.len()).sum();
    Ok(Corpus {
        train,
        held_out,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn splits_whole_files_and_says_what_it_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for i in 0..12 {
            write(
                root,
                &format!("pkg/m{i}.py"),
                &format!("def f{i}():\n    return {i}\n"),
            );
        }
        write(root, "pkg/copy.py", "def f0():\n    return 0\n");
        write(root, ".env", "SECRET=1\n");
        write(root, "node_modules/x/index.js", "module.exports = 1;\n");
        write(root, "gen.py", "# @generated\nx = 1\n");
        write(root, "blob.bin", "\0\0\0");
        std::fs::write(root.join("bad.py"), [0x66, 0xff, 0xfe, 0x0a]).unwrap();
        let c = collect(root, &DataOptions::default()).unwrap();
        assert_eq!(c.held_out.len(), 3, "10% of 12 is under the minimum of 3");
        assert_eq!(c.train.len(), 9);
        let all: Vec<&str> = c
            .train
            .iter()
            .chain(&c.held_out)
            .map(|f| f.path.as_str())
            .collect();
        assert!(!all
            .iter()
            .any(|p| p.contains(".env") || p.contains("node_modules") || p.contains("gen.py")));
        assert_eq!(c.summary.skipped.get("duplicate"), Some(&1));
        assert_eq!(c.summary.skipped.get("generated"), Some(&1));
        assert_eq!(c.summary.skipped.get("not_utf8"), Some(&1));
        // Same seed, same split; held-out files never train.
        let again = collect(root, &DataOptions::default()).unwrap();
        let names = |v: &[SourceFile]| v.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
        assert_eq!(names(&c.held_out), names(&again.held_out));
        assert!(c
            .held_out
            .iter()
            .all(|h| !c.train.iter().any(|t| t.path == h.path)));
    }

    #[test]
    fn recently_changed_files_weigh_more() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for i in 0..8 {
            write(root, &format!("m{i}.py"), &format!("x = {i}\n"));
        }
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(root)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&["commit", "-qm", "one"]);
        let opts = DataOptions {
            recent_files: 1,
            ..DataOptions::default()
        };
        // Nothing changed since the commit that added everything: all 8 are "recent" in
        // that commit, so ask for one and edit one training file to be it.
        let first = collect(root, &DataOptions::default()).unwrap();
        let edited = first.train[2].path.clone();
        write(root, &edited, "x = 'changed'\n");
        let c = collect(root, &opts).unwrap();
        for f in &c.train {
            let want = if f.path == edited { 2.0 } else { 1.0 };
            assert_eq!(f.weight, want, "{}", f.path);
        }
        assert_eq!(c.summary.recent_weighted, 1);
    }

    #[test]
    fn too_little_or_nothing_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = collect(dir.path(), &DataOptions::default()).err().unwrap();
        assert!(
            err.to_string().contains("no eligible source files"),
            "{err}"
        );
        write(dir.path(), "a.py", "x = 1\n");
        write(dir.path(), "notes.txt", "hello\n");
        let err = collect(dir.path(), &DataOptions::default()).err().unwrap();
        assert!(err.to_string().contains("1 eligible files"), "{err}");
    }
}
