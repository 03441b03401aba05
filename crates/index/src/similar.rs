//! Similar code: files cut into overlapping windows of lines, scored against a query text
//! with BM25 over code terms (`tokens`). A compact inverted index of our own: postings per
//! term, updated per file, so that editing one file never rebuilds the whole index.

use crate::tokens::terms;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Window length and step, in lines: 40-line windows every 20 lines, so every line is in two
/// windows and a function of up to ~20 lines is whole in at least one.
pub const WINDOW: u32 = 40;
pub const STEP: u32 = 20;

/// One window of a file, as the index keeps it: where it is and its term counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub start_line: u32,
    /// Inclusive.
    pub end_line: u32,
    pub terms: Vec<(String, u32)>,
    pub len: u32,
}

/// Cuts `text` into windows (a file shorter than a window is one chunk).
pub fn chunks(text: &str) -> Vec<Chunk> {
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len() as u32;
    let mut out = Vec::new();
    let mut start = 0u32;
    loop {
        let end = (start + WINDOW).min(n);
        let mut all = Vec::new();
        for l in &lines[start as usize..end as usize] {
            terms(l, &mut all);
        }
        if !all.is_empty() {
            let mut counts: HashMap<String, u32> = HashMap::new();
            for t in &all {
                *counts.entry(t.clone()).or_default() += 1;
            }
            let mut terms: Vec<(String, u32)> = counts.into_iter().collect();
            terms.sort();
            out.push(Chunk {
                start_line: start,
                end_line: end.saturating_sub(1),
                terms,
                len: all.len() as u32,
            });
        }
        if end >= n {
            break;
        }
        start += STEP;
    }
    out
}

/// Where a chunk lives: a file id (the index's) and the chunk's position in that file.
pub type ChunkRef = (u32, u32);

#[derive(Debug, Default)]
pub struct Bm25 {
    postings: HashMap<String, Vec<(ChunkRef, u32)>>,
    lengths: HashMap<ChunkRef, u32>,
    total_len: u64,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;

impl Bm25 {
    pub fn add(&mut self, file: u32, chunks: &[Chunk]) {
        for (i, c) in chunks.iter().enumerate() {
            let key = (file, i as u32);
            for (t, n) in &c.terms {
                self.postings.entry(t.clone()).or_default().push((key, *n));
            }
            self.lengths.insert(key, c.len);
            self.total_len += c.len as u64;
        }
    }

    /// Removes what `add(file, chunks)` added (the caller passes the same chunks).
    pub fn remove(&mut self, file: u32, chunks: &[Chunk]) {
        for (i, c) in chunks.iter().enumerate() {
            let key = (file, i as u32);
            for (t, _) in &c.terms {
                if let Some(p) = self.postings.get_mut(t) {
                    p.retain(|(k, _)| *k != key);
                    if p.is_empty() {
                        self.postings.remove(t);
                    }
                }
            }
            if let Some(len) = self.lengths.remove(&key) {
                self.total_len -= len as u64;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// The `k` best chunks for `query`, best first, skipping those `skip` rejects.
    pub fn search(
        &self,
        query: &str,
        k: usize,
        skip: impl Fn(ChunkRef) -> bool,
    ) -> Vec<(ChunkRef, f32)> {
        let mut q = Vec::new();
        terms(query, &mut q);
        q.sort();
        q.dedup();
        let n = self.lengths.len() as f32;
        if n == 0.0 {
            return Vec::new();
        }
        let avg = self.total_len as f32 / n;
        let mut scores: HashMap<ChunkRef, f32> = HashMap::new();
        for t in &q {
            let Some(p) = self.postings.get(t) else {
                continue;
            };
            let df = p.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for (key, tf) in p {
                if skip(*key) {
                    continue;
                }
                let len = self.lengths[key] as f32;
                let tf = *tf as f32;
                let s = idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg));
                *scores.entry(*key).or_default() += s;
            }
        }
        let mut ranked: Vec<(ChunkRef, f32)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_window_that_shares_rare_terms() {
        let a = "def load_config(path):\n    return json.load(open(path))\n";
        let b = "def render_page(template):\n    return template.render()\n";
        let mut idx = Bm25::default();
        idx.add(0, &chunks(a));
        idx.add(1, &chunks(b));
        let hits = idx.search("cfg = load_config(config_path)", 5, |_| false);
        assert_eq!(hits[0].0, (0, 0));
        idx.remove(0, &chunks(a));
        let hits = idx.search("load_config", 5, |_| false);
        assert!(hits.is_empty(), "{hits:?}");
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn windows_overlap_and_cover_every_line() {
        let text: String = (0..95).map(|i| format!("line_{i} = value_{i}\n")).collect();
        let c = chunks(&text);
        assert_eq!(c.first().unwrap().start_line, 0);
        assert_eq!(c.last().unwrap().end_line, 94);
        for w in c.windows(2) {
            assert_eq!(w[1].start_line, w[0].start_line + STEP);
        }
    }
}
