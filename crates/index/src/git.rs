//! What git knows: the repository root, HEAD, and which files changed recently (the files a
//! developer is working on are the likeliest context).

use crate::error::Result;
use std::path::{Path, PathBuf};

pub struct GitInfo {
    pub root: PathBuf,
    /// HEAD's commit id, if the repository has commits.
    pub head: Option<String>,
    pub branch: Option<String>,
}

/// The repository containing `dir`, or `None` for a directory outside git.
pub fn discover(dir: &Path) -> Option<GitInfo> {
    let repo = git2::Repository::discover(dir).ok()?;
    let root = repo.workdir()?.to_path_buf();
    let head = repo.head().ok();
    Some(GitInfo {
        root,
        head: head
            .as_ref()
            .and_then(|h| h.target())
            .map(|o| o.to_string()),
        branch: head.as_ref().and_then(|h| h.shorthand()).map(String::from),
    })
}

/// Up to `n` recently changed files (relative paths): uncommitted changes first, then files
/// touched by the latest commits, newest first, each once.
pub fn recent_files(dir: &Path, n: usize) -> Result<Vec<String>> {
    let repo = git2::Repository::discover(dir)?;
    let mut out: Vec<String> = Vec::new();
    let push = |p: &str, out: &mut Vec<String>| {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    };
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    for s in repo.statuses(Some(&mut opts))?.iter() {
        if let Some(p) = s.path() {
            push(p, &mut out);
        }
    }
    let Ok(mut walk) = repo.revwalk() else {
        return Ok(out);
    };
    if walk.push_head().is_err() {
        return Ok(out); // no commits yet
    }
    for oid in walk.take(50) {
        if out.len() >= n {
            break;
        }
        let commit = repo.find_commit(oid?)?;
        let tree = commit.tree()?;
        let parent = commit.parent(0).ok().and_then(|p| p.tree().ok());
        let diff = repo.diff_tree_to_tree(parent.as_ref(), Some(&tree), None)?;
        for d in diff.deltas() {
            if let Some(p) = d.new_file().path().and_then(|p| p.to_str()) {
                push(p, &mut out);
            }
        }
    }
    out.truncate(n);
    Ok(out)
}

/// The committer's e-mail as git sees it for `dir` (the repository's config, then the
/// user's and the system's).
pub fn user_email(dir: &Path) -> Option<String> {
    let config = match git2::Repository::discover(dir) {
        Ok(repo) => repo.config().ok()?,
        Err(_) => git2::Config::open_default().ok()?,
    };
    config
        .get_string("user.email")
        .ok()
        .filter(|e| !e.trim().is_empty())
}
