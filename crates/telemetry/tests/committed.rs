//! The committed-code share from a real git repository: commits are read with git2, their
//! added lines matched to the fingerprints an accept recorded, and the report carries the
//! share per user and language.

use moat_telemetry::committed::{self, fingerprint, written_lines, Inserted};
use moat_telemetry::{git, Completion, Dimension, Loaded, Report};
use std::path::Path;

fn commit(repo: &git2::Repository, email: &str, time_s: i64, files: &[(&str, &str)], msg: &str) {
    let root = repo.workdir().unwrap();
    let mut index = repo.index().unwrap();
    for (path, text) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, text).unwrap();
        index.add_path(Path::new(path)).unwrap();
    }
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("someone", email, &git2::Time::new(time_s, 0)).unwrap();
    let parents: Vec<git2::Commit> = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
        .unwrap();
}

fn language(path: &str) -> Option<String> {
    match path.rsplit('.').next() {
        Some("py") => Some("python".into()),
        Some("go") => Some("go".into()),
        _ => None,
    }
}

#[test]
fn committed_lines_are_matched_to_accepted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("payments");
    let repo = git2::Repository::init(&root).unwrap();
    let t0: i64 = 1_800_000_000; // seconds

    // Ann accepted a block of four lines in geo.py at t0 + 10 (she had typed `def `).
    let block = "area(w, h):\n    return w * h\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n";
    let lines = written_lines("def ", block, Some(""));
    assert_eq!(lines.len(), 4);
    let completions = vec![Completion {
        id: "c1".into(),
        time_ms: (t0 + 5) * 1000,
        user: "ann@example.com".into(),
        repo: "payments".into(),
        path: "src/geo.py".into(),
        language: "python".into(),
        ..Default::default()
    }];
    let inserted: Vec<Inserted> = lines
        .iter()
        .map(|l| Inserted {
            completion: "c1".into(),
            time_ms: (t0 + 10) * 1000,
            fingerprint: fingerprint(l, None),
        })
        .collect();

    // Before the accept: an older file of Ann's (2 lines, hers).
    commit(
        &repo,
        "ann@example.com",
        t0,
        &[("src/old.py", "a = 1\nb = 2\n")],
        "old",
    );
    // She commits half of the block (the area function) plus two lines of her own, and a
    // README that is not code.
    let geo = "import math\n\ndef area(w, h):\n    return w * h\n\ndef perimeter(w, h):\n    return w + w + h + h\n";
    commit(
        &repo,
        "ann@example.com",
        t0 + 60,
        &[("src/geo.py", geo), ("README.md", "geometry\n")],
        "geo",
    );
    // Carol never used moat: her commit does not count.
    commit(
        &repo,
        "carol@example.com",
        t0 + 120,
        &[("main.go", "package main\n")],
        "go",
    );

    let (name, commits) =
        git::commits(&root, t0 * 1000, (t0 + 3600) * 1000, None, &language).unwrap();
    assert_eq!(name, "payments");
    assert_eq!(commits.len(), 3);
    let attributed = committed::attribute(&commits, &completions, &inserted);
    let data = Loaded {
        completions,
        inserted,
        ..Default::default()
    };
    let r = Report::build(
        &data,
        t0 * 1000,
        (t0 + 3600) * 1000,
        Some(Dimension::Language),
        Some(&attributed),
    );
    // Ann's lines: old.py 2 + geo.py 5 (non-blank); moat's: `def area(w, h):`,
    // `return w * h`, `def perimeter(w, h):`.
    assert_eq!(r.total.committed_lines, Some(7));
    assert_eq!(r.total.committed_from_moat, Some(3));
    assert_eq!(r.total.committed_share, Some(3.0 / 7.0));
    let python = r.groups.iter().find(|g| g.key == "python").unwrap();
    assert_eq!(python.summary.committed_lines, Some(7));
    assert!(r.groups.iter().all(|g| g.key != "go"), "Carol's Go file");

    // Outside the range nothing is read; a folder outside git is an error, not a panic.
    let (_, none) = git::commits(&root, 0, t0 * 1000, None, &language).unwrap();
    assert!(none.is_empty());
    assert!(git::commits(dir.path(), 0, i64::MAX, None, &language).is_err());
}
