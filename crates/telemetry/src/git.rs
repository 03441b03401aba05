//! Reading commits for the committed-code share: who added which lines to which file.

use crate::committed::{fingerprint, Commit, CommitFile};
use crate::error::{Result, TelemetryError};
use std::collections::BTreeMap;
use std::path::Path;

/// A repository's commits made in `[since_ms, until_ms)` (commit time), merges skipped,
/// each with the non-blank lines it added to files `language` knows (others are not code
/// moat completes). Authors become users as the server records them (`user_id` with
/// `salt`); line fingerprints take the same salt. Returns the repository's name (its
/// folder's, as the server records it) and the commits.
pub fn commits(
    dir: &Path,
    since_ms: i64,
    until_ms: i64,
    salt: Option<&str>,
    language: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Commit>)> {
    let bad = |e: git2::Error| {
        TelemetryError::Invalid(format!(
            "{}: not a readable git repository: {e}",
            dir.display()
        ))
    };
    let repo = git2::Repository::discover(dir).map_err(bad)?;
    let name = repo
        .workdir()
        .and_then(|w| w.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into());
    let mut walk = repo.revwalk().map_err(bad)?;
    if walk.push_head().is_err() {
        return Ok((name, Vec::new())); // no commits yet
    }
    walk.set_sorting(git2::Sort::TIME).map_err(bad)?;
    let mut out = Vec::new();
    for oid in walk {
        let commit = repo.find_commit(oid.map_err(bad)?).map_err(bad)?;
        let time_ms = commit.time().seconds() * 1000;
        if time_ms < since_ms || time_ms >= until_ms || commit.parent_count() > 1 {
            continue;
        }
        let tree = commit.tree().map_err(bad)?;
        let parent = match commit.parent_count() {
            0 => None,
            _ => Some(commit.parent(0).and_then(|p| p.tree()).map_err(bad)?),
        };
        let diff = repo
            .diff_tree_to_tree(parent.as_ref(), Some(&tree), None)
            .map_err(bad)?;
        let mut files: BTreeMap<String, CommitFile> = BTreeMap::new();
        diff.foreach(
            &mut |_, _| true,
            None,
            None,
            Some(&mut |delta, _, line| {
                if line.origin() != '+' {
                    return true;
                }
                let Some(path) = delta.new_file().path() else {
                    return true;
                };
                let path = path.to_string_lossy().replace('\\', "/");
                let Ok(text) = std::str::from_utf8(line.content()) else {
                    return true;
                };
                if text.trim().is_empty() {
                    return true;
                }
                if !files.contains_key(&path) {
                    let Some(lang) = language(&path) else {
                        return true;
                    };
                    files.insert(
                        path.clone(),
                        CommitFile {
                            path: path.clone(),
                            language: lang,
                            fingerprints: Vec::new(),
                        },
                    );
                }
                if let Some(f) = files.get_mut(&path) {
                    f.fingerprints.push(fingerprint(text, salt));
                }
                true
            }),
        )
        .map_err(bad)?;
        let email = commit.author().email().unwrap_or("").to_string();
        out.push(Commit {
            repo: name.clone(),
            user: crate::user_id(&email, salt),
            time_ms,
            files: files.into_values().collect(),
        });
    }
    Ok((name, out))
}
