//! Changes made outside the editor (a `git checkout`, a code generator, another editor):
//! file-system events, gathered into batches of paths for `Index::update_file`.

use crate::error::{IndexError, Result};
use crate::index::Index;
use notify::{RecursiveMode, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub struct Watcher {
    _inner: notify::RecommendedWatcher,
    events: Receiver<notify::Result<notify::Event>>,
}

impl Watcher {
    /// Watches `root` recursively.
    pub fn start(root: &Path) -> Result<Self> {
        let (tx, events) = channel();
        let mut inner = notify::recommended_watcher(move |e| {
            let _ = tx.send(e);
        })
        .map_err(|e| IndexError::Watch(e.to_string()))?;
        inner
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| IndexError::Watch(e.to_string()))?;
        Ok(Self {
            _inner: inner,
            events,
        })
    }

    /// Paths changed since the last call: waits up to `wait` for a first event, then keeps
    /// collecting until the file system has been quiet for `settle` (a checkout touches
    /// many files in a burst; they are applied together). Empty if nothing happened.
    pub fn changed(&self, wait: Duration, settle: Duration) -> Vec<PathBuf> {
        let mut paths = BTreeSet::new();
        let mut deadline = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.events.recv_timeout(deadline - now) {
                Ok(Ok(event)) => {
                    paths.extend(event.paths);
                    deadline = Instant::now() + settle;
                }
                Ok(Err(e)) => tracing::debug!("watch: {e}"),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        paths.into_iter().collect()
    }
}

/// Applies changed paths to the index (a renamed file arrives as its two paths: the old one
/// is gone, the new one is read). Returns how many paths changed the index.
pub fn apply(index: &mut Index, paths: &[PathBuf]) -> usize {
    let mut n = 0;
    for p in paths {
        if p.is_dir() {
            continue;
        }
        let known =
            crate::walk::relative(index.root(), p).is_some_and(|r| index.file(&r).is_some());
        // Indexed now, or indexed before (and updated or removed now).
        if index.update_file(p) || known {
            n += 1;
        }
    }
    n
}
