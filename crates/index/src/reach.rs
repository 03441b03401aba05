//! Which node kinds can hold, somewhere below them, a node that an extraction pattern starts
//! at: read from the grammar's own description of its tree (`node-types.json`, shipped in
//! every grammar crate). The extraction walk does not enter the others (Python's
//! expressions, Rust's macro token trees), where it spent a quarter of a parse's time.
//!
//! Exact, not a heuristic: the grammar says what each node kind may contain, so a skipped
//! subtree cannot hold a match. Error recovery is the exception the grammar does not
//! describe, so a subtree with a syntax error in it is always entered.

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

/// Indexed by node kind id: whether the walk must enter nodes of that kind. Kinds the
/// description does not list are entered; so is everything if it cannot be read.
pub fn kinds_to_enter(
    grammar: &Language,
    node_types: &str,
    is_root: impl Fn(u16) -> bool,
) -> Vec<bool> {
    let count = grammar.node_kind_count();
    let Ok(types) = serde_json::from_str::<Vec<NodeType>>(node_types) else {
        return vec![true; count];
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
    // holds[i]: a root may be somewhere below a node of kind i. A fixpoint over a few
    // hundred kinds.
    let mut holds = vec![false; types.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..types.len() {
            if !holds[i] && inside[i].iter().any(|&c| root[c] || holds[c]) {
                holds[i] = true;
                changed = true;
            }
        }
    }
    described
        .iter()
        .map(|d| d.is_none_or(|i| holds[i]))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::lang::Lang;

    fn entered(lang: Lang, kind: &str) -> bool {
        let grammar = lang.grammar();
        let id = grammar.id_for_node_kind(kind, true);
        assert_ne!(id, 0, "{lang:?} has no {kind}");
        lang.query().enter[id as usize]
    }

    /// Python's statements cannot be inside its expressions, so a call is not entered; a
    /// block is. Rust's closures hold blocks, which hold items, so they are entered; a
    /// macro's token tree holds only tokens.
    #[test]
    fn the_walk_skips_only_what_cannot_hold_a_definition() {
        assert!(!entered(Lang::Python, "call"));
        assert!(!entered(Lang::Python, "argument_list"));
        assert!(!entered(Lang::Python, "string"));
        assert!(entered(Lang::Python, "block"));
        assert!(entered(Lang::Python, "if_statement"));
        assert!(!entered(Lang::Rust, "token_tree"));
        assert!(entered(Lang::Rust, "closure_expression"));
        assert!(entered(Lang::Rust, "block"));
        assert!(entered(Lang::JavaScript, "arguments"));
    }

    #[test]
    fn a_description_that_cannot_be_read_enters_everything() {
        let grammar = Lang::Python.grammar();
        let enter = super::kinds_to_enter(&grammar, "not json", |_| false);
        assert_eq!(enter.len(), grammar.node_kind_count());
        assert!(enter.iter().all(|e| *e));
    }
}
