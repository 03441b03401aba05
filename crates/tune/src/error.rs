use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error(transparent)]
    Engine(#[from] moat_engine::EngineError),
    #[error(transparent)]
    Model(#[from] moat_models::ModelError),
    #[error(transparent)]
    Context(#[from] moat_context::ContextError),
    #[error(transparent)]
    Index(#[from] moat_index::IndexError),
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no eligible source files under {root} ({skipped})")]
    NoFiles { root: PathBuf, skipped: String },
    #[error("too little data: {what}; add files or lower --seq / --holdout")]
    TooLittleData { what: String },
    #[error("LoRA tensor {0} received no gradient: a non-differentiable op cut the graph")]
    NoGradient(String),
    #[error("the loss is not finite at step {step} (learning rate too high?)")]
    NotFinite { step: usize },
    #[error(
        "the adapter was trained on a different base model (checksum {expected}, this file {found})"
    )]
    BaseMismatch { expected: String, found: String },
    #[error(
        "adapter {name} did not beat the base model on its held-out files ({detail}); force it \
         to use it anyway"
    )]
    NotBetter { name: String, detail: String },
    #[error("bad adapter or checkpoint {path}: {detail}")]
    BadAdapter { path: PathBuf, detail: String },
    #[error(
        "training needs about {need_mb} MB at sequence length {seq} but {available_mb} MB are free; \
         try --seq {half} (or fewer adapted modules, a smaller --rank)"
    )]
    OutOfMemory {
        need_mb: u64,
        available_mb: u64,
        seq: usize,
        half: usize,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, TuneError>;

pub(crate) fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> TuneError + '_ {
    move |source| TuneError::Io {
        path: path.to_path_buf(),
        source,
    }
}
