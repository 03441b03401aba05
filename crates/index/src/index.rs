//! The index of one repository: per-file symbols and chunks, the name table and the BM25
//! postings built from them, kept in step with the files one file at a time.

use crate::error::{IndexError, Result};
use crate::extract::{
    extract_tree, uses_of_tree, Definition, Extractor, FileSymbols, Import, Uses,
};
use crate::lang::Lang;
use crate::resolve::{self, FileSet};
use crate::similar::{chunks, Bm25, Chunks, IdChunk};
use crate::walk::{self, Skip, SkipCounts, WalkOptions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
// Names and ids are hashed half a million times on a restart; they come from the
// repository, so a fast non-cryptographic hash is the right trade (as in `similar`).
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tree_sitter::Tree;

/// What the index keeps of one file; this is also what is persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    pub id: u32,
    pub size: u64,
    pub mtime_ns: u64,
    pub hash: [u8; 16],
    pub symbols: FileSymbols,
    pub chunks: Vec<IdChunk>,
}

/// A definition and the file it is in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefHit {
    pub path: String,
    #[serde(flatten)]
    pub def: Definition,
}

/// A window of similar code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarHit {
    pub path: String,
    /// 0-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    pub score: f32,
}

/// An import and the repository files it resolves to (empty: outside the repository).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedImport {
    pub target: String,
    pub line: u32,
    pub files: Vec<String>,
}

/// Figures of the last refresh.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub files: usize,
    pub bytes: u64,
    pub definitions: usize,
    pub chunks: usize,
    /// Files read and parsed by this refresh (the others were unchanged).
    pub parsed: usize,
    pub removed: usize,
    pub seconds: f64,
    pub skipped: SkipCounts,
}

pub struct Index {
    root: PathBuf,
    opts: WalkOptions,
    files: BTreeMap<String, FileEntry>,
    by_id: HashMap<u32, String>,
    next_id: u32,
    /// Name → (file id, definition index): ids, not paths, so that loading half a million
    /// definitions does not copy a path for each.
    by_name: HashMap<String, Vec<(u32, u32)>>,
    bm25: Bm25,
    go_module: Option<String>,
    skipped: SkipCounts,
    /// The documents last given to `update_text`, most recent last.
    open: Vec<OpenDoc>,
}

/// An open document as last parsed: its uses serve `referenced_definitions`, its text and
/// tree the next edit's incremental parse.
struct OpenDoc {
    path: String,
    hash: [u8; 16],
    lang: Lang,
    text: String,
    tree: Tree,
    uses: Uses,
}

thread_local! {
    static EXTRACTOR: RefCell<Extractor> = RefCell::new(Extractor::new());
}

/// The content hash that tells a changed file from one only touched.
pub fn content_hash(bytes: &[u8]) -> [u8; 16] {
    let d = Sha256::digest(bytes);
    let mut h = [0u8; 16];
    h.copy_from_slice(&d[..16]);
    h
}

fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Parses one text into an entry (ids are assigned by the index).
fn analyse(lang: Lang, text: &str) -> (FileSymbols, Chunks) {
    let symbols = EXTRACTOR
        .with(|e| e.borrow_mut().extract(lang, text))
        .unwrap_or(FileSymbols {
            lang,
            definitions: Vec::new(),
            imports: Vec::new(),
        });
    (symbols, chunks(text))
}

fn uses_of(lang: Lang, text: &str) -> Uses {
    EXTRACTOR
        .with(|e| e.borrow_mut().extract_with_uses(lang, text))
        .map(|(_, u)| u)
        .unwrap_or_default()
}

/// Open documents whose text, tree and uses are kept (the ones being edited).
const OPEN_DOCS: usize = 16;

impl Index {
    /// An empty index of `root` (see `refresh` and `persist::load`).
    pub fn new(root: &Path, opts: WalkOptions) -> Result<Self> {
        let root = root.canonicalize().map_err(|source| IndexError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(IndexError::NotADirectory(root));
        }
        let go_module = std::fs::read_to_string(root.join("go.mod"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("module ").map(|m| m.trim().to_string()))
            });
        Ok(Self {
            root,
            opts,
            files: BTreeMap::new(),
            by_id: HashMap::default(),
            next_id: 0,
            by_name: HashMap::default(),
            bm25: Bm25::default(),
            go_module,
            skipped: SkipCounts::new(),
            open: Vec::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn entries(&self) -> &BTreeMap<String, FileEntry> {
        &self.files
    }

    pub(crate) fn vocabulary(&self) -> &[String] {
        self.bm25.vocabulary()
    }

    /// Rebuilds the derived tables from persisted entries.
    /// The two tables are independent, so they are built side by side.
    pub(crate) fn restore(&mut self, terms: Vec<String>, files: BTreeMap<String, FileEntry>) {
        let (bm25, by_name) = rayon::join(
            || Bm25::restore(terms, files.values().map(|e| (e.id, e.chunks.as_slice()))),
            || {
                let mut by_name: HashMap<String, Vec<(u32, u32)>> = HashMap::default();
                for e in files.values() {
                    for (i, d) in e.symbols.definitions.iter().enumerate() {
                        match by_name.get_mut(d.name.as_str()) {
                            Some(v) => v.push((e.id, i as u32)),
                            None => {
                                by_name.insert(d.name.clone(), vec![(e.id, i as u32)]);
                            }
                        }
                    }
                }
                by_name
            },
        );
        self.bm25 = bm25;
        self.by_name = by_name;
        self.by_id = files.iter().map(|(p, e)| (e.id, p.clone())).collect();
        self.next_id = files.values().map(|e| e.id + 1).max().unwrap_or(0);
        self.files = files;
    }

    fn insert(&mut self, path: String, entry: FileEntry) {
        self.next_id = self.next_id.max(entry.id + 1);
        for (i, d) in entry.symbols.definitions.iter().enumerate() {
            // Looked up by `&str` first: `entry` would copy the name just to look.
            match self.by_name.get_mut(d.name.as_str()) {
                Some(v) => v.push((entry.id, i as u32)),
                None => {
                    self.by_name
                        .insert(d.name.clone(), vec![(entry.id, i as u32)]);
                }
            }
        }
        self.bm25.add(entry.id, &entry.chunks);
        self.by_id.insert(entry.id, path.clone());
        self.files.insert(path, entry);
    }

    fn take(&mut self, path: &str) -> Option<FileEntry> {
        let entry = self.files.remove(path)?;
        for d in &entry.symbols.definitions {
            if let Some(v) = self.by_name.get_mut(&d.name) {
                v.retain(|(id, _)| *id != entry.id);
                if v.is_empty() {
                    self.by_name.remove(&d.name);
                }
            }
        }
        self.bm25.remove(entry.id, &entry.chunks);
        self.by_id.remove(&entry.id);
        Some(entry)
    }

    fn fresh_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Brings the index in line with the files on disk: new and changed files are parsed
    /// (in parallel), unchanged ones (same size and mtime, or same content) are kept,
    /// vanished ones removed.
    pub fn refresh(&mut self) -> Stats {
        let t0 = Instant::now();
        let candidates = walk::candidates(&self.root);
        let mut skipped = SkipCounts::new();
        let mut todo = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (rel, abs) in candidates {
            if Lang::from_path(&abs).is_none() {
                *skipped.entry(Skip::Unsupported).or_default() += 1;
                continue;
            }
            seen.insert(rel.clone());
            // What the workers compare with, copied out: the index changes while they run.
            let known = self.files.get(&rel).map(|e| Known {
                size: e.size,
                mtime_ns: e.mtime_ns,
                hash: e.hash,
            });
            todo.push((rel, abs, known));
        }
        let opts = self.opts.clone();
        let t_walk = t0.elapsed();
        // Stat, read, vet and parse on the pool; each result is filed here, in the walk's
        // order (so ids and tables come out the same on every run), while later files are
        // still being parsed.
        let mut parsed = 0;
        in_order(
            &todo,
            |(_, abs, known)| examine(abs, &opts, known.as_ref()),
            |i, outcome| {
                let rel = &todo[i].0;
                match outcome {
                    Outcome::Unchanged => {}
                    Outcome::Unstatable => {
                        *skipped.entry(Skip::Unreadable).or_default() += 1;
                    }
                    Outcome::Touched(mtime) => {
                        // Same content, new mtime: remember the mtime only.
                        if let Some(e) = self.files.get_mut(rel) {
                            e.mtime_ns = mtime;
                        }
                    }
                    Outcome::Parsed(p) => {
                        parsed += 1;
                        self.put(rel.clone(), p);
                    }
                    Outcome::Skipped(skip) => {
                        *skipped.entry(skip).or_default() += 1;
                        seen.remove(rel);
                    }
                }
            },
        );
        let t_file = t0.elapsed();
        // Where a refresh spends its time (`MOAT_LOG=moat_index=debug`): the walk comes
        // first; parsing and filing overlap.
        tracing::debug!(
            walk = ?t_walk,
            parse_and_file = ?(t_file - t_walk),
            "refresh phases"
        );
        let gone: Vec<String> = self
            .files
            .keys()
            .filter(|p| !seen.contains(*p))
            .cloned()
            .collect();
        for p in &gone {
            self.take(p);
        }
        self.skipped = skipped;
        let mut s = self.stats();
        s.parsed = parsed;
        s.removed = gone.len();
        s.seconds = t0.elapsed().as_secs_f64();
        s
    }

    fn put(&mut self, rel: String, p: Parsed) {
        self.take(&rel);
        // A fresh id even for a known file: its old postings die with the old id.
        let id = self.fresh_id();
        let entry = self.entry(id, p);
        self.insert(rel, entry);
    }

    /// The entry for a parsed file, its terms interned.
    fn entry(&mut self, id: u32, p: Parsed) -> FileEntry {
        FileEntry {
            id,
            size: p.size,
            mtime_ns: p.mtime_ns,
            hash: p.hash,
            symbols: p.symbols,
            chunks: self.bm25.intern(p.chunks),
        }
    }

    /// Re-reads one file (changed, created or deleted on disk). Returns whether it is
    /// indexed now.
    pub fn update_file(&mut self, path: &Path) -> bool {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        };
        let Some(rel) = walk::relative(&self.root, &abs) else {
            return false;
        };
        if !walk::is_candidate(&self.root, &abs) {
            // Deleted, or ignored (a build output, a vendored or secret file).
            self.take(&rel);
            return false;
        }
        let known = self.files.get(&rel).map(|e| e.hash);
        match read_and_parse(&abs, &self.opts, known.as_ref()) {
            Ok(Some(p)) => {
                self.put(rel, p);
                true
            }
            Ok(None) => true,
            Err(skip) => {
                tracing::debug!("{rel}: not indexed ({skip:?})");
                self.take(&rel);
                false
            }
        }
    }

    /// Indexes an open document's current (unsaved) text under its repository path.
    pub fn update_text(&mut self, rel: &str, lang: Lang, text: &str) {
        let h = content_hash(text.as_bytes());
        if self.files.get(rel).is_some_and(|e| e.hash == h) && self.open_uses(rel, &h).is_some() {
            return;
        }
        // The document's previous tree, when it is still in the same language.
        let old = self.open.iter().position(|d| d.path == rel);
        let previous = old
            .map(|i| &self.open[i])
            .filter(|d| d.lang == lang)
            .map(|d| (&d.tree, d.text.as_str()));
        let Some(tree) = EXTRACTOR.with(|e| e.borrow_mut().reparse(lang, text, previous)) else {
            return;
        };
        let symbols = extract_tree(lang, text, &tree);
        let uses = uses_of_tree(lang, text, &tree);
        if let Some(i) = old {
            self.open.remove(i);
        }
        if self.open.len() >= OPEN_DOCS {
            self.open.remove(0);
        }
        self.open.push(OpenDoc {
            path: rel.to_string(),
            hash: h,
            lang,
            text: text.to_string(),
            tree,
            uses,
        });
        if self.files.get(rel).is_some_and(|e| e.hash == h) {
            return;
        }
        let chunks = chunks(text);
        let (size, mtime) = self
            .files
            .get(rel)
            .map(|e| (e.size, e.mtime_ns))
            .unwrap_or((text.len() as u64, 0));
        self.put(
            rel.to_string(),
            Parsed {
                size,
                mtime_ns: mtime,
                hash: h,
                symbols,
                chunks,
            },
        );
    }

    pub fn remove_file(&mut self, rel: &str) -> bool {
        self.take(rel).is_some()
    }

    /// A rename keeps the parsed content (same text, new path).
    pub fn rename(&mut self, from: &str, to: &str) -> bool {
        match self.take(from) {
            Some(mut e) => {
                self.take(to);
                // Ids are never reused (see `Bm25`).
                e.id = self.fresh_id();
                self.insert(to.to_string(), e);
                true
            }
            None => false,
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            files: self.files.len(),
            bytes: self.files.values().map(|e| e.size).sum(),
            definitions: self.by_name.values().map(Vec::len).sum(),
            chunks: self.bm25.len(),
            skipped: self.skipped.clone(),
            ..Default::default()
        }
    }

    pub fn file(&self, rel: &str) -> Option<&FileSymbols> {
        self.files.get(rel).map(|e| &e.symbols)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    fn hit(&self, id: u32, i: u32) -> Option<DefHit> {
        let path = self.by_id.get(&id)?;
        let def = self.files.get(path)?.symbols.definitions.get(i as usize)?;
        Some(DefHit {
            path: path.to_string(),
            def: def.clone(),
        })
    }

    /// Definitions named `name`, or with the qualified name `Scope.name`.
    pub fn definitions(&self, name: &str) -> Vec<DefHit> {
        let (scope, simple) = match name.rsplit_once('.') {
            // A name with dots of its own (a C# namespace) is looked up whole first.
            Some(_) if self.by_name.contains_key(name) => (None, name),
            Some((s, n)) => (Some(s), n),
            None => (None, name),
        };
        let mut v: Vec<DefHit> = self
            .by_name
            .get(simple)
            .into_iter()
            .flatten()
            .filter_map(|(id, i)| self.hit(*id, *i))
            .filter(|h| {
                scope.is_none_or(|s| h.def.scope == s || h.def.scope.ends_with(&format!(".{s}")))
            })
            .collect();
        v.sort_by(|a, b| (&a.path, a.def.start_byte).cmp(&(&b.path, b.def.start_byte)));
        v
    }

    /// The definitions that lines `first..=last` (0-based) of a document refer to, given the
    /// document's current text: each identifier used there, looked up by name, excluding
    /// definitions inside that range of the same file. Ordered by first use.
    pub fn referenced_definitions(
        &self,
        rel: &str,
        lang: Lang,
        text: &str,
        first: u32,
        last: u32,
    ) -> Vec<DefHit> {
        let h = content_hash(text.as_bytes());
        let computed;
        let uses = match self.open_uses(rel, &h) {
            Some(u) => u,
            None => {
                computed = uses_of(lang, text);
                &computed
            }
        };
        let mut out = Vec::new();
        for name in uses.identifiers_in(first, last) {
            for h in self.definitions(name) {
                let inside = h.path == rel && h.def.start_line >= first && h.def.end_line <= last;
                if !inside {
                    out.push(h);
                }
            }
        }
        out
    }

    fn open_uses(&self, rel: &str, h: &[u8; 16]) -> Option<&Uses> {
        self.open
            .iter()
            .find(|d| d.path == rel && d.hash == *h)
            .map(|d| &d.uses)
    }

    /// The imports of a file and the repository files they resolve to.
    pub fn imports_of(&self, rel: &str) -> Vec<ResolvedImport> {
        let Some(e) = self.files.get(rel) else {
            return Vec::new();
        };
        e.symbols
            .imports
            .iter()
            .map(|Import { target, line }| ResolvedImport {
                target: target.clone(),
                line: *line,
                files: resolve::resolve(self, e.symbols.lang, rel, target),
            })
            .collect()
    }

    /// The `k` windows most similar to `text`, leaving out lines `exclude.1..=exclude.2` of
    /// file `exclude.0` (the code around the cursor itself).
    pub fn similar(
        &self,
        text: &str,
        k: usize,
        exclude: Option<(&str, u32, u32)>,
    ) -> Vec<SimilarHit> {
        let skip_id = exclude.and_then(|(p, _, _)| self.files.get(p).map(|e| e.id));
        let hits = self.bm25.search(text, k, |(file, chunk)| {
            let (Some(id), Some((path, first, last))) = (skip_id, exclude) else {
                return false;
            };
            if file != id {
                return false;
            }
            let c = &self.files[path].chunks[chunk as usize];
            c.start_line <= last && c.end_line >= first
        });
        hits.into_iter()
            .filter_map(|((file, chunk), score)| {
                let path = self.by_id.get(&file)?;
                let c = self.files.get(path)?.chunks.get(chunk as usize)?;
                Some(SimilarHit {
                    path: path.clone(),
                    start_line: c.start_line,
                    end_line: c.end_line,
                    score,
                })
            })
            .collect()
    }
}

impl FileSet for Index {
    fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    fn with_suffix(&self, suffix: &str) -> Vec<String> {
        let slashed = format!("/{suffix}");
        self.files
            .keys()
            .filter(|p| *p == suffix || p.ends_with(&slashed))
            .cloned()
            .collect()
    }

    fn in_dir_ending(&self, dir: &str) -> Vec<String> {
        let slashed = format!("/{dir}");
        self.files
            .keys()
            .filter(|p| {
                let d = p.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                d == dir || d.ends_with(&slashed)
            })
            .cloned()
            .collect()
    }

    fn in_dir(&self, dir: &str) -> Vec<String> {
        self.files
            .keys()
            .filter(|p| {
                let d = p.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                d == dir
            })
            .cloned()
            .collect()
    }

    fn go_module(&self) -> Option<String> {
        self.go_module.clone()
    }
}

struct Parsed {
    size: u64,
    mtime_ns: u64,
    hash: [u8; 16],
    symbols: FileSymbols,
    chunks: Chunks,
}

/// An indexed file's state as a refresh found it, for comparing with the disk.
struct Known {
    size: u64,
    mtime_ns: u64,
    hash: [u8; 16],
}

/// What a refresh learns of one candidate file.
enum Outcome {
    /// Same size and mtime as indexed.
    Unchanged,
    /// Its metadata could not be read: counted, and what the index has of it is kept.
    Unstatable,
    /// Same content under a new mtime.
    Touched(u64),
    Parsed(Parsed),
    Skipped(Skip),
}

fn examine(abs: &Path, opts: &WalkOptions, known: Option<&Known>) -> Outcome {
    let Ok(meta) = std::fs::metadata(abs) else {
        return Outcome::Unstatable;
    };
    if known.is_some_and(|k| k.size == meta.len() && k.mtime_ns == mtime_ns(&meta)) {
        return Outcome::Unchanged;
    }
    match read_and_parse(abs, opts, known.map(|k| &k.hash)) {
        Ok(Some(p)) => Outcome::Parsed(p),
        Ok(None) => Outcome::Touched(mtime_ns(&meta)),
        Err(skip) => Outcome::Skipped(skip),
    }
}

/// Results a worker hands over at once (see `in_order`).
const BATCH: usize = 8;

/// Runs `work` over `items` on the pool and hands each result to `file` on this thread,
/// in the items' order, soon after it and all before it are done (workers send a few at
/// a time): the filing overlaps the work instead of following it. Workers take the next
/// item from a counter, so results come nearly in order and few wait. Called from inside
/// the pool (where blocking this thread could starve the workers), it works first and
/// files afterwards.
fn in_order<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
    mut file: impl FnMut(usize, R),
) {
    if rayon::current_thread_index().is_some() {
        let results: Vec<R> = items.par_iter().map(&work).collect();
        for (i, r) in results.into_iter().enumerate() {
            file(i, r);
        }
        return;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    rayon::in_place_scope(|s| {
        for _ in 0..rayon::current_num_threads().min(items.len()) {
            let (tx, next, work) = (tx.clone(), &next, &work);
            s.spawn(move |_| {
                // Sent a few at a time: each message wakes the filing thread, which then
                // takes a core from a worker.
                let mut batch = Vec::with_capacity(BATCH);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    batch.push((i, work(&items[i])));
                    if batch.len() == BATCH && tx.send(std::mem::take(&mut batch)).is_err() {
                        return;
                    }
                }
                if !batch.is_empty() {
                    // The receiver outlives the workers; a failed send means it unwound.
                    let _ = tx.send(batch);
                }
            });
        }
        drop(tx);
        // Ends when every worker is done (and has dropped its sender).
        let mut pending = BTreeMap::new();
        let mut want = 0;
        for batch in rx {
            pending.extend(batch);
            while let Some(r) = pending.remove(&want) {
                file(want, r);
                want += 1;
            }
        }
    });
}

/// `Ok(None)`: the content hashes to `known` (nothing to parse).
fn read_and_parse(
    abs: &Path,
    opts: &WalkOptions,
    known: Option<&[u8; 16]>,
) -> std::result::Result<Option<Parsed>, Skip> {
    let (lang, text) = walk::read_source(abs, opts)?;
    let h = content_hash(text.as_bytes());
    if known == Some(&h) {
        return Ok(None);
    }
    let meta = std::fs::metadata(abs).map_err(|_| Skip::Unreadable)?;
    let (symbols, chunks) = analyse(lang, &text);
    Ok(Some(Parsed {
        size: text.len() as u64,
        mtime_ns: mtime_ns(&meta),
        hash: h,
        symbols,
        chunks,
    }))
}

#[cfg(test)]
mod tests {
    use super::in_order;

    /// Every result is filed once, in the items' order, however unevenly the work takes,
    /// from outside the pool (the pipeline) and from inside it (the fallback).
    #[test]
    fn results_are_filed_in_order() {
        let items: Vec<u64> = (0..500).collect();
        let work = |i: &u64| {
            // Uneven work, so that results arrive out of order.
            let spin = (i * 7919) % 50_000;
            (0..spin).fold(*i, |a, b| std::hint::black_box(a ^ b)) ^ (0..spin).fold(0, |a, b| a ^ b)
        };
        let mut filed = Vec::new();
        in_order(&items, work, |i, r| filed.push((i, r)));
        let want: Vec<(usize, u64)> = items.iter().map(|i| (*i as usize, *i)).collect();
        assert_eq!(filed, want);
        let inside = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut filed = Vec::new();
        inside.install(|| in_order(&items, work, |i, r| filed.push((i, r))));
        assert_eq!(filed, want);
        let mut none = 0;
        in_order(&[] as &[u64], work, |_, _| none += 1);
        assert_eq!(none, 0);
    }
}
