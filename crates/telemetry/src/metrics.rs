//! The figures, from records alone.
//!
//! - A completion counts as **shown** when it was visible for at least `MIN_VISIBLE_MS`
//!   (the definition Cody uses): the time the editor reports, or else the time from its
//!   `shown` event to the next event about it (hidden, accepted, partially accepted,
//!   dismissed). One shown and never heard of again counts as shown. An accepted one counts
//!   as shown however fast the Tab was, even with no `shown` event before it.
//! - Its **accepted fraction** is 1 when accepted, else the largest partial accept's
//!   characters over its length, else 0. Acceptance rate by count is the sum of fractions
//!   over the completions shown; by characters, accepted characters over characters shown.
//! - **Retention** at a checkpoint is the mean fraction kept over the accepted completions
//!   checked at that checkpoint.

use crate::record::{Completion, Event, EventKind, Retention};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub const MIN_VISIBLE_MS: i64 = 750;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Completions the model produced (shown or not).
    pub completions: u64,
    pub shown: u64,
    /// Sum of accepted fractions (a half-accepted completion adds 0.5).
    pub accepted: f64,
    pub fully_accepted: u64,
    pub partially_accepted: u64,
    pub dismissed: u64,
    /// accepted / shown.
    pub acceptance_rate: Option<f64>,
    pub shown_chars: u64,
    pub accepted_chars: f64,
    /// accepted_chars / shown_chars.
    pub char_acceptance_rate: Option<f64>,
    pub accepted_lines: f64,
    /// Checkpoint (seconds) → mean fraction kept.
    pub retention: BTreeMap<u32, f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// Non-blank lines committed by moat's users (None: no repository was read).
    pub committed_lines: Option<u64>,
    /// Of those, the lines moat wrote (see `committed`).
    pub committed_from_moat: Option<u64>,
    /// committed_from_moat / committed_lines.
    pub committed_share: Option<f64>,
}

impl Summary {
    /// Adds committed lines to the figures.
    pub fn add_committed(&mut self, lines: crate::committed::Lines) {
        let total = self.committed_lines.unwrap_or(0) + lines.committed;
        let moat = self.committed_from_moat.unwrap_or(0) + lines.from_moat;
        self.committed_lines = Some(total);
        self.committed_from_moat = Some(moat);
        self.committed_share = (total > 0).then(|| moat as f64 / total as f64);
    }
}

/// What happened to one completion.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    pub shown: bool,
    pub fraction: f64,
    pub accepted_chars: f64,
    pub dismissed: bool,
}

/// The outcome of one completion from its events (in time order).
pub fn outcome(c: &Completion, events: &[&Event]) -> Outcome {
    let mut o = Outcome::default();
    // An accept needs no `shown` event before it: a client reports shown only after the
    // item stayed on screen a while, and a Tab pressed sooner still took what was drawn
    // (VS Code's tracker confirms after 750 ms; the editor test lost such an accept).
    let shown_at = events.iter().position(|e| e.kind == EventKind::Shown);
    let visible = shown_at.and_then(|at| {
        let shown = events[at];
        shown.visible_ms.map(i64::from).or_else(|| {
            events[at + 1..]
                .iter()
                .find(|e| e.kind != EventKind::Shown)
                .map(|e| e.time_ms - shown.time_ms)
        })
    });
    let accepted = events.iter().any(|e| e.kind == EventKind::Accepted);
    let partial = events
        .iter()
        .filter(|e| e.kind == EventKind::Partial)
        .filter_map(|e| e.chars)
        .max()
        .unwrap_or(0);
    let len = c.chars.max(1) as f64;
    if accepted {
        o.fraction = 1.0;
        o.accepted_chars = c.chars as f64;
    } else if partial > 0 {
        o.accepted_chars = (partial as f64).min(c.chars as f64);
        o.fraction = o.accepted_chars / len;
    }
    if shown_at.is_none() && o.fraction == 0.0 {
        return Outcome::default(); // never on screen
    }
    o.dismissed = events.iter().any(|e| e.kind == EventKind::Dismissed);
    o.shown = o.fraction > 0.0 || visible.is_none_or(|v| v >= MIN_VISIBLE_MS);
    o
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Records of one kind grouped by completion: `items[at[i]..at[i + 1]]` are those of the
/// `i`-th completion, in their original (time) order. One hash lookup per record and no
/// allocation per completion: a million events are grouped in a fraction of a second.
struct Grouped<'a, T> {
    items: Vec<&'a T>,
    at: Vec<u32>,
}

impl<'a, T> Grouped<'a, T> {
    fn new(n: usize, records: &'a [T], slot: impl Fn(&T) -> Option<u32>) -> Self {
        let slots: Vec<Option<u32>> = records.iter().map(&slot).collect();
        let mut at = vec![0u32; n + 1];
        for s in slots.iter().flatten() {
            at[*s as usize + 1] += 1;
        }
        for i in 0..n {
            at[i + 1] += at[i];
        }
        let mut fill = at.clone();
        let mut items: Vec<Option<&T>> = vec![None; at[n] as usize];
        for (r, s) in records.iter().zip(&slots) {
            if let Some(s) = s {
                items[fill[*s as usize] as usize] = Some(r);
                fill[*s as usize] += 1;
            }
        }
        Self {
            items: items.into_iter().flatten().collect(),
            at,
        }
    }

    fn of(&self, i: usize) -> &[&'a T] {
        &self.items[self.at[i] as usize..self.at[i + 1] as usize]
    }
}

/// Events and retention checks of a set of completions, grouped once for many summaries.
/// Records of other completions are ignored.
pub struct ByCompletion<'a> {
    completions: &'a [Completion],
    events: Grouped<'a, Event>,
    kept: Grouped<'a, Retention>,
}

impl<'a> ByCompletion<'a> {
    pub fn new(
        completions: &'a [Completion],
        events: &'a [Event],
        retention: &'a [Retention],
    ) -> Self {
        let slot: HashMap<&str, u32> = completions
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i as u32))
            .collect();
        let n = completions.len();
        let events = Grouped::new(n, events, |e| slot.get(e.completion.as_str()).copied());
        let kept = Grouped::new(n, retention, |r| slot.get(r.completion.as_str()).copied());
        Self {
            completions,
            events,
            kept,
        }
    }

    /// Each completion with what happened to it, in the completions' order.
    pub fn judge_all(&self) -> Vec<Judged<'_>> {
        self.completions
            .iter()
            .enumerate()
            .map(|(i, c)| Judged {
                completion: c,
                outcome: outcome(c, self.events.of(i)),
                kept: self.kept.of(i),
            })
            .collect()
    }
}

/// The figures for a set of completions. `events` and `retention` may hold records of other
/// completions; they are ignored.
pub fn summarize(completions: &[Completion], events: &[Event], retention: &[Retention]) -> Summary {
    let by = ByCompletion::new(completions, events, retention);
    let judged = by.judge_all();
    aggregate(&judged.iter().collect::<Vec<_>>())
}

/// A completion with what happened to it, worked out once for all the summaries it is in.
pub struct Judged<'a> {
    pub completion: &'a Completion,
    pub outcome: Outcome,
    pub kept: &'a [&'a Retention],
}

/// The figures for a set of judged completions.
pub fn aggregate(items: &[&Judged]) -> Summary {
    let mut s = Summary {
        completions: items.len() as u64,
        ..Default::default()
    };
    let mut latencies = Vec::with_capacity(items.len());
    let mut kept_sum: BTreeMap<u32, (f64, u64)> = BTreeMap::new();
    for j in items {
        let (c, o) = (j.completion, &j.outcome);
        latencies.push(c.latency_ms);
        if !o.shown {
            continue;
        }
        s.shown += 1;
        s.shown_chars += c.chars as u64;
        s.accepted += o.fraction;
        s.accepted_chars += o.accepted_chars;
        s.accepted_lines += o.fraction * c.lines as f64;
        if o.fraction >= 1.0 {
            s.fully_accepted += 1;
            for r in j.kept {
                let e = kept_sum.entry(r.after_s).or_default();
                e.0 += r.kept.clamp(0.0, 1.0);
                e.1 += 1;
            }
        } else if o.fraction > 0.0 {
            s.partially_accepted += 1;
        }
        if o.dismissed {
            s.dismissed += 1;
        }
    }
    s.acceptance_rate = (s.shown > 0).then(|| s.accepted / s.shown as f64);
    s.char_acceptance_rate = (s.shown_chars > 0).then(|| s.accepted_chars / s.shown_chars as f64);
    s.retention = kept_sum
        .into_iter()
        .map(|(at, (sum, n))| (at, sum / n as f64))
        .collect();
    latencies.sort_by(f64::total_cmp);
    s.latency_p50_ms = percentile(&latencies, 0.5);
    s.latency_p95_ms = percentile(&latencies, 0.95);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(id: &str, chars: u32, lines: u32) -> Completion {
        Completion {
            id: id.into(),
            chars,
            lines,
            latency_ms: 100.0,
            ..Default::default()
        }
    }

    fn ev(id: &str, t: i64, kind: EventKind) -> Event {
        Event {
            completion: id.into(),
            time_ms: t,
            kind,
            chars: None,
            visible_ms: None,
        }
    }

    #[test]
    fn shown_accepted_partial_and_too_brief() {
        let cs = [
            completion("a", 40, 2),  // shown 2 s, accepted
            completion("b", 100, 4), // shown, 25 characters taken
            completion("c", 10, 1),  // visible 300 ms, then replaced: not shown
            completion("d", 10, 1),  // never shown
            completion("e", 20, 1),  // shown 1 s, dismissed
            completion("f", 30, 1),  // accepted after 200 ms: shown
            completion("g", 12, 1),  // accepted before any shown event: shown
            completion("h", 12, 1),  // dismissed, never shown: not counted
        ];
        let mut p = ev("b", 1500, EventKind::Partial);
        p.chars = Some(25);
        let events = vec![
            ev("a", 0, EventKind::Shown),
            ev("a", 2000, EventKind::Accepted),
            ev("b", 0, EventKind::Shown),
            p,
            ev("c", 0, EventKind::Shown),
            ev("c", 300, EventKind::Hidden),
            ev("e", 0, EventKind::Shown),
            ev("e", 1000, EventKind::Dismissed),
            ev("f", 0, EventKind::Shown),
            ev("f", 200, EventKind::Accepted),
            ev("g", 100, EventKind::Accepted),
            ev("h", 100, EventKind::Dismissed),
        ];
        let s = summarize(&cs, &events, &[]);
        assert_eq!(s.completions, 8);
        assert_eq!(s.shown, 5, "a, b, e, f, g");
        assert!((s.accepted - 3.25).abs() < 1e-9, "{}", s.accepted);
        assert_eq!(s.acceptance_rate, Some(3.25 / 5.0));
        assert_eq!(s.shown_chars, 40 + 100 + 20 + 30 + 12);
        assert!((s.accepted_chars - 107.0).abs() < 1e-9);
        assert_eq!(s.char_acceptance_rate, Some(107.0 / 202.0));
        assert!((s.accepted_lines - (2.0 + 1.0 + 1.0 + 1.0)).abs() < 1e-9);
        assert_eq!(
            (s.fully_accepted, s.partially_accepted, s.dismissed),
            (3, 1, 1)
        );
    }

    #[test]
    fn the_reported_visible_time_wins_over_the_inferred_one() {
        let c = completion("a", 10, 1);
        let mut shown = ev("a", 0, EventKind::Shown);
        shown.visible_ms = Some(500);
        let dismissed = ev("a", 5000, EventKind::Dismissed);
        assert!(!outcome(&c, &[&shown, &dismissed]).shown);
        shown.visible_ms = Some(800);
        assert!(outcome(&c, &[&shown, &dismissed]).shown);
    }

    #[test]
    fn retention_is_the_mean_over_accepted_completions() {
        let cs = [completion("a", 10, 1), completion("b", 10, 1)];
        let events = vec![
            ev("a", 0, EventKind::Shown),
            ev("a", 1000, EventKind::Accepted),
            ev("b", 0, EventKind::Shown),
            ev("b", 1000, EventKind::Accepted),
        ];
        let r = |id: &str, at, kept| Retention {
            completion: id.into(),
            after_s: at,
            kept,
        };
        let retention = vec![
            r("a", 30, 1.0),
            r("b", 30, 1.0),
            r("a", 600, 0.5),
            r("b", 600, 0.0),
            r("zzz", 30, 0.0), // another completion's
        ];
        let s = summarize(&cs, &events, &retention);
        assert_eq!(s.retention.get(&30), Some(&1.0));
        assert_eq!(s.retention.get(&600), Some(&0.25));
    }
}
