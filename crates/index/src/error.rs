use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("{0}")]
    Git(#[from] git2::Error),
    #[error("watching for file changes: {0}")]
    Watch(String),
}

pub type Result<T> = std::result::Result<T, IndexError>;
