//! Candidate pieces of repository context, each source a ranked list: definitions the code
//! near the cursor uses, summaries of the files it imports, similar code elsewhere, and the
//! user's recent edits.

use crate::lines;
use moat_index::{DefHit, Index, Lang};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A definition used near the cursor.
    Definition,
    /// The top-level definitions of a file the document imports.
    Import,
    /// Code in another file most like the code before the cursor.
    Similar,
    /// A region the user edited recently.
    RecentEdit,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Definition => "definition",
            Self::Import => "import",
            Self::Similar => "similar",
            Self::RecentEdit => "recent_edit",
        }
    }
}

/// Lines of a file to show, and why.
#[derive(Debug, Clone)]
pub struct Snippet {
    pub kind: SourceKind,
    pub path: String,
    /// The 0-based lines shown, ascending (not always contiguous: a summary skips bodies).
    pub lines: Vec<u32>,
    pub text: String,
    /// The whole file the lines come from (`None` for an edit's own text), so that several
    /// snippets of one file can be shown as one.
    pub file: Option<Rc<str>>,
}

impl Snippet {
    pub fn first(&self) -> u32 {
        self.lines.first().copied().unwrap_or(0)
    }

    pub fn last(&self) -> u32 {
        self.lines.last().copied().unwrap_or(0)
    }

    pub fn overlaps(&self, other: &Snippet) -> bool {
        self.path == other.path
            && self.first() <= other.last()
            && other.first() <= self.last()
            && self
                .lines
                .iter()
                .any(|l| other.lines.binary_search(l).is_ok())
    }

    /// The lines of this snippet that `other`, a snippet of the same file, does not show,
    /// as a snippet of their own: what fusing an overlapping snippet into `other` leaves.
    /// Without it a file summary sharing one line with a definition from that file shrank
    /// to the definition; joined into one, the two outgrew the context's share and neither
    /// was shown (session 13).
    pub fn without(&self, other: &Snippet) -> Option<Snippet> {
        let file = self.file.as_ref()?;
        let lines: Vec<u32> = self
            .lines
            .iter()
            .copied()
            .filter(|l| other.lines.binary_search(l).is_err())
            .collect();
        (!lines.is_empty()).then(|| Snippet {
            kind: self.kind,
            path: self.path.clone(),
            text: show(file, &lines),
            lines,
            file: Some(file.clone()),
        })
    }
}

/// A definition whose body is at most this many lines is shown whole.
const WHOLE_DEF_LINES: u32 = 15;
/// Longest summary of a type or a file, in lines.
const SUMMARY_LINES: usize = 30;
/// Longest file summary, in characters: 30 of axios's one-line definitions took ~600
/// tokens, the whole share of repository context, and such a summary was never shown.
const SUMMARY_CHARS: usize = 1_500;
/// Hits kept per name (a common name like `get` is defined everywhere).
const PER_NAME: usize = 2;
/// Entries per ranked list.
const LIST: usize = 16;

/// Texts of the repository's files, read once per request; the document itself comes from
/// the editor (unsaved text), not from disk.
pub struct Files<'a> {
    index: &'a Index,
    current: (&'a str, &'a str),
    cache: RefCell<HashMap<String, Option<Rc<str>>>>,
}

impl<'a> Files<'a> {
    pub fn new(index: &'a Index, path: &'a str, text: &'a str) -> Self {
        Self {
            index,
            current: (path, text),
            cache: RefCell::new(HashMap::new()),
        }
    }

    pub fn text(&self, path: &str) -> Option<Rc<str>> {
        if path == self.current.0 {
            return Some(self.current.1.into());
        }
        self.cache
            .borrow_mut()
            .entry(path.to_string())
            .or_insert_with(|| {
                // A file that vanished or is not text since it was indexed: no snippet.
                std::fs::read_to_string(self.index.root().join(path))
                    .ok()
                    .map(Into::into)
            })
            .clone()
    }
}

/// The lines `lines` of `text`, with `...` where lines are skipped.
pub fn show(text: &str, lines: &[u32]) -> String {
    let all: Vec<&str> = text.split('\n').collect();
    let mut out = String::new();
    let mut prev: Option<u32> = None;
    for &l in lines {
        let Some(line) = all.get(l as usize) else {
            continue;
        };
        if prev.is_some_and(|p| p + 1 != l) {
            out.push_str(&" ".repeat(lines::indent(line)));
            out.push_str("...\n");
        }
        out.push_str(line.trim_end_matches('\r'));
        out.push('\n');
        prev = Some(l);
    }
    out
}

/// The lines that show a definition's signature (decorators and attributes included).
fn signature_lines(d: &moat_index::Definition) -> Vec<u32> {
    let n = d.signature.lines().count().max(1) as u32;
    (d.start_line..(d.start_line + n).min(d.end_line + 1)).collect()
}

/// The lines of the doc comment right above a definition, found by the doc's line count.
fn doc_lines_above(d: &moat_index::Definition, text: &str) -> Vec<u32> {
    let Some(doc) = &d.doc else {
        return Vec::new();
    };
    let n = doc.lines().count() as u32;
    let above: Vec<u32> = (d.start_line.saturating_sub(n)..d.start_line).collect();
    // A docstring inside the body is not above; check that those lines are comments.
    let all: Vec<&str> = text.split('\n').collect();
    let first_doc = doc.lines().next().unwrap_or("").trim();
    match above.first() {
        Some(&l) if all.get(l as usize).is_some_and(|t| t.trim() == first_doc) => above,
        _ => Vec::new(),
    }
}

/// How a definition is shown: whole when short; otherwise its doc and signature, and for a
/// type the signatures of its members.
pub fn definition(files: &Files, hit: &DefHit) -> Option<Snippet> {
    let text = files.text(&hit.path)?;
    let d = &hit.def;
    let mut lines = doc_lines_above(d, &text);
    if d.end_line - d.start_line < WHOLE_DEF_LINES {
        lines.extend(d.start_line..=d.end_line);
    } else {
        lines.extend(signature_lines(d));
        if d.kind.holds_members() {
            let scope = d.qualified_name();
            if let Some(f) = files.index.file(&hit.path) {
                for m in f.definitions.iter().filter(|m| m.scope == scope) {
                    lines.extend(signature_lines(m));
                    if lines.len() >= SUMMARY_LINES {
                        break;
                    }
                }
            }
        }
    }
    lines.sort_unstable();
    lines.dedup();
    Some(Snippet {
        kind: SourceKind::Definition,
        path: hit.path.clone(),
        text: show(&text, &lines),
        lines,
        file: Some(text),
    })
}

/// Definitions used near the cursor: those used on the few lines up to the cursor first,
/// then those of the wider region, then those the file imports by name (the ones not used
/// yet first); a name defined in many places contributes the hits in files the document
/// imports or that sit beside it.
pub fn definitions(
    files: &Files,
    index: &Index,
    path: &str,
    lang: Lang,
    text: &str,
    cursor_line: u32,
    typing: &str,
) -> Vec<Snippet> {
    let imported: HashSet<String> = index
        .imports_of(path)
        .into_iter()
        .flat_map(|i| i.files)
        .collect();
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let same_dir = |h: &DefHit| h.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("") == dir;
    let near = |h: &DefHit| (!imported.contains(&h.path), !same_dir(h), h.path != path);
    // Where a directory is a namespace, its files see each other's names unimported.
    let dir_is_namespace = matches!(
        lang,
        Lang::Go | Lang::Java | Lang::Kotlin | Lang::CSharp | Lang::Php
    );
    // A definition the document can mean: in the document itself, in a file it imports,
    // in its namespace, or, for a member (`x.name`: a method called on an object is never
    // imported by name), the only one of that name in the repository. Any other is another
    // thing of the same name, and showing it misleads: `DEFAULT = 0` of a colour enum shown
    // above `DEFAULT = Theme(…)` made the model copy names from the wrong file.
    let reachable = |h: &DefHit, homonyms: usize, member: bool| {
        h.path == path
            || imported.contains(&h.path)
            || (dir_is_namespace && same_dir(h))
            || (member && homonyms == 1)
    };
    let mut out: Vec<Snippet> = Vec::new();
    let mut seen: HashSet<(String, u32)> = HashSet::new();
    let mut regions = vec![
        (cursor_line.saturating_sub(6), cursor_line, false),
        (cursor_line.saturating_sub(40), cursor_line + 3, false),
    ];
    // At the first use of an imported function or class (where CrossCodeEval cuts its
    // holes) its definition is what the model cannot guess, and the import is usually far
    // above the cursor, out of the regions above.
    regions.extend(import_region(index, path, text, cursor_line).map(|(f, l)| (f, l, true)));
    for (first, last, imports) in regions {
        // The word at the cursor is left out: while it is typed it is a different name at
        // every keystroke, and so would be the context at the head of the prompt, which the
        // engine could then not reuse from its cache.
        let hits: Vec<DefHit> = index
            .referenced_definitions(path, lang, text, first, last)
            .into_iter()
            .filter(|h| h.def.name != typing)
            .collect();
        let mut by_name: Vec<(String, Vec<DefHit>)> = Vec::new();
        for h in hits {
            match by_name.iter_mut().find(|(n, _)| *n == h.def.name) {
                Some((_, v)) => v.push(h),
                None => by_name.push((h.def.name.clone(), vec![h])),
            }
        }
        let region = lines::between(text, first, last);
        if imports {
            // Names imported but not used yet are the ones the code is about to use.
            let since = lines::between(text, last + 1, cursor_line);
            by_name.sort_by_key(|(name, _)| lines::has_word(since, name));
        }
        for (name, mut group) in by_name {
            let homonyms = group.len();
            let member = used_as_member(region, &name);
            group.retain(|h| reachable(h, homonyms, member));
            group.sort_by_key(|h| near(h));
            for h in group.into_iter().take(PER_NAME) {
                if !seen.insert((h.path.clone(), h.def.start_line)) {
                    continue;
                }
                if let Some(s) = definition(files, &h) {
                    out.push(s);
                }
            }
        }
        if out.len() >= LIST {
            break;
        }
    }
    out.truncate(LIST);
    out
}

/// Lines `first..=last` holding the file's imports before `cursor_line`, the last statement
/// to where its brackets close (`from x import (` … `)`).
fn import_region(index: &Index, path: &str, text: &str, cursor_line: u32) -> Option<(u32, u32)> {
    let at: Vec<u32> = index
        .imports_of(path)
        .iter()
        .map(|i| i.line)
        .filter(|l| *l < cursor_line)
        .collect();
    let first = *at.iter().min()?;
    let mut last = *at.iter().max()?;
    let mut depth = 0i32;
    for (l, line) in text.split('\n').enumerate().skip(last as usize).take(30) {
        if l as u32 >= cursor_line {
            break;
        }
        last = l as u32;
        for c in line.chars() {
            match c {
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' => depth -= 1,
                _ => {}
            }
        }
        if depth <= 0 {
            break;
        }
    }
    Some((first, last))
}

/// Whether `name` follows `.`, `->` or `::` somewhere in `text` (a member, not a name in
/// scope).
fn used_as_member(text: &str, name: &str) -> bool {
    let is_word = lines::is_word;
    text.match_indices(name).any(|(i, _)| {
        let before = &text[..i];
        let after = text[i + name.len()..].chars().next();
        after.is_none_or(|c| !is_word(c))
            && (before.ends_with('.') || before.ends_with("->") || before.ends_with("::"))
    })
}

/// The object a member is being written on: `utils` in `utils.isD` or `utils.`.
pub fn receiver(before: &str) -> Option<&str> {
    member_access(before).map(|(_, name)| name)
}

/// `before` split at the object a member is being written on: the text ahead of it and
/// the object (`("    if (", "utils")` for `    if (utils.isD`).
fn member_access(before: &str) -> Option<(&str, &str)> {
    let is_word = lines::is_word;
    let t = before.trim_end_matches(is_word);
    let t = t
        .strip_suffix('.')
        .or_else(|| t.strip_suffix("->"))
        .or_else(|| t.strip_suffix("::"))?;
    let ahead = t.trim_end_matches(is_word);
    let name = &t[ahead.len()..];
    name.starts_with(|c: char| !c.is_ascii_digit() && is_word(c))
        .then_some((ahead, name))
}

/// Whether an import line binds `name` (makes it a name of the document) rather than
/// naming a module on the way: `utils` in `import utils from '../utils.js'`, `import util
/// as utils` or `use crate::utils;`, not `console` in `from .console import Console`
/// (rich's `self.console.` then brought console.py's summary first).
fn import_binds(line: &str, name: &str) -> bool {
    line.match_indices(name).any(|(i, _)| {
        let (before, after) = (&line[..i], &line[i + name.len()..]);
        let prev = before.chars().next_back();
        let next = after.chars().next();
        !prev.is_some_and(|c| lines::is_word(c) || ".'\"/\\@".contains(c))
            && !next.is_some_and(|c| lines::is_word(c) || ".'\"/".contains(c))
            && !after.starts_with("::")
            && !before.trim_end().ends_with("from")
    })
}

/// The members written on `receiver` in `text` (`isString` for `utils.isString`), read
/// in one pass.
fn members_used<'t>(text: &'t str, receiver: &str) -> HashSet<&'t str> {
    text.match_indices(receiver)
        .filter(|(i, _)| !text[..*i].chars().next_back().is_some_and(lines::is_word))
        .filter_map(|(i, _)| {
            let rest = text[i + receiver.len()..].strip_prefix('.')?;
            Some(&rest[..rest.len() - rest.trim_start_matches(lines::is_word).len()])
        })
        .collect()
}

/// The lines of a file summary: the signatures of `defs` in the order given, until the
/// summary holds [`SUMMARY_LINES`] lines or [`SUMMARY_CHARS`] characters.
fn summary_lines<'d>(
    defs: impl IntoIterator<Item = &'d moat_index::Definition>,
    file_text: &str,
) -> Vec<u32> {
    let all: Vec<&str> = file_text.split('\n').collect();
    let mut lines: Vec<u32> = Vec::new();
    let mut chars = 0;
    for d in defs {
        let sig = signature_lines(d);
        let len: usize = sig
            .iter()
            .filter_map(|&l| all.get(l as usize))
            .map(|t| t.len() + 1)
            .sum();
        if !lines.is_empty() && chars + len > SUMMARY_CHARS {
            break;
        }
        chars += len;
        lines.extend(sig);
        if lines.len() >= SUMMARY_LINES {
            break;
        }
    }
    lines.sort_unstable();
    lines.dedup();
    lines
}

/// A file summary of `lines`, unless empty.
fn summary(path: String, lines: Vec<u32>, file_text: Rc<str>) -> Option<Snippet> {
    (!lines.is_empty()).then(|| Snippet {
        kind: SourceKind::Import,
        text: show(&file_text, &lines),
        path,
        lines,
        file: Some(file_text),
    })
}

/// The repository file whose module the cursor (after `before`) is writing a member of
/// (`utils.` or `utils.is`, `utils` bound by one of the document's import lines),
/// summarized by the members that start with what is typed after the dot, then those not
/// yet written on the receiver: `utils.` at the first use of `utils.isDate` asks for a
/// name the document never showed, and a module like axios's `utils.js` defines a
/// hundred, beyond one summary.
pub fn members(
    files: &Files,
    index: &Index,
    path: &str,
    text: &str,
    before: &str,
) -> Option<Snippet> {
    let (ahead, receiver) = member_access(before)?;
    // `self.console.` is an attribute's member, whatever the imports say.
    if ahead.ends_with('.') || ahead.ends_with("->") {
        return None;
    }
    let typed = &before[before.trim_end_matches(lines::is_word).len()..];
    let doc_lines: Vec<&str> = text.split('\n').collect();
    let imp = index.imports_of(path).into_iter().find(|imp| {
        doc_lines
            .get(imp.line as usize)
            .is_some_and(|l| import_binds(l, receiver))
    })?;
    let f = imp.files.into_iter().find(|f| f != path)?;
    let (syms, file_text) = (index.file(&f)?, files.text(&f)?);
    let used = members_used(text, receiver);
    // A class imported by name (`from .style import Style`, then `Style.`) is summarized
    // by its own members, under its signature; a module by its top-level definitions.
    let class = syms
        .definitions
        .iter()
        .find(|d| d.scope.is_empty() && d.name == receiver && d.kind.holds_members());
    let scope = class.map_or("", |c| c.name.as_str());
    let mut defs: Vec<&moat_index::Definition> = syms
        .definitions
        .iter()
        .filter(|d| d.scope == scope)
        .collect();
    defs.sort_by_key(|d| (!d.name.starts_with(typed), used.contains(d.name.as_str())));
    let lines = summary_lines(class.into_iter().chain(defs), &file_text);
    summary(f, lines, file_text)
}

/// A summary of each repository file the document (`text`) imports, but `skip` (the one
/// [`members`] shows): its top-level signatures.
pub fn imports(files: &Files, index: &Index, path: &str, skip: Option<&str>) -> Vec<Snippet> {
    let mut out = Vec::new();
    let mut seen: HashSet<String> = skip.into_iter().map(String::from).collect();
    seen.insert(path.to_string());
    for imp in index.imports_of(path) {
        for f in imp.files {
            if !seen.insert(f.clone()) {
                continue;
            }
            let (Some(syms), Some(file_text)) = (index.file(&f), files.text(&f)) else {
                continue;
            };
            let defs = syms.definitions.iter().filter(|d| d.scope.is_empty());
            let lines = summary_lines(defs, &file_text);
            out.extend(summary(f, lines, file_text));
            if out.len() >= LIST {
                return out;
            }
        }
    }
    out
}

/// Lines of query text for similar code: the code just before the cursor.
const QUERY_LINES: usize = 12;
/// Most lines shown of one similar window.
const SIMILAR_LINES: u32 = 30;

/// Least Jaccard similarity (over identifier sets) between the query lines and a window
/// for the window to be shown. BM25 ranks any window that shares a rare word; below this
/// the window is another file's unrelated code, which the small model copies from.
pub const MIN_SIMILARITY: f32 = 0.3;

/// The identifiers of the code lines of `text`, as a set. Comment and docstring lines are
/// left out: their English words (`the`, `Returns`, `None`) made any two documented
/// functions look alike.
fn words(text: &str) -> HashSet<&str> {
    let mut out = HashSet::new();
    let mut in_doc: Option<&str> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(q) = in_doc {
            if t.contains(q) {
                in_doc = None;
            }
            continue;
        }
        if let Some(q) = ["\"\"\"", "'''"].into_iter().find(|q| t.starts_with(q)) {
            // A docstring opening; it ends on this line when the quote comes back.
            if !t[3..].contains(q) {
                in_doc = Some(q);
            }
            continue;
        }
        if ["#", "//", "/*", "*"].iter().any(|m| t.starts_with(m)) {
            continue;
        }
        out.extend(
            t.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| w.len() > 1 && !w.starts_with(|c: char| c.is_ascii_digit())),
        );
    }
    out
}

fn jaccard(a: &HashSet<&str>, b: &HashSet<&str>) -> f32 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f32 / union as f32
}

/// Windows of other files most similar to the lines before the cursor line (not the line
/// being typed, for the reason `definitions` gives).
pub fn similar(files: &Files, index: &Index, path: &str, prefix: &str) -> Vec<Snippet> {
    let prefix = &prefix[..prefix.rfind('\n').map_or(0, |i| i + 1)];
    let start = prefix
        .rmatch_indices('\n')
        .nth(QUERY_LINES)
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    let query = &prefix[start..];
    let query_lines = query.lines().count().max(1) as u32;
    let query_words = words(query);
    let mut seen: HashSet<(String, u32)> = HashSet::new();
    index
        .similar(query, LIST, Some((path, 0, u32::MAX)))
        .into_iter()
        .filter(|h| h.path != path)
        .filter_map(|h| {
            let text = files.text(&h.path)?;
            let all: Vec<&str> = text.split('\n').collect();
            let (first, score) =
                best_window(&all, &query_words, query_lines, h.start_line, h.end_line);
            if score < MIN_SIMILARITY || !seen.insert((h.path.clone(), first)) {
                return None;
            }
            // The matched lines and what follows them: the part the model can use.
            let last = (first + query_lines + CONTINUATION - 1)
                .min(first + SIMILAR_LINES - 1)
                .min(all.len().saturating_sub(1) as u32);
            let lines: Vec<u32> = (first..=last).collect();
            Some(Snippet {
                kind: SourceKind::Similar,
                text: show(&text, &lines),
                path: h.path,
                lines,
                file: Some(text),
            })
        })
        .collect()
}

/// Lines shown after the window that matched the query.
const CONTINUATION: u32 = 8;

/// The window of `n` lines inside `start..=end` most like the query's words (Jaccard over
/// identifier sets): its first line and its similarity.
fn best_window(all: &[&str], q: &HashSet<&str>, n: u32, start: u32, end: u32) -> (u32, f32) {
    let end = end.min(all.len().saturating_sub(1) as u32);
    if start > end {
        return (start, 0.0);
    }
    // Each line's words once; a window is the union of its lines'. Read line by line, the
    // middle lines of a docstring count as code here (the query is read whole). A chunk
    // past the end of a file changed since it was indexed has no window (`start > end`).
    let per_line: Vec<HashSet<&str>> = all[start as usize..=end as usize]
        .iter()
        .map(|l| words(l))
        .collect();
    let mut best = (start, 0.0f32);
    let last_start = end.saturating_sub(n - 1).max(start);
    for first in start..=last_start {
        let last = (first + n - 1).min(end);
        let mut w: HashSet<&str> = HashSet::new();
        for line in &per_line[(first - start) as usize..=(last - start) as usize] {
            w.extend(line.iter().copied());
        }
        let j = jaccard(q, &w);
        if j > best.1 {
            best = (first, j);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlapping_snippet_leaves_the_lines_the_other_does_not_show() {
        let file: Rc<str> = "a\nb\nc\nd\ne\n".into();
        let snippet = |lines: Vec<u32>| Snippet {
            kind: SourceKind::Import,
            path: "m.py".into(),
            text: show(&file, &lines),
            lines,
            file: Some(file.clone()),
        };
        let summary = snippet(vec![0, 2, 4]);
        let definition = snippet(vec![1, 2]);
        assert!(summary.overlaps(&definition));
        let rest = summary.without(&definition).unwrap();
        assert_eq!(rest.lines, [0, 4]);
        assert_eq!(rest.text, "a\n...\ne\n");
        assert!(definition.without(&snippet(vec![1, 2, 3])).is_none());
    }

    #[test]
    fn an_import_binds_the_names_it_brings_not_the_modules_on_the_way() {
        assert!(import_binds("import utils from '../utils.js';", "utils"));
        assert!(import_binds("import util as utils", "utils"));
        assert!(import_binds("from . import utils", "utils"));
        assert!(import_binds("use crate::utils;", "utils"));
        assert!(import_binds("import * as utils from './utils'", "utils"));
        assert!(!import_binds("from .console import Console", "console"));
        assert!(!import_binds("from rich.console import Console", "console"));
        assert!(!import_binds("from console import Console", "console"));
        assert!(!import_binds("import Foo from './utils/foo.js'", "utils"));
        assert!(!import_binds("use crate::utils::Thing;", "utils"));
    }

    #[test]
    fn the_receiver_is_the_word_before_the_member_being_written() {
        assert_eq!(receiver("    if (utils."), Some("utils"));
        assert_eq!(receiver("    if (utils.isD"), Some("utils"));
        assert_eq!(receiver("$this->repo->fin"), Some("repo"));
        assert_eq!(receiver("let x = crate::pay::"), Some("pay"));
        assert_eq!(receiver("    total = 1.5"), None);
        assert_eq!(receiver("    value = compute("), None);
        assert_eq!(receiver("f()."), None);
    }
}
