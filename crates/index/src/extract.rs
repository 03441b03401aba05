//! One file's text → its definitions, imports and identifier uses, driven by the language's
//! query (`queries/*.scm`). Nothing here matches node kinds by hand except the few generic
//! rules that every language shares (comments before a definition are its doc; a string
//! first in a body is a docstring).

use crate::lang::Lang;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use streaming_iterator::StreamingIterator;
use tree_sitter::{InputEdit, Node, Parser, Point, QueryCursor, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DefKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Interface,
    Type,
    Constant,
    Field,
    Module,
}

impl DefKind {
    fn from_capture(s: &str) -> Option<Self> {
        Some(match s {
            "function" => Self::Function,
            "method" => Self::Method,
            "class" => Self::Class,
            "struct" => Self::Struct,
            "enum" => Self::Enum,
            "interface" => Self::Interface,
            "type" => Self::Type,
            "constant" => Self::Constant,
            "field" => Self::Field,
            "module" => Self::Module,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Function => "function",
            Self::Method => "method",
            Self::Class => "class",
            Self::Struct => "struct",
            Self::Enum => "enum",
            Self::Interface => "interface",
            Self::Type => "type",
            Self::Constant => "constant",
            Self::Field => "field",
            Self::Module => "module",
        }
    }

    /// Kinds whose members are methods and fields.
    pub fn holds_members(self) -> bool {
        matches!(
            self,
            Self::Class | Self::Struct | Self::Enum | Self::Interface
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    pub kind: DefKind,
    /// Enclosing definitions, outermost first, joined with `.` (`Outer.Inner`); empty at the
    /// top level.
    pub scope: String,
    /// The definition without its body (the first line for definitions without one).
    pub signature: String,
    pub doc: Option<String>,
    pub start_byte: usize,
    pub end_byte: usize,
    /// 0-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
}

impl Definition {
    /// `Scope.name`, or the name at the top level.
    pub fn qualified_name(&self) -> String {
        if self.scope.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.scope, self.name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// As written: a module path, a file path or a package name, without quotes.
    pub target: String,
    pub line: u32,
}

/// What one file contributes to the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSymbols {
    pub lang: Lang,
    pub definitions: Vec<Definition>,
    pub imports: Vec<Import>,
}

/// The identifier uses of one text, by line. Computed on demand for the document being
/// edited, never for the whole repository: only the code near a cursor is asked what it
/// refers to, and the bulk index is faster and smaller without them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Uses {
    /// The distinct identifiers of the file; `uses` points into it.
    pub identifiers: Vec<String>,
    /// `(line, identifier)` for every identifier use, sorted, without repeats per line.
    pub uses: Vec<(u32, u32)>,
}

impl Uses {
    /// Identifiers used on lines `first..=last` (0-based), each once.
    pub fn identifiers_in(&self, first: u32, last: u32) -> Vec<&str> {
        let start = self.uses.partition_point(|(l, _)| *l < first);
        let mut seen = std::collections::HashSet::new();
        self.uses[start..]
            .iter()
            .take_while(|(l, _)| *l <= last)
            .filter(|(_, i)| seen.insert(*i))
            .map(|(_, i)| self.identifiers[*i as usize].as_str())
            .collect()
    }
}

/// Parses with a reusable parser per language (tree-sitter parsers are cheap to keep).
pub struct Extractor {
    parsers: HashMap<Lang, Parser>,
}

impl Default for Extractor {
    fn default() -> Self {
        Self::new()
    }
}

/// Signatures and docs longer than this are cut: they are prompt material, not archives.
const MAX_SIGNATURE: usize = 400;
const MAX_DOC: usize = 1000;

impl Extractor {
    pub fn new() -> Self {
        Self {
            parsers: HashMap::new(),
        }
    }

    /// The syntax tree of `text`; `None` only if tree-sitter gives up (it recovers from
    /// syntax errors, so this is rare).
    pub fn parse(&mut self, lang: Lang, text: &str) -> Option<Tree> {
        self.reparse(lang, text, None)
    }

    /// The syntax tree of `text`, reusing `old`: the tree of the text `text` was edited
    /// from (in `lang`). tree-sitter then re-parses only around the edit, so a keystroke in
    /// a long open document costs a fraction of a whole parse.
    pub fn reparse(&mut self, lang: Lang, text: &str, old: Option<(&Tree, &str)>) -> Option<Tree> {
        let parser = self.parsers.entry(lang).or_insert_with(|| {
            let mut p = Parser::new();
            p.set_language(&lang.grammar())
                .expect("grammar ABI is checked by the query test");
            p
        });
        let edited = old.map(|(tree, old_text)| {
            let mut tree = tree.clone();
            tree.edit(&edit_between(old_text, text));
            tree
        });
        parser.parse(text, edited.as_ref())
    }

    pub fn extract(&mut self, lang: Lang, text: &str) -> Option<FileSymbols> {
        let tree = self.parse(lang, text)?;
        Some(extract_tree(lang, text, &tree))
    }

    /// Symbols and identifier uses from one parse.
    pub fn extract_with_uses(&mut self, lang: Lang, text: &str) -> Option<(FileSymbols, Uses)> {
        let tree = self.parse(lang, text)?;
        Some((
            extract_tree(lang, text, &tree),
            uses_of_tree(lang, text, &tree),
        ))
    }
}

/// The one edit that turns `old` into `new`: everything between the bytes they share at
/// the start and at the end is replaced. An editor's keystroke or paste is exactly that, and
/// a wider span than the real change only costs tree-sitter some re-parsing, never a wrong
/// tree.
pub fn edit_between(old: &str, new: &str) -> InputEdit {
    let (a, b) = (old.as_bytes(), new.as_bytes());
    let start = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - start;
    let tail = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    InputEdit {
        start_byte: start,
        old_end_byte: a.len() - tail,
        new_end_byte: b.len() - tail,
        start_position: point_at(a, start),
        old_end_position: point_at(a, a.len() - tail),
        new_end_position: point_at(b, b.len() - tail),
    }
}

/// Row and byte column of byte `at`.
fn point_at(text: &[u8], at: usize) -> Point {
    let before = &text[..at];
    let row = before.iter().filter(|c| **c == b'\n').count();
    let column = before
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(at, |nl| at - nl - 1);
    Point { row, column }
}

struct RawDef<'t> {
    node: Node<'t>,
    name: String,
    kind: Option<DefKind>,
    body: Option<Node<'t>>,
    /// Go: the receiver type names the scope.
    receiver: Option<String>,
    pattern: usize,
}

pub fn extract_tree(lang: Lang, text: &str, tree: &Tree) -> FileSymbols {
    extract_by(lang, text, tree, false)
}

/// [`extract_tree`] with every pattern run by tree-sitter's query engine: the reference the
/// pattern matcher is tested against.
#[doc(hidden)]
pub fn extract_tree_by_query_engine(lang: Lang, text: &str, tree: &Tree) -> FileSymbols {
    extract_by(lang, text, tree, true)
}

fn extract_by<'t>(lang: Lang, text: &str, tree: &'t Tree, engine_only: bool) -> FileSymbols {
    let extraction = if engine_only {
        lang.reference_query()
    } else {
        lang.query()
    };
    let src = text.as_bytes();
    let mut raw: Vec<RawDef> = Vec::new();
    let mut imports = Vec::new();
    let names = extraction.query.capture_names();
    // The reference (tree-sitter's query engine) sees every match; the walk does not look
    // inside the query file's local kinds, so the reference drops what is there.
    // (A capture may be below its match's node, as a C include's `string_content`: the
    // node judged is the nearest one where a pattern may start.)
    let walked = lang.query();
    let hidden = |n: Node| {
        engine_only && {
            let mut start = n;
            while !walked.matcher.may_match(start.kind_id()) {
                match start.parent() {
                    Some(p) => start = p,
                    None => break,
                }
            }
            inside_local(&walked.enter, start)
        }
    };
    let mut handle = |pattern: usize, captures: &mut dyn Iterator<Item = (u32, Node<'t>)>| {
        let mut def: Option<(Node, Option<DefKind>)> = None;
        let (mut name, mut body, mut receiver) = (None, None, None);
        for (index, node) in captures {
            match names[index as usize] {
                "name" => name = Some(node),
                "body" => body = Some(node),
                "receiver" => receiver = node.utf8_text(src).ok().map(str::to_string),
                "scope" => def = Some((node, None)),
                "import" if hidden(node) => {}
                "import" => {
                    if let Ok(t) = node.utf8_text(src) {
                        let target = t.trim_matches(|c| c == '"' || c == '\'' || c == '`');
                        imports.push((
                            node.start_byte(),
                            Import {
                                target: target.to_string(),
                                line: node.start_position().row as u32,
                            },
                        ));
                    }
                }
                other => {
                    if let Some(kind) = other.strip_prefix("def.") {
                        def = Some((node, DefKind::from_capture(kind)));
                    }
                }
            }
        }
        if let (Some((node, kind)), Some(name)) = (def, name) {
            if hidden(node) {
                return;
            }
            if let Ok(n) = name.utf8_text(src) {
                raw.push(RawDef {
                    node,
                    name: n.to_string(),
                    kind,
                    body,
                    receiver,
                    pattern,
                });
            }
        }
    };
    let mut family = Family::default();
    if !engine_only {
        walk_matches(extraction, tree, src, &mut family, &mut handle);
    }
    if extraction.query_needed {
        let mut cursor = QueryCursor::new();
        let mut matches = cursor.matches(&extraction.query, tree.root_node(), src);
        while let Some(m) = matches.next() {
            handle(
                m.pattern_index,
                &mut m.captures.iter().map(|c| (c.index, c.node)),
            );
        }
    }
    // In document order, whichever way (and pattern) found them.
    imports.sort_by_key(|(at, _)| *at);
    let mut imports: Vec<Import> = imports.into_iter().map(|(_, i)| i).collect();
    imports.dedup();
    FileSymbols {
        lang,
        definitions: resolve_definitions(raw, src, &mut family),
        imports,
    }
}

/// Whether `node` lies inside a local kind (`reach`) that the walk does not enter: told
/// from its ancestors, as the reference needs, not by the walk's own bookkeeping.
fn inside_local(enter: &crate::reach::Enter, node: Node) -> bool {
    let mut n = node;
    while let Some(p) = n.parent() {
        let in_field = || {
            p.parent().is_some_and(|g| {
                enter.by_field(p.kind_id(), g.kind_id(), |f| {
                    g.child_by_field_id(f) == Some(p)
                })
            })
        };
        if enter.is_local(p.kind_id()) && !p.has_error() && !in_field() {
            return true;
        }
        n = p;
    }
    false
}

/// The compiled patterns' matches, by one walk over the tree in document order. Records the
/// parent and grandparent of each node where a pattern may match (see [`Family`]).
fn walk_matches<'t>(
    extraction: &crate::lang::Extraction,
    tree: &'t Tree,
    src: &[u8],
    family: &mut Family<'t>,
    handle: &mut impl FnMut(usize, &mut dyn Iterator<Item = (u32, Node<'t>)>),
) {
    preorder(tree, |node, ancestors| {
        if extraction.matcher.may_match(node.kind_id()) {
            if let [.., grand, parent] = ancestors {
                family.parents.insert(parent.id(), *grand);
            }
            if let Some(parent) = ancestors.last() {
                family.parents.insert(node.id(), *parent);
            }
            extraction
                .matcher
                .matches_at(node, src, &mut |pattern, caps| {
                    handle(pattern, &mut caps.iter().copied())
                });
        }
        // Below a kind that cannot hold a match there is nothing to find, unless error
        // recovery put it there; nor below a local kind (`reach`), unless it is in a field
        // the query file names.
        let kind = node.kind_id();
        extraction.enter.kind(kind)
            || ancestors.last().is_some_and(|p| {
                extraction
                    .enter
                    .by_field(kind, p.kind_id(), |f| p.child_by_field_id(f) == Some(node))
            })
            || node.has_error()
    });
}

/// The nodes of a tree, counted by the walk extraction makes: what visiting every node
/// costs, apart from what is done at each (`moat bench index --phases`).
#[doc(hidden)]
pub fn count_nodes(tree: &Tree) -> usize {
    let mut n = 0;
    preorder(tree, |_, _| {
        n += 1;
        true
    });
    n
}

/// Visits every node in document order with its ancestors (root first); `visit` returns
/// whether to enter the node's children.
fn preorder<'t>(tree: &'t Tree, mut visit: impl FnMut(Node<'t>, &[Node<'t>]) -> bool) {
    let mut cursor = tree.walk();
    let mut ancestors: Vec<Node<'t>> = Vec::new();
    'walk: loop {
        let node = cursor.node();
        if visit(node, &ancestors) && cursor.goto_first_child() {
            ancestors.push(node);
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                break 'walk;
            }
            ancestors.pop();
        }
    }
}

/// Parents and earlier siblings of definitions. tree-sitter finds a node's parent by
/// descending from the root and its previous sibling by scanning the parent's children, so
/// a file with thousands of definitions side by side cost quadratic time; the walk knows
/// the parents, and each parent's children are listed once.
#[derive(Default)]
struct Family<'t> {
    // Filled at every node a pattern may match: a fast hash, as in `similar`.
    parents: FxHashMap<usize, Node<'t>>,
    children: FxHashMap<usize, Vec<Node<'t>>>,
}

impl<'t> Family<'t> {
    fn parent(&self, n: Node<'t>) -> Option<Node<'t>> {
        self.parents.get(&n.id()).copied().or_else(|| n.parent())
    }

    /// The siblings before `n`, in document order.
    fn before(&mut self, n: Node<'t>) -> &[Node<'t>] {
        let Some(p) = self.parent(n) else {
            return &[];
        };
        let kids = self.children.entry(p.id()).or_insert_with(|| {
            let mut c = p.walk();
            p.children(&mut c).collect()
        });
        let mut i = kids.partition_point(|k| k.start_byte() < n.start_byte());
        while i < kids.len() && kids[i].id() != n.id() {
            i += 1;
        }
        &kids[..i.min(kids.len())]
    }
}

/// The identifier uses of a parsed text (the node kinds captured `@use` in the query).
pub fn uses_of_tree(lang: Lang, text: &str, tree: &Tree) -> Uses {
    let mut u = Uses::default();
    collect_uses(
        tree,
        text,
        &lang.query().use_kinds,
        &mut u.identifiers,
        &mut u.uses,
    );
    u.uses.sort_unstable();
    u.uses.dedup();
    u
}

/// Every node of the `kinds` in the tree, as `(line, identifier)`, by an iterative walk.
fn collect_uses(
    tree: &Tree,
    text: &str,
    kinds: &[u16],
    identifiers: &mut Vec<String>,
    uses: &mut Vec<(u32, u32)>,
) {
    let src = text.as_bytes();
    // Line of a byte offset by binary search: cheaper than asking each node for its row.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            src.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let mut ids: HashMap<&str, u32> = identifiers
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let mut fresh: Vec<&str> = Vec::new();
    preorder(tree, |node, _| {
        // A use is recorded whole (a Kotlin identifier may have parts); others are entered.
        if kinds.binary_search(&node.kind_id()).is_err() {
            return true;
        }
        if let Ok(t) = std::str::from_utf8(&src[node.start_byte()..node.end_byte()]) {
            let next = (identifiers.len() + fresh.len()) as u32;
            let id = *ids.entry(t).or_insert_with(|| {
                fresh.push(t);
                next
            });
            let line = line_starts.partition_point(|s| *s <= node.start_byte()) - 1;
            uses.push((line as u32, id));
        }
        false
    });
    identifiers.extend(fresh.into_iter().map(String::from));
}

/// One definition per node (the earliest pattern wins), scopes from nesting, and methods
/// told from functions by what encloses them.
fn resolve_definitions<'t>(
    mut raw: Vec<RawDef<'t>>,
    src: &[u8],
    family: &mut Family<'t>,
) -> Vec<Definition> {
    raw.sort_by_key(|d| {
        (
            d.node.start_byte(),
            std::cmp::Reverse(d.node.end_byte()),
            d.pattern,
        )
    });
    raw.dedup_by(|b, a| a.node.id() == b.node.id());
    // A stack of enclosing definitions: (end byte, qualified name, kind).
    let mut stack: Vec<(usize, String, Option<DefKind>)> = Vec::new();
    let mut out = Vec::new();
    for d in raw {
        while stack
            .last()
            .is_some_and(|(end, _, _)| *end <= d.node.start_byte())
        {
            stack.pop();
        }
        let scope = match &d.receiver {
            Some(r) => r.trim_start_matches('*').to_string(),
            None => stack.last().map(|(_, q, _)| q.clone()).unwrap_or_default(),
        };
        let parent_kind = stack.last().map(|(_, _, k)| *k);
        let qualified = if scope.is_empty() {
            d.name.clone()
        } else {
            format!("{scope}.{}", d.name)
        };
        // Types, constants and fields do not scope what is inside them (C's `typedef struct
        // s {…} t;` holds `s`, which is not `t.s`).
        let scopes = d
            .kind
            .is_none_or(|k| !matches!(k, DefKind::Type | DefKind::Constant | DefKind::Field));
        if scopes {
            stack.push((d.node.end_byte(), qualified, d.kind));
        }
        let Some(mut kind) = d.kind else {
            continue; // a scope only (Rust `impl`)
        };
        // A function inside a class, an interface or an `impl` is a method.
        if kind == DefKind::Function {
            let in_type = match parent_kind {
                Some(None) => true,
                Some(Some(k)) => k.holds_members(),
                None => false,
            };
            if in_type || d.receiver.is_some() {
                kind = DefKind::Method;
            }
        }
        out.push(Definition {
            signature: signature(d.node, d.body, src),
            doc: doc_of(d.node, d.body, src, family),
            name: d.name,
            kind,
            scope,
            start_byte: d.node.start_byte(),
            end_byte: d.node.end_byte(),
            start_line: d.node.start_position().row as u32,
            end_line: d.node.end_position().row as u32,
        });
    }
    out
}

fn text<'a>(node: Node, src: &'a [u8]) -> &'a str {
    node.utf8_text(src).unwrap_or("")
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The definition's text before its body (decorators and attributes included), else its
/// first line.
fn signature(node: Node, body: Option<Node>, src: &[u8]) -> String {
    let start = node.start_byte();
    let end = match body {
        Some(b) if b.start_byte() > start => b.start_byte(),
        _ => {
            let t = text(node, src);
            start + t.find('\n').unwrap_or(t.len())
        }
    };
    let s = std::str::from_utf8(&src[start..end]).unwrap_or("");
    let s = s.trim_end().trim_end_matches(['{', ':', '=']).trim_end();
    clip(s, MAX_SIGNATURE)
}

/// Comments right above the definition (or above its decorator or export wrapper), or a
/// docstring that opens its body.
fn doc_of<'t>(
    node: Node<'t>,
    body: Option<Node<'t>>,
    src: &[u8],
    family: &mut Family<'t>,
) -> Option<String> {
    if let Some(b) = body {
        if let Some(first) = b.named_child(0) {
            if first.kind() == "expression_statement" && first.named_child_count() == 1 {
                let s = first.named_child(0)?;
                if s.kind() == "string" {
                    return Some(clip(text(s, src).trim(), MAX_DOC));
                }
            }
        }
    }
    let mut anchor = node;
    while let Some(p) = family.parent(anchor) {
        if matches!(
            p.kind(),
            "decorated_definition" | "export_statement" | "template_declaration"
        ) {
            anchor = p;
        } else {
            break;
        }
    }
    let mut lines = Vec::new();
    let mut next_row = anchor.start_position().row;
    for &s in family.before(anchor).iter().rev() {
        let kind = s.kind();
        if s.end_position().row + 1 < next_row {
            break; // a blank line: the comment belongs to something else
        }
        if kind.contains("comment") {
            lines.push(text(s, src).trim().to_string());
        } else if !(kind.contains("attribute")
            || kind.contains("annotation")
            || kind == "decorator")
        {
            break;
        }
        next_row = s.start_position().row;
    }
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    Some(clip(&lines.join("\n"), MAX_DOC))
}
