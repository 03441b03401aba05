//! Git awareness: the repository root from any directory inside it, HEAD, and recently
//! changed files (uncommitted first, then the latest commits').

use moat_index::git;

#[test]
fn recent_files_put_uncommitted_work_first() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = git2::Repository::init(root).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let commit = |files: &[&str], msg: &str| {
        let mut index = repo.index().unwrap();
        for f in files {
            index.add_path(std::path::Path::new(f)).unwrap();
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parents: Vec<git2::Commit> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &refs)
            .unwrap();
    };
    std::fs::write(root.join("old.py"), "a = 1\n").unwrap();
    commit(&["old.py"], "first");
    std::fs::create_dir(root.join("pkg")).unwrap();
    std::fs::write(root.join("pkg/new.py"), "b = 2\n").unwrap();
    commit(&["pkg/new.py"], "second");
    std::fs::write(root.join("old.py"), "a = 3\n").unwrap();

    let info = git::discover(&root.join("pkg")).unwrap();
    assert_eq!(
        info.root.canonicalize().unwrap(),
        root.canonicalize().unwrap()
    );
    assert!(info.head.is_some());
    let recent = git::recent_files(root, 10).unwrap();
    assert_eq!(recent, ["old.py", "pkg/new.py"]);
    assert_eq!(git::recent_files(root, 1).unwrap(), ["old.py"]);
    // Outside any repository: no git, no error.
    let plain = tempfile::tempdir().unwrap();
    assert!(git::discover(plain.path()).is_none());
}
