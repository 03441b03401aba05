/// Receives progress of long operations; the CLI draws bars, tests and servers log.
pub trait Progress {
    /// A new stage begins; `total` is its size in bytes when known.
    fn stage(&self, what: &str, total: Option<u64>);
    fn advance(&self, bytes: u64);
    fn done(&self);
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, what: &str, _total: Option<u64>) {
        tracing::info!("{what}");
    }
    fn advance(&self, _bytes: u64) {}
    fn done(&self) {}
}
