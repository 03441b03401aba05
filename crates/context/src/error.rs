#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(
        "the cursor (byte {cursor}) is outside the document ({len} bytes) or inside a character"
    )]
    Cursor { cursor: usize, len: usize },
    #[error("the budget of {budget} tokens cannot hold even the prompt markup and the cursor line ({needed} tokens)")]
    Budget { budget: usize, needed: usize },
    #[error(transparent)]
    Engine(#[from] moat_engine::EngineError),
}

pub type Result<T> = std::result::Result<T, ContextError>;
