#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry database {path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("telemetry database {path} was written by a newer moat (schema {found}, this one knows {known})")]
    Newer {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, TelemetryError>;
