//! Similar code: files cut into overlapping windows of lines, scored against a query text
//! with BM25 over code terms (`tokens`). A compact inverted index of our own: postings per
//! term, updated per file, so that editing one file never rebuilds the whole index.

use crate::tokens::{fold, for_each_raw_term, terms, RawTerm};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use std::hash::Hasher;
// Term and chunk keys are hashed millions of times while indexing; they come from the
// repository, not from an adversary, so a fast non-cryptographic hash is the right trade.
use rustc_hash::{FxHashMap as HashMap, FxHasher};

/// Window length and step, in lines: 40-line windows every 20 lines, so every line is in two
/// windows and a function of up to ~20 lines is whole in at least one.
pub const WINDOW: u32 = 40;
pub const STEP: u32 = 20;

/// A file's windows, with terms as ids into the file's own vocabulary (sorted, so that
/// ids compare as the terms do). The index maps them to its ids once per file
/// ([`Bm25::intern`]), not once per term and window. The vocabulary is one string, so that
/// a file's terms cost one allocation, not one each (nearly all of them are already in the
/// index's vocabulary, and only a new one is copied there).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunks {
    /// The terms, one after another.
    terms: String,
    /// Where each term ends in `terms`.
    ends: Vec<u32>,
    pub chunks: Vec<IdChunk>,
}

impl Chunks {
    /// The file's terms, in id order.
    pub fn vocab(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(a, b)| &self.terms[a as usize..*b as usize])
    }
}

/// Cuts `text` into windows (a file shorter than a window is one chunk). Each line's terms
/// are found once, though every line is in two windows.
pub fn chunks(text: &str) -> Chunks {
    let mut local = LocalVocab::default();
    // The term ids of every line, flat; `line_end[i]` ends line i's run.
    let mut ids: Vec<u32> = Vec::new();
    let mut line_end: Vec<usize> = Vec::new();
    for line in text.lines() {
        for_each_raw_term(line, |t| ids.push(local.id(t)));
        line_end.push(ids.len());
    }
    // Renumber in the terms' order.
    let order = local.sorted();
    let mut rank = vec![0u32; order.len()];
    for (r, id) in order.iter().enumerate() {
        rank[*id as usize] = r as u32;
    }
    let mut counts = vec![0u32; order.len()];
    let mut touched: Vec<u32> = Vec::new();
    let n = line_end.len() as u32;
    let mut out = Vec::new();
    let mut start = 0u32;
    loop {
        let end = (start + WINDOW).min(n);
        let from = if start == 0 {
            0
        } else {
            line_end[start as usize - 1]
        };
        let to = if end == 0 {
            0
        } else {
            line_end[end as usize - 1]
        };
        for &id in &ids[from..to] {
            let r = rank[id as usize];
            if counts[r as usize] == 0 {
                touched.push(r);
            }
            counts[r as usize] += 1;
        }
        if to > from {
            touched.sort_unstable();
            let terms = touched
                .drain(..)
                .map(|r| (r, std::mem::take(&mut counts[r as usize])))
                .collect();
            out.push(IdChunk {
                start_line: start,
                end_line: end.saturating_sub(1),
                terms,
                len: (to - from) as u32,
            });
        }
        if end >= n {
            break;
        }
        start += STEP;
    }
    let mut terms = String::with_capacity(local.bytes.len());
    let mut ends = Vec::with_capacity(order.len());
    for id in &order {
        terms.push_str(local.term(*id));
        ends.push(terms.len() as u32);
    }
    Chunks {
        terms,
        ends,
        chunks: out,
    }
}

/// A file's terms while it is scanned: each term's lowercase bytes once, in one buffer, and
/// a table of ids looked up by those bytes' hash, so that a term seen before (nearly every
/// one) costs a hash and a compare, and neither a lowercase copy nor an allocation. Most
/// terms are at most 8 bytes: their slot's first word decides without reading the buffer.
#[derive(Default)]
struct LocalVocab {
    table: HashTable<Slot>,
    /// The terms, one after another (lowercase ASCII or the `char` path's words, so the
    /// cuts are always at character boundaries).
    bytes: String,
    /// Where each id's term ends in `bytes` (it starts where the previous one ends).
    ends: Vec<usize>,
    /// Each id's first 8 bytes, as in its slot.
    firsts: Vec<u64>,
}

struct Slot {
    hash: u64,
    /// The term's first 8 lowercase bytes, zero-padded.
    first: u64,
    len: u32,
    id: u32,
}

impl LocalVocab {
    fn term(&self, id: u32) -> &str {
        term_in(&self.bytes, &self.ends, id)
    }

    fn id(&mut self, t: RawTerm) -> u32 {
        let (raw, folded) = match t {
            RawTerm::Ascii(seg) => (seg, true),
            RawTerm::Lower(w) => (w.as_bytes(), false),
        };
        let (hash, first) = lower_hash(raw, folded);
        let len = raw.len() as u32;
        let Self {
            table,
            bytes,
            ends,
            firsts,
        } = self;
        // Terms in the buffer are lowercase, so an ASCII segment matches the one that
        // equals it ignoring case.
        let found = table.find(hash, |s| {
            s.first == first
                && s.len == len
                && (len <= 8 || {
                    let (t, r) = (&term_in(bytes, ends, s.id).as_bytes()[8..], &raw[8..]);
                    if folded {
                        t.eq_ignore_ascii_case(r)
                    } else {
                        t == r
                    }
                })
        });
        if let Some(s) = found {
            return s.id;
        }
        let id = ends.len() as u32;
        match t {
            RawTerm::Ascii(seg) => bytes.extend(seg.iter().map(|b| fold(*b) as char)),
            RawTerm::Lower(w) => bytes.push_str(w),
        }
        ends.push(bytes.len());
        firsts.push(first);
        let slot = Slot {
            hash,
            first,
            len,
            id,
        };
        table.insert_unique(hash, slot, |s| s.hash);
        id
    }

    /// The ids in their terms' order: by the first 8 bytes as one number (big-endian, so
    /// numbers compare as the bytes do), and by the rest only where those are equal.
    fn sorted(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.ends.len() as u32).collect();
        order.sort_unstable_by(|a, b| {
            let key = |id: u32| self.firsts[id as usize].swap_bytes();
            key(*a)
                .cmp(&key(*b))
                .then_with(|| self.term(*a).cmp(self.term(*b)))
        });
        order
    }
}

fn term_in<'a>(bytes: &'a str, ends: &[usize], id: u32) -> &'a str {
    let id = id as usize;
    &bytes[if id == 0 { 0 } else { ends[id - 1] }..ends[id]]
}

/// The hash of a term's lowercase bytes and their first 8 (zero-padded): `raw` lowercased
/// by [`fold`] when `folded`, so that an ASCII segment as written and its lowercase copy
/// come out alike.
fn lower_hash(raw: &[u8], folded: bool) -> (u64, u64) {
    let mask = if folded { 0x2020_2020_2020_2020u64 } else { 0 };
    let mut h = FxHasher::default();
    let mut words = raw.chunks_exact(8);
    let mut first = None;
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes")) | mask;
        first.get_or_insert(w);
        h.write_u64(w);
    }
    // The tail's bytes, folded one by one: the zero padding must stay zero on both paths.
    let mut last = [0u8; 8];
    for (d, b) in last.iter_mut().zip(words.remainder()) {
        *d = if folded { fold(*b) } else { *b };
    }
    let last = u64::from_le_bytes(last);
    // With the length, so that `ab` and `ab\0…` differ.
    h.write_u64(last ^ ((raw.len() as u64) << 56));
    (h.finish(), first.unwrap_or(last))
}

/// A chunk as the index keeps it: terms as ids into the index's vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdChunk {
    pub start_line: u32,
    pub end_line: u32,
    pub terms: Vec<(u32, u32)>,
    pub len: u32,
}

/// Where a chunk lives: a file id (the index's) and the chunk's position in that file.
pub type ChunkRef = (u32, u32);

/// BM25 over chunks. Removing a file only forgets its chunks (`live`) and lowers the
/// document frequencies; its postings are dropped lazily, in one pass once they outnumber
/// the live ones. So an edit costs in proportion to the edited file, not to how common its
/// words are (`self` or `return` have postings in every chunk). File ids are never reused,
/// so a stale posting can never be mistaken for a new one.
#[derive(Debug, Default)]
pub struct Bm25 {
    vocab: HashMap<String, u32>,
    terms: Vec<String>,
    postings: Vec<Vec<(ChunkRef, u32)>>,
    df: Vec<u32>,
    live: HashMap<ChunkRef, u32>,
    total_len: u64,
    live_postings: usize,
    stale_postings: usize,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;

impl Bm25 {
    /// The vocabulary, in id order (persisted with the chunks that refer to it).
    pub fn vocabulary(&self) -> &[String] {
        &self.terms
    }

    /// Starts from a persisted vocabulary.
    pub fn with_vocabulary(terms: Vec<String>) -> Self {
        let vocab = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let n = terms.len();
        Self {
            vocab,
            terms,
            postings: vec![Vec::new(); n],
            df: vec![0; n],
            ..Default::default()
        }
    }

    /// Rebuilds the postings of persisted files in one pass per table (a restart's work):
    /// the postings are sized by a counting pass first, so none of them grows by copies.
    pub fn restore<'a>(
        terms: Vec<String>,
        files: impl Iterator<Item = (u32, &'a [IdChunk])> + Clone,
    ) -> Self {
        let mut b = Self::with_vocabulary(terms);
        let n = b.terms.len();
        for (_, chunks) in files.clone() {
            for c in chunks {
                for (t, _) in &c.terms {
                    if let Some(df) = b.df.get_mut(*t as usize) {
                        *df += 1;
                    }
                }
            }
        }
        for (p, df) in b.postings.iter_mut().zip(&b.df) {
            p.reserve_exact(*df as usize);
        }
        let chunks: usize = files.clone().map(|(_, c)| c.len()).sum();
        b.live.reserve(chunks);
        for (file, chunks) in files {
            for (i, c) in chunks.iter().enumerate() {
                let key = (file, i as u32);
                for (t, count) in &c.terms {
                    if (*t as usize) < n {
                        b.postings[*t as usize].push((key, *count));
                    }
                }
                // As `add` counts them, so that `remove` balances.
                b.live_postings += c.terms.len();
                b.live.insert(key, c.len);
                b.total_len += c.len as u64;
            }
        }
        b
    }

    fn id(&mut self, term: &str) -> u32 {
        if let Some(id) = self.vocab.get(term) {
            return *id;
        }
        let id = self.terms.len() as u32;
        self.terms.push(term.to_string());
        self.vocab.insert(term.to_string(), id);
        self.postings.push(Vec::new());
        self.df.push(0);
        id
    }

    /// A file's windows with their terms as this index's ids.
    pub fn intern(&mut self, chunks: Chunks) -> Vec<IdChunk> {
        let ids: Vec<u32> = chunks.vocab().map(|t| self.id(t)).collect();
        let mut out = chunks.chunks;
        for c in &mut out {
            for (t, _) in &mut c.terms {
                *t = ids[*t as usize];
            }
        }
        out
    }

    pub fn add(&mut self, file: u32, chunks: &[IdChunk]) {
        for (i, c) in chunks.iter().enumerate() {
            let key = (file, i as u32);
            for (t, n) in &c.terms {
                let t = *t as usize;
                if t >= self.postings.len() {
                    // An id from a damaged file: ignore the term rather than panic.
                    continue;
                }
                self.postings[t].push((key, *n));
                self.df[t] += 1;
            }
            self.live_postings += c.terms.len();
            self.live.insert(key, c.len);
            self.total_len += c.len as u64;
        }
    }

    /// Forgets what `add(file, chunks)` added (the caller passes the same chunks).
    pub fn remove(&mut self, file: u32, chunks: &[IdChunk]) {
        for (i, c) in chunks.iter().enumerate() {
            let key = (file, i as u32);
            let Some(len) = self.live.remove(&key) else {
                continue;
            };
            self.total_len -= len as u64;
            for (t, _) in &c.terms {
                if let Some(df) = self.df.get_mut(*t as usize) {
                    *df -= 1;
                }
            }
            self.live_postings -= c.terms.len();
            self.stale_postings += c.terms.len();
        }
        if self.stale_postings > self.live_postings.max(1 << 16) {
            let live = &self.live;
            for p in &mut self.postings {
                p.retain(|(k, _)| live.contains_key(k));
            }
            self.stale_postings = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
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
        let n = self.live.len() as f32;
        if n == 0.0 {
            return Vec::new();
        }
        let avg = self.total_len as f32 / n;
        let mut scores: HashMap<ChunkRef, f32> = HashMap::default();
        for t in &q {
            let Some(&id) = self.vocab.get(t) else {
                continue;
            };
            let df = self.df[id as usize] as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for (key, tf) in &self.postings[id as usize] {
                let Some(len) = self.live.get(key) else {
                    continue; // stale
                };
                if skip(*key) {
                    continue;
                }
                let (len, tf) = (*len as f32, *tf as f32);
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
        let (ca, cb) = (idx.intern(chunks(a)), idx.intern(chunks(b)));
        idx.add(0, &ca);
        idx.add(1, &cb);
        let hits = idx.search("cfg = load_config(config_path)", 5, |_| false);
        assert_eq!(hits[0].0, (0, 0));
        idx.remove(0, &ca);
        let hits = idx.search("load_config", 5, |_| false);
        assert!(hits.is_empty(), "{hits:?}");
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn stale_postings_are_compacted_without_changing_results() {
        let text: String = (0..40).map(|i| format!("term_{i} other_{i}\n")).collect();
        let mut idx = Bm25::default();
        let c = idx.intern(chunks(&text));
        idx.add(0, &c);
        let before = idx.search("term_3 other_7", 3, |_| false);
        // Enough churn to pass the compaction threshold several times.
        for id in 1..2000 {
            idx.add(id, &c);
            idx.remove(id, &c);
        }
        assert!(idx.stale_postings < 1 << 17);
        assert_eq!(idx.search("term_3 other_7", 3, |_| false), before);
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn windows_overlap_and_cover_every_line() {
        let text: String = (0..95).map(|i| format!("line_{i} = value_{i}\n")).collect();
        let c = chunks(&text).chunks;
        assert_eq!(c.first().unwrap().start_line, 0);
        assert_eq!(c.last().unwrap().end_line, 94);
        for w in c.windows(2) {
            assert_eq!(w[1].start_line, w[0].start_line + STEP);
        }
    }

    #[test]
    fn a_window_counts_its_terms_by_the_files_sorted_vocabulary() {
        let c = chunks("fooBar foo\nbar_baz x1 42\n");
        assert_eq!(c.vocab().collect::<Vec<_>>(), ["bar", "baz", "foo", "x1"]);
        assert_eq!(c.chunks.len(), 1);
        assert_eq!(c.chunks[0].terms, [(0, 2), (1, 1), (2, 2), (3, 1)]);
        assert_eq!((c.chunks[0].len, c.chunks[0].end_line), (6, 1));
        assert_eq!(chunks(""), Chunks::default());
    }

    /// The scan's own table of terms gives what plain strings give: random lines of mixed
    /// case, digits, underscores and non-ASCII words, long and short, against a `BTreeMap`
    /// of each line's terms counted per window.
    #[test]
    fn windows_count_terms_as_plain_strings_do() {
        use rand::{Rng, SeedableRng};
        use std::collections::BTreeMap;
        let words = [
            "fooBar",
            "FOO",
            "foo",
            "x1",
            "HTTPServer",
            "über",
            "Über_map",
            "a_b_c",
            "42",
            "longIdentifierNameHere",
            "LONGIDENTIFIERNAMEHERE",
            "ab",
            "AB",
            "naïveParse",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let text: String = (0..rng.gen_range(0..90))
                .map(|_| {
                    let n = rng.gen_range(0..30);
                    let line: Vec<&str> = (0..n)
                        .map(|_| words[rng.gen_range(0..words.len())])
                        .collect();
                    line.join(if rng.gen_bool(0.5) { " " } else { "." }) + "\n"
                })
                .collect();
            let got = chunks(&text);
            let lines: Vec<Vec<String>> = text
                .lines()
                .map(|l| {
                    let mut t = Vec::new();
                    terms(l, &mut t);
                    t
                })
                .collect();
            let vocab: Vec<String> = lines
                .iter()
                .flatten()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(got.vocab().collect::<Vec<_>>(), vocab);
            for c in &got.chunks {
                let mut want: BTreeMap<u32, u32> = BTreeMap::new();
                for t in lines[c.start_line as usize..=c.end_line as usize]
                    .iter()
                    .flatten()
                {
                    let id = vocab.binary_search(t).unwrap() as u32;
                    *want.entry(id).or_default() += 1;
                }
                assert_eq!(c.terms, want.into_iter().collect::<Vec<_>>());
            }
        }
    }
}
