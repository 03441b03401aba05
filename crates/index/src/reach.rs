//! Which node kinds can hold, somewhere below them, a node that an extraction pattern starts
//! at: read from the grammar's own description of its tree (`node-types.json`, shipped in
//! every grammar crate). The extraction walk does not enter the others (Python's
//! expressions, Rust's macro token trees), where it spent a quarter of a parse's time.
//!
//! Exact, not a heuristic: the grammar says what each node kind may contain, so a skipped
//! subtree cannot hold a match. Error recovery is the exception the grammar does not
//! describe, so a subtree with a syntax error in it is always entered.
//!
//! One deliberate exception: a query file may name *local* kinds (`; local: _expression
//! !function_item.body`), whose subtrees the walk does not enter although the grammar lets them hold a
//! definition. Rust's closures and `if` arms, C's `sizeof(struct …)`, Java's anonymous
//! classes: what is defined there is visible only to the code around it, which the
//! in-file window already shows, and walking every expression of every function body was
//! the index's largest cost after parsing.

use rustc_hash::FxHashMap;
use serde::Deserialize;
use tree_sitter::Language;

#[derive(Deserialize)]
struct NodeType {
    #[serde(rename = "type")]
    kind: String,
    named: bool,
    #[serde(default)]
    fields: FxHashMap<String, ChildTypes>,
    #[serde(default)]
    children: Option<ChildTypes>,
    /// A supertype (`expression`) stands for any of these.
    #[serde(default)]
    subtypes: Vec<TypeRef>,
}

#[derive(Deserialize)]
struct ChildTypes {
    types: Vec<TypeRef>,
}

#[derive(Deserialize, PartialEq, Eq, Hash, Clone)]
struct TypeRef {
    #[serde(rename = "type")]
    kind: String,
    named: bool,
}

/// What the extraction walk enters: by node kind id, and through the exceptions a query
/// file names (`!function_item.body`: that field's child, though its kind is local).
#[derive(Debug, Default)]
pub struct Enter {
    kinds: Vec<bool>,
    /// By node kind id: one of the query file's local kinds.
    local: Vec<bool>,
    /// By node kind id: entered where it is the child of an exception's field.
    via_field: Vec<bool>,
    /// (parent kind id, field id) of each exception.
    fields: Vec<(u16, u16)>,
}

impl Enter {
    /// Whether nodes of `kind` are entered wherever they are.
    pub fn kind(&self, kind: u16) -> bool {
        self.kinds.get(kind as usize).copied().unwrap_or(true)
    }

    /// Whether `kind` is one of the query file's local kinds.
    pub fn is_local(&self, kind: u16) -> bool {
        self.local.get(kind as usize).copied().unwrap_or(false)
    }

    /// Whether a node of `kind` that [`Enter::kind`] refuses is entered where it is, as
    /// the child of a `parent` kind: `in_field(f)` tells whether it is that parent's child
    /// in field `f` (asked only when it may matter: tree-sitter finds a field by a search).
    pub fn by_field(&self, kind: u16, parent: u16, in_field: impl Fn(u16) -> bool) -> bool {
        self.via_field.get(kind as usize).copied().unwrap_or(false)
            && self
                .fields
                .iter()
                .any(|(p, f)| *p == parent && in_field(*f))
    }
}

/// Which node kinds the walk must enter. Kinds the description does not list are entered;
/// so is everything if it cannot be read. `local`: the kinds never entered (see the
/// module's note): named kinds or supertypes (a supertype stands for all its subtypes,
/// transitively); `!kind`, a kind taken back out of them; `!parent.field`, a field whose
/// child is entered although its kind is local (Rust's function body is a `block`, an
/// expression).
pub fn kinds_to_enter(
    grammar: &Language,
    node_types: &str,
    is_root: impl Fn(u16) -> bool,
    local: &[&str],
) -> Enter {
    let count = grammar.node_kind_count();
    let Ok(types) = serde_json::from_str::<Vec<NodeType>>(node_types) else {
        return Enter {
            kinds: vec![true; count],
            ..Enter::default()
        };
    };
    let key = |t: &TypeRef| (t.kind.clone(), t.named);
    let at: FxHashMap<(String, bool), usize> = types
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.kind.clone(), t.named), i))
        .collect();
    // What each described kind may have as a child (a supertype: its subtypes).
    let inside: Vec<Vec<usize>> = types
        .iter()
        .map(|t| {
            t.fields
                .values()
                .flat_map(|c| &c.types)
                .chain(t.children.iter().flat_map(|c| &c.types))
                .chain(&t.subtypes)
                .filter_map(|r| at.get(&key(r)).copied())
                .collect()
        })
        .collect();
    // Each node kind id's described type, if any.
    let described: Vec<Option<usize>> = (0..count as u16)
        .map(|id| {
            let name = grammar.node_kind_for_id(id)?;
            at.get(&(name.to_string(), grammar.node_kind_is_named(id)))
                .copied()
        })
        .collect();
    let mut root = vec![false; types.len()];
    for (id, d) in described.iter().enumerate() {
        if let (Some(i), true) = (d, is_root(id as u16)) {
            root[*i] = true;
        }
    }
    // The exceptions: (parent type, the types its field may hold) and, for the walk,
    // (parent kind id, field id).
    let (edges, fields): (Vec<Edge>, Vec<(u16, u16)>) = local
        .iter()
        .filter_map(|k| k.strip_prefix('!')?.split_once('.'))
        .filter_map(|(parent, field)| {
            let p = *at.get(&(parent.to_string(), true))?;
            let kids = types[p].fields.get(field)?.types.iter();
            let kids = kids.filter_map(|r| at.get(&key(r)).copied());
            let parent_id = grammar.id_for_node_kind(parent, true);
            let field_id = grammar.field_id_for_name(field)?.get();
            Some(((p, with_subtypes(&types, &at, kids)), (parent_id, field_id)))
        })
        .unzip();
    // What a kind may hold with nothing local: what an exception's child may hold.
    let unblocked = holding(&inside, &root, &vec![false; types.len()], &[], &[]);
    let blocked = local_kinds(&types, &at, local);
    let holds = holding(&inside, &root, &blocked, &edges, &unblocked);
    let via: Vec<bool> = (0..types.len())
        .map(|i| blocked[i] && unblocked[i] && edges.iter().any(|(_, kids)| kids.contains(&i)))
        .collect();
    Enter {
        kinds: described
            .iter()
            .map(|d| d.is_none_or(|i| holds[i]))
            .collect(),
        local: described
            .iter()
            .map(|d| d.is_some_and(|i| blocked[i]))
            .collect(),
        via_field: described
            .iter()
            .map(|d| d.is_some_and(|i| via[i]))
            .collect(),
        fields,
    }
}

/// An exception's parent type and the types its field may hold.
type Edge = (usize, Vec<usize>);

/// holds[i]: a root may be somewhere below a node of kind i, through no blocked kind
/// except an edge's child (parent, its children's kinds), which holds what it holds
/// unblocked. A fixpoint over a few hundred kinds.
fn holding(
    inside: &[Vec<usize>],
    root: &[bool],
    blocked: &[bool],
    edges: &[Edge],
    unblocked: &[bool],
) -> Vec<bool> {
    let mut holds = vec![false; inside.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..inside.len() {
            if holds[i] || blocked[i] {
                continue;
            }
            let through_edge = || {
                edges
                    .iter()
                    .filter(|(p, _)| *p == i)
                    .any(|(_, kids)| kids.iter().any(|&c| root[c] || unblocked[c]))
            };
            if inside[i].iter().any(|&c| root[c] || holds[c]) || through_edge() {
                holds[i] = true;
                changed = true;
            }
        }
    }
    holds
}

/// The described types `of` and, for a supertype, all its subtypes (transitively).
fn with_subtypes(
    types: &[NodeType],
    at: &FxHashMap<(String, bool), usize>,
    of: impl Iterator<Item = usize>,
) -> Vec<usize> {
    let mut seen = vec![false; types.len()];
    let mut todo: Vec<usize> = of.collect();
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        todo.extend(
            types[i]
                .subtypes
                .iter()
                .filter_map(|r| at.get(&(r.kind.clone(), r.named)).copied()),
        );
    }
    (0..types.len()).filter(|i| seen[*i]).collect()
}

/// By described type: whether it is one of the `local` kinds.
fn local_kinds(
    types: &[NodeType],
    at: &FxHashMap<(String, bool), usize>,
    local: &[&str],
) -> Vec<bool> {
    let named = local
        .iter()
        .filter(|k| !k.starts_with('!'))
        .filter_map(|k| at.get(&(k.to_string(), true)).copied());
    // (`!parent.field` names no kind and is read by the caller.)
    let mut blocked = vec![false; types.len()];
    for i in with_subtypes(types, at, named) {
        blocked[i] = true;
    }
    for k in local.iter().filter_map(|k| k.strip_prefix('!')) {
        if let Some(&i) = at.get(&(k.to_string(), true)) {
            blocked[i] = false;
        }
    }
    blocked
}

/// The `local` kinds a query file names, on its lines `; local: KIND …`.
pub fn local_directive(query: &str) -> Vec<&str> {
    query
        .lines()
        .filter_map(|l| l.trim().strip_prefix("; local:"))
        .flat_map(str::split_whitespace)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::lang::Lang;

    fn id(lang: Lang, kind: &str) -> u16 {
        let id = lang.grammar().id_for_node_kind(kind, true);
        assert_ne!(id, 0, "{lang:?} has no {kind}");
        id
    }

    fn entered(lang: Lang, kind: &str) -> bool {
        lang.query().enter.kind(id(lang, kind))
    }

    /// Python's statements cannot be inside its expressions, so a call is not entered; a
    /// block is. A Rust macro's token tree holds only tokens. JavaScript names no local
    /// kinds: a call's arguments may hold the methods of an exported object.
    #[test]
    fn the_walk_skips_what_cannot_hold_a_definition() {
        assert!(!entered(Lang::Python, "call"));
        assert!(!entered(Lang::Python, "argument_list"));
        assert!(!entered(Lang::Python, "string"));
        assert!(entered(Lang::Python, "block"));
        assert!(entered(Lang::Python, "if_statement"));
        assert!(!entered(Lang::Rust, "token_tree"));
        assert!(entered(Lang::JavaScript, "arguments"));
        assert!(entered(Lang::JavaScript, "arrow_function"));
    }

    /// Local kinds are not entered, nor what reaches a definition only through them (a Rust
    /// `let` or a struct field's type); a Rust function's body is, by its field, and so are
    /// the kinds that hold items outside expressions.
    #[test]
    fn local_kinds_are_not_entered_but_a_function_body_is() {
        let rust = &Lang::Rust.query().enter;
        for kind in [
            "closure_expression",
            "if_expression",
            "call_expression",
            "let_declaration",
            "field_declaration",
            "const_item",
        ] {
            assert!(!entered(Lang::Rust, kind), "{kind}");
        }
        for kind in ["function_item", "impl_item", "declaration_list", "mod_item"] {
            assert!(entered(Lang::Rust, kind), "{kind}");
        }
        let (block, function, body) = (
            id(Lang::Rust, "block"),
            id(Lang::Rust, "function_item"),
            Lang::Rust
                .grammar()
                .field_id_for_name("body")
                .unwrap()
                .get(),
        );
        assert!(rust.is_local(block) && !rust.kind(block));
        assert!(rust.by_field(block, function, |f| f == body));
        assert!(!rust.by_field(block, function, |_| false));
        let closure = id(Lang::Rust, "closure_expression");
        assert!(!rust.by_field(block, closure, |f| f == body));
        assert!(!entered(Lang::Java, "object_creation_expression"));
        assert!(!entered(Lang::Java, "lambda_expression"));
        assert!(entered(Lang::Java, "block"));
        assert!(!entered(Lang::Go, "func_literal"));
        assert!(!entered(Lang::C, "sizeof_expression"));
        assert!(entered(Lang::C, "compound_statement"));
    }

    #[test]
    fn the_directive_is_read_from_comment_lines_only() {
        let q =
            "; local: _expression !function_item.body\n(x) @y\n;; local: nope\n  ; local: more\n";
        assert_eq!(
            super::local_directive(q),
            ["_expression", "!function_item.body", "more"]
        );
    }

    #[test]
    fn a_description_that_cannot_be_read_enters_everything() {
        let grammar = Lang::Python.grammar();
        let enter = super::kinds_to_enter(&grammar, "not json", |_| false, &["expression"]);
        assert_eq!(enter.kinds.len(), grammar.node_kind_count());
        assert!(enter.kinds.iter().all(|e| *e));
        assert!((0..grammar.node_kind_count() as u16).all(|k| !enter.is_local(k)));
    }
}
