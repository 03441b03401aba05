//! Share of committed code written by moat.
//!
//! Method: when a completion is accepted (fully or partly), the server records one
//! fingerprint per line that moat wrote (a line counts as moat's when moat inserted at least
//! half of its non-blank characters; a line left unfinished by a partial accept does not).
//! A fingerprint is a hash of the trimmed line (salted in hashed-user mode): no code is
//! stored. A report then walks the repositories' commits in the range, oldest first; every
//! non-blank line a commit adds is a committed line, and it is moat's when an unused
//! fingerprint from the same user, repository and file, recorded before the commit, matches
//! it. Each fingerprint is used once, so a line typed twice counts once.
//!
//! Limits (also in the README): a line moat wrote, deleted and then typed again by hand
//! counts as moat's; a line reformatted beyond whitespace (or moved to another file) counts
//! as the user's; accepts made before the report's range are not matched; merge commits are
//! skipped; only authors who used moat in the range are counted.

use crate::record::Completion;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// One line moat wrote, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inserted {
    pub completion: String,
    pub time_ms: i64,
    pub fingerprint: i64,
}

/// The fingerprint of a line: indentation and trailing blanks do not matter (formatters and
/// editors change them).
pub fn fingerprint(line: &str, salt: Option<&str>) -> i64 {
    let mut h = Sha256::new();
    if let Some(salt) = salt {
        h.update(salt.as_bytes());
        h.update([0]);
    }
    h.update(line.trim().as_bytes());
    let d = h.finalize();
    i64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The lines that moat wrote when `inserted` went in between `line_before` (the start of
/// the cursor's line) and `line_after` (the rest of it). `line_after` is `None` when only a
/// part of a completion was accepted: its last, unfinished line is then not counted.
pub fn written_lines(line_before: &str, inserted: &str, line_after: Option<&str>) -> Vec<String> {
    let solid = |s: &str| s.chars().filter(|c| !c.is_whitespace()).count();
    let mut out = Vec::new();
    let mut parts = inserted.split('\n').peekable();
    let mut first = true;
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if last && line_after.is_none() {
            break;
        }
        let before = if first { line_before } else { "" };
        let after = if last { line_after.unwrap_or("") } else { "" };
        first = false;
        let ours = solid(part);
        let theirs = solid(before) + solid(after);
        if ours > 0 && ours >= theirs {
            out.push(format!("{before}{part}{after}"));
        }
    }
    out
}

/// The non-blank lines one commit added to one file.
#[derive(Debug, Clone)]
pub struct CommitFile {
    pub path: String,
    pub language: String,
    pub fingerprints: Vec<i64>,
}

/// A commit as the share needs it.
#[derive(Debug, Clone)]
pub struct Commit {
    pub repo: String,
    /// The author as the telemetry stores users (`user_id`).
    pub user: String,
    pub time_ms: i64,
    pub files: Vec<CommitFile>,
}

/// Committed lines of one (user, repository, language, day).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub user: String,
    pub repo: String,
    pub language: String,
    pub day: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Lines {
    pub committed: u64,
    pub from_moat: u64,
}

/// Attributes the commits' added lines: which of them moat wrote. Only authors found among
/// `completions`' users count (others never used moat in the range).
pub fn attribute(
    commits: &[Commit],
    completions: &[Completion],
    inserted: &[Inserted],
) -> HashMap<Key, Lines> {
    let by_id: HashMap<&str, &Completion> =
        completions.iter().map(|c| (c.id.as_str(), c)).collect();
    // (user, repo, fingerprint) → the lines moat wrote there, not matched so far.
    let mut pool: HashMap<(&str, &str, i64), Vec<Written>> = HashMap::new();
    for i in inserted {
        if let Some(c) = by_id.get(i.completion.as_str()) {
            pool.entry((c.user.as_str(), c.repo.as_str(), i.fingerprint))
                .or_default()
                .push(Written {
                    path: c.path.as_str(),
                    time_ms: i.time_ms,
                    used: false,
                });
        }
    }
    let users: std::collections::HashSet<&str> =
        completions.iter().map(|c| c.user.as_str()).collect();
    let mut order: Vec<&Commit> = commits
        .iter()
        .filter(|c| users.contains(c.user.as_str()))
        .collect();
    order.sort_by_key(|c| c.time_ms);
    let mut out: HashMap<Key, Lines> = HashMap::new();
    for commit in order {
        // Git times are whole seconds: an accept in the commit's second is before it.
        let by = commit.time_ms + 999;
        for file in &commit.files {
            let key = Key {
                user: commit.user.clone(),
                repo: commit.repo.clone(),
                language: file.language.clone(),
                day: crate::report::day(commit.time_ms),
            };
            let n = out.entry(key).or_default();
            for &fp in &file.fingerprints {
                n.committed += 1;
                let Some(lines) = pool.get_mut(&(commit.user.as_str(), commit.repo.as_str(), fp))
                else {
                    continue;
                };
                let hit = lines
                    .iter_mut()
                    .find(|w| !w.used && w.time_ms <= by && same_file(&file.path, w.path));
                if let Some(hit) = hit {
                    hit.used = true;
                    n.from_moat += 1;
                }
            }
        }
    }
    out
}

/// A line moat wrote, waiting for the commit that adds it.
struct Written<'a> {
    path: &'a str,
    time_ms: i64,
    used: bool,
}

/// The server records paths relative to the editor's workspace folder, which may be a
/// folder inside the repository.
fn same_file(committed: &str, recorded: &str) -> bool {
    !recorded.is_empty()
        && (committed == recorded
            || committed
                .strip_suffix(recorded)
                .is_some_and(|head| head.ends_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moat_owns_the_lines_it_mostly_wrote() {
        // Typed `def `, moat wrote the rest of the line and the body.
        let lines = written_lines("def ", "area(w, h):\n    return w * h", Some(""));
        assert_eq!(lines, ["def area(w, h):", "    return w * h"]);
        // Typed most of the line: only the body is moat's.
        let lines = written_lines("def area(w, h", "):\n    return w * h\n", Some(""));
        assert_eq!(lines, ["    return w * h"]);
        // A partial accept: the unfinished last line is not counted.
        let lines = written_lines("", "x = 1\ny = com", None);
        assert_eq!(lines, ["x = 1"]);
        // Blank lines are nobody's.
        assert!(written_lines("", "\n\n", Some("")).is_empty());
    }

    #[test]
    fn fingerprints_ignore_indentation_and_depend_on_the_salt() {
        assert_eq!(
            fingerprint("  return x ", None),
            fingerprint("return x", None)
        );
        assert_ne!(fingerprint("return x", None), fingerprint("return y", None));
        assert_ne!(
            fingerprint("return x", Some("a")),
            fingerprint("return x", Some("b"))
        );
    }

    fn completion(id: &str, user: &str, path: &str) -> Completion {
        Completion {
            id: id.into(),
            user: user.into(),
            repo: "pay".into(),
            path: path.into(),
            ..Default::default()
        }
    }

    fn ins(id: &str, t: i64, line: &str) -> Inserted {
        Inserted {
            completion: id.into(),
            time_ms: t,
            fingerprint: fingerprint(line, None),
        }
    }

    fn commit(user: &str, t: i64, path: &str, lines: &[&str]) -> Commit {
        Commit {
            repo: "pay".into(),
            user: user.into(),
            time_ms: t,
            files: vec![CommitFile {
                path: path.into(),
                language: "python".into(),
                fingerprints: lines.iter().map(|l| fingerprint(l, None)).collect(),
            }],
        }
    }

    fn total(m: &HashMap<Key, Lines>) -> Lines {
        m.values().fold(Lines::default(), |a, l| Lines {
            committed: a.committed + l.committed,
            from_moat: a.from_moat + l.from_moat,
        })
    }

    #[test]
    fn a_commit_that_keeps_half_of_an_accepted_block() {
        let cs = [completion("a", "ann", "src/geo.py")];
        let block = [
            "def area(w, h):",
            "return w * h",
            "def perimeter(w, h):",
            "return 2 * (w + h)",
        ];
        let inserted: Vec<Inserted> = block.iter().map(|l| ins("a", 1_000, l)).collect();
        // Ann kept the first function, rewrote the second, and wrote two lines herself.
        let c = commit(
            "ann",
            5_000,
            "src/geo.py",
            &[
                "def area(w, h):",
                "    return w * h",
                "def perimeter(w, h):",
                "return w + w + h + h",
                "x = 1",
                "y = 2",
            ],
        );
        let got = attribute(&[c], &cs, &inserted);
        assert_eq!(
            total(&got),
            Lines {
                committed: 6,
                from_moat: 3
            }
        );
    }

    #[test]
    fn file_user_time_and_reuse_are_checked() {
        let cs = [
            completion("a", "ann", "geo.py"),
            completion("b", "bob", "geo.py"),
        ];
        let inserted = vec![ins("a", 10_000, "return w * h"), ins("b", 1_000, "x = 1")];
        let commits = [
            // Before the accept: not moat's.
            commit("ann", 5_000, "lib/geo.py", &["return w * h"]),
            // Another file: not moat's.
            commit("ann", 20_000, "lib/other.py", &["return w * h"]),
            // The workspace was lib/: the recorded path is a suffix.
            commit("ann", 30_000, "lib/geo.py", &["return w * h"]),
            // The fingerprint was used already.
            commit("ann", 40_000, "lib/geo.py", &["return w * h"]),
            // Bob's line, committed by Bob.
            commit("bob", 50_000, "geo.py", &["x = 1"]),
            // Carol never used moat: not counted at all.
            commit("carol", 60_000, "geo.py", &["x = 1"]),
        ];
        let got = attribute(&commits, &cs, &inserted);
        assert_eq!(
            total(&got),
            Lines {
                committed: 5,
                from_moat: 2
            }
        );
        let bob: u64 = got
            .iter()
            .filter(|(k, _)| k.user == "bob")
            .map(|(_, l)| l.from_moat)
            .sum();
        assert_eq!(bob, 1);
        assert!(!same_file("xgeo.py", "geo.py"));
    }
}
