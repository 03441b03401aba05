use std::path::PathBuf;

/// Every way the engine can fail. Each variant names its cause in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a GGUF model file (its first bytes are not the GGUF magic)")]
    NotGguf { path: PathBuf },
    #[error("{path} is truncated or corrupt: {detail}")]
    CorruptGguf { path: PathBuf, detail: String },
    #[error("unsupported model architecture `{0}` (supported: qwen2, llama)")]
    UnsupportedArchitecture(String),
    #[error("the model's metadata lacks `{0}`")]
    MissingMetadata(String),
    #[error("the model file lacks tensor `{0}`")]
    MissingTensor(String),
    #[error("cannot build the tokenizer from the model's metadata: {0}")]
    Tokenizer(String),
    #[error(
        "the model has no fill-in-the-middle tokens (looked for {0}); it cannot complete code"
    )]
    NoFimTokens(String),
    #[error("the prompt needs {needed} tokens but the context holds {capacity}")]
    ContextOverflow { needed: usize, capacity: usize },
    #[error("device `{0}` is not available in this build (rebuild with the `{0}` feature)")]
    DeviceUnavailable(String),
    #[error("unknown device `{0}` (expected cpu, cuda or metal)")]
    UnknownDevice(String),
    #[error("the adapter does not fit this model: {0}")]
    Adapter(String),
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
