//! Generations in flight, one per document, that later requests join.
//!
//! On a CPU a completion takes longer than the gap between two keystrokes. If each
//! keystroke cancelled the running generation and started another, nothing would ever be
//! shown while the user types. Instead a request whose document is the generation's one plus
//! characters typed at its cursor waits for that generation and answers with the rest of it
//! (when it starts with what was typed). Editors cancel the older request on each keystroke;
//! the generation is stopped only when nobody has waited for it for a short grace period.

use moat_engine::CancelFlag;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub struct Inflight {
    /// Tells this generation from a later one for the same document.
    pub serial: u64,
    /// The document before and after the cursor when it started.
    pub before: String,
    pub after: String,
    pub cancel: CancelFlag,
    /// The text generated so far (before the post-processing cut).
    pub partial: Arc<Mutex<String>>,
    done: watch::Receiver<bool>,
    waiters: Arc<AtomicUsize>,
}

/// Marks the generation finished (its result is in the typing-through cache by then).
pub struct Finish(watch::Sender<bool>);

impl Finish {
    pub fn done(self) {
        let _ = self.0.send(true);
    }
}

impl Inflight {
    pub fn new(serial: u64, before: &str, after: &str, cancel: CancelFlag) -> (Self, Finish) {
        let (tx, rx) = watch::channel(false);
        let inflight = Self {
            serial,
            before: before.to_string(),
            after: after.to_string(),
            cancel,
            partial: Arc::default(),
            done: rx,
            waiters: Arc::new(AtomicUsize::new(0)),
        };
        (inflight, Finish(tx))
    }

    /// Whether `text` with the cursor at `cursor` is this generation's document with
    /// characters typed at its cursor (or unchanged).
    pub fn joinable(&self, text: &str, cursor: usize) -> bool {
        !self.cancel.is_cancelled()
            && text.is_char_boundary(cursor)
            && text[cursor..] == self.after
            && text[..cursor].starts_with(&self.before)
    }

    /// Whether what was generated so far already disagrees with the characters typed
    /// since it started (`text` up to `cursor`, a joinable document): then waiting for it
    /// is pointless.
    pub fn diverged(&self, text: &str, cursor: usize) -> bool {
        let typed = &text[self.before.len()..cursor];
        let partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        !(partial.starts_with(typed) || typed.starts_with(partial.as_str()))
    }

    /// Waits with this generation. When the last waiter leaves before the end, the
    /// generation is cancelled after `grace` unless someone joined meanwhile.
    pub fn join(&self, grace: Duration) -> Joined {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        Joined {
            done: self.done.clone(),
            _waiter: Waiter {
                waiters: self.waiters.clone(),
                cancel: self.cancel.clone(),
                grace,
            },
        }
    }
}

pub struct Joined {
    done: watch::Receiver<bool>,
    _waiter: Waiter,
}

impl Joined {
    /// Returns when the generation has finished (or its task is gone).
    pub async fn finished(mut self) {
        let _ = self.done.wait_for(|d| *d).await;
    }
}

struct Waiter {
    waiters: Arc<AtomicUsize>,
    cancel: CancelFlag,
    grace: Duration,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.waiters.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        let (waiters, cancel, grace) = (self.waiters.clone(), self.cancel.clone(), self.grace);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(grace).await;
                    if waiters.load(Ordering::SeqCst) == 0 {
                        cancel.cancel();
                    }
                });
            }
            Err(_) => cancel.cancel(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joinable_only_with_characters_typed_at_the_cursor() {
        let (g, _f) = Inflight::new(1, "x = foo(", ")\n", CancelFlag::new());
        assert!(g.joinable("x = foo()\n", 8));
        assert!(g.joinable("x = foo(ab)\n", 10));
        assert!(!g.joinable("x = fo()\n", 7), "deleted a character");
        assert!(!g.joinable("x = foo(a)\n\n", 9), "edited after the cursor");
        assert!(!g.joinable("y = foo(a)\n", 9), "edited before");
        *g.partial.lock().unwrap() = "a, b".into();
        assert!(!g.diverged("x = foo(a, )\n", 11));
        assert!(
            !g.diverged("x = foo(a, b, c)\n", 15),
            "typed past the partial text"
        );
        assert!(g.diverged("x = foo(a.)\n", 10));
        g.cancel.cancel();
        assert!(!g.joinable("x = foo()\n", 8), "cancelled");
    }

    #[tokio::test]
    async fn the_last_waiter_leaving_cancels_after_the_grace_unless_another_joins() {
        let (g, _f) = Inflight::new(1, "", "", CancelFlag::new());
        let a = g.join(Duration::from_millis(30));
        drop(a);
        let b = g.join(Duration::from_millis(30)); // the next keystroke's request
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!g.cancel.is_cancelled(), "someone was waiting");
        drop(b);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(g.cancel.is_cancelled(), "nobody waits any more");
    }

    #[tokio::test]
    async fn waiters_learn_when_it_finished() {
        let (g, f) = Inflight::new(1, "", "", CancelFlag::new());
        let j = g.join(Duration::from_millis(30));
        let waiting = tokio::spawn(j.finished());
        f.done();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("finished")
            .unwrap();
        assert!(!g.cancel.is_cancelled());
    }
}
