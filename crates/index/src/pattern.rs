//! The extraction query's patterns, matched during one walk over the tree instead of by
//! tree-sitter's query engine, which spent two thirds of a parse's time producing the
//! matches. Compiled here: the subset of the query language that the query files use —
//! node kinds and `(_)`, fields, negated fields (`!body`), anonymous nodes (`"interface"`),
//! alternations (`[…]`), the `?` quantifier, an anchor before the first child, and `#eq?`
//! between a capture and a string. A pattern with anything else is left to the query engine
//! ([`crate::lang::Extraction`] keeps exactly those patterns enabled), so a query file may
//! use the whole language. A test holds both ways equal on every language's fixtures.
//!
//! Semantics follow tree-sitter's: a pattern's children match the node's children in order,
//! with gaps; a field child must carry that field; every way of matching is a match.

use tree_sitter::{Language, Node, Query};

/// Captures of one match: (capture index in the query, node).
pub type Captures<'t> = Vec<(u32, Node<'t>)>;

#[derive(Debug)]
enum Pat {
    /// A named node of this kind (`None`: `(_)`, any named node).
    Named {
        kind: Option<u16>,
        children: Vec<Child>,
        negated: Vec<u16>,
        captures: Vec<u32>,
    },
    Anonymous {
        kind: u16,
        captures: Vec<u32>,
    },
    Alternation {
        options: Vec<Pat>,
        captures: Vec<u32>,
    },
}

#[derive(Debug)]
struct Child {
    field: Option<u16>,
    pat: Pat,
    optional: bool,
    /// Anchored: must be the parent's first named child.
    first: bool,
}

#[derive(Debug)]
struct Compiled {
    /// The pattern's index in the query.
    index: usize,
    root: Pat,
    /// `#eq?` predicates: the capture's text must equal the string.
    equal: Vec<(u32, String)>,
}

/// The compiled patterns, by the node kind their root matches.
#[derive(Debug, Default)]
pub struct Matcher {
    patterns: Vec<Compiled>,
    /// Indexed by node kind id: the walk asks at every node, so no hashing.
    by_kind: Vec<Vec<usize>>,
}

impl Matcher {
    /// Compiles what it can of `query`'s patterns (source text `source`), except those in
    /// `skip`; [`Matcher::compiled`] names the ones it took, which the caller disables in
    /// the query.
    pub fn new(query: &Query, source: &str, grammar: &Language, skip: &[usize]) -> Self {
        let mut m = Matcher::default();
        for index in 0..query.pattern_count() {
            if skip.contains(&index) {
                continue;
            }
            let text =
                &source[query.start_byte_for_pattern(index)..query.end_byte_for_pattern(index)];
            let mut p = Parser {
                toks: tokens(text),
                at: 0,
                grammar,
                query,
                equal: Vec::new(),
            };
            let Some(root) = p.pattern().filter(|_| p.at == p.toks.len()) else {
                continue;
            };
            let Some(kinds) = root_kinds(&root) else {
                continue; // a root that matches any node: leave it to the query engine
            };
            let slot = m.patterns.len();
            for k in kinds {
                let k = k as usize;
                if m.by_kind.len() <= k {
                    m.by_kind.resize(k + 1, Vec::new());
                }
                m.by_kind[k].push(slot);
            }
            m.patterns.push(Compiled {
                index,
                root,
                equal: p.equal,
            });
        }
        m
    }

    /// Query pattern indexes compiled here.
    pub fn compiled(&self) -> impl Iterator<Item = usize> + '_ {
        self.patterns.iter().map(|p| p.index)
    }

    /// Whether a compiled pattern's root can be a node of this kind.
    pub fn may_match(&self, kind: u16) -> bool {
        self.by_kind
            .get(kind as usize)
            .is_some_and(|v| !v.is_empty())
    }

    /// Every match of the compiled patterns at `node`, as (query pattern index, captures),
    /// in pattern order.
    pub fn matches_at<'t>(
        &self,
        node: Node<'t>,
        src: &[u8],
        out: &mut impl FnMut(usize, &Captures<'t>),
    ) {
        let Some(slots) = self.by_kind.get(node.kind_id() as usize) else {
            return;
        };
        for &slot in slots {
            let p = &self.patterns[slot];
            let mut found = matches(&p.root, node);
            found.dedup();
            for caps in &found {
                let holds = p.equal.iter().all(|(cap, want)| {
                    caps.iter()
                        .filter(|(c, _)| c == cap)
                        .all(|(_, n)| n.utf8_text(src).is_ok_and(|t| t == want))
                });
                if holds {
                    out(p.index, caps);
                }
            }
        }
    }
}

/// The node kinds a root pattern can match; `None` if any.
fn root_kinds(p: &Pat) -> Option<Vec<u16>> {
    match p {
        Pat::Named { kind, .. } => kind.map(|k| vec![k]),
        Pat::Anonymous { kind, .. } => Some(vec![*kind]),
        Pat::Alternation { options, .. } => {
            let mut all = Vec::new();
            for o in options {
                all.extend(root_kinds(o)?);
            }
            Some(all)
        }
    }
}

fn with_captures<'t>(
    captures: &[u32],
    node: Node<'t>,
    mut found: Vec<Captures<'t>>,
) -> Vec<Captures<'t>> {
    if !captures.is_empty() {
        for f in &mut found {
            f.splice(0..0, captures.iter().map(|c| (*c, node)));
        }
    }
    found
}

fn matches<'t>(pat: &Pat, node: Node<'t>) -> Vec<Captures<'t>> {
    match pat {
        Pat::Anonymous { kind, captures } => {
            if node.is_named() || node.kind_id() != *kind {
                return Vec::new();
            }
            vec![captures.iter().map(|c| (*c, node)).collect()]
        }
        Pat::Alternation { options, captures } => {
            let found = options.iter().flat_map(|o| matches(o, node)).collect();
            with_captures(captures, node, found)
        }
        Pat::Named {
            kind,
            children,
            negated,
            captures,
        } => {
            if !node.is_named() || kind.is_some_and(|k| node.kind_id() != k) {
                return Vec::new();
            }
            if negated.iter().any(|f| node.child_by_field_id(*f).is_some()) {
                return Vec::new();
            }
            if children.is_empty() {
                return vec![captures.iter().map(|c| (*c, node)).collect()];
            }
            let mut kids: Vec<(Node<'t>, Option<u16>)> = Vec::new();
            let mut cursor = node.walk();
            if cursor.goto_first_child() {
                loop {
                    kids.push((cursor.node(), cursor.field_id().map(|f| f.get())));
                    if !cursor.goto_next_sibling() {
                        break;
                    }
                }
            }
            let first_named = kids.iter().position(|(n, _)| n.is_named());
            let mut found = Vec::new();
            sequence(children, &kids, first_named, 0, 0, Vec::new(), &mut found);
            with_captures(captures, node, found)
        }
    }
}

/// Matches `children[i..]` against `kids[j..]` in order, pushing every complete match.
fn sequence<'t>(
    children: &[Child],
    kids: &[(Node<'t>, Option<u16>)],
    first_named: Option<usize>,
    i: usize,
    j: usize,
    acc: Captures<'t>,
    out: &mut Vec<Captures<'t>>,
) {
    let Some(c) = children.get(i) else {
        out.push(acc);
        return;
    };
    let before = out.len();
    for (jj, (kid, field)) in kids.iter().enumerate().skip(j) {
        if c.field.is_some() && *field != c.field {
            continue;
        }
        if c.first && Some(jj) != first_named {
            continue;
        }
        for m in matches(&c.pat, *kid) {
            let mut a = acc.clone();
            a.extend(m);
            sequence(children, kids, first_named, i + 1, jj + 1, a, out);
        }
    }
    // An optional child that is there is captured; only without it does the rest match alone.
    if c.optional && out.len() == before {
        sequence(children, kids, first_named, i + 1, j, acc, out);
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    OpenAlt,
    CloseAlt,
    Anchor,
    Optional,
    Other,
    Bang,
    Colon,
    Capture(String),
    Str(String),
    Predicate(String),
    Ident(String),
}

fn tokens(text: &str) -> Vec<Tok> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let s = *i;
        while *i < b.len()
            && (b[*i].is_ascii_alphanumeric() || matches!(b[*i], b'_' | b'.' | b'-' | b'?' | b'!'))
        {
            *i += 1;
        }
        text[s..*i].to_string()
    };
    while i < b.len() {
        let c = b[i];
        let single = match c {
            b'(' => Some(Tok::Open),
            b')' => Some(Tok::Close),
            b'[' => Some(Tok::OpenAlt),
            b']' => Some(Tok::CloseAlt),
            b'.' => Some(Tok::Anchor),
            b'?' => Some(Tok::Optional),
            b'!' => Some(Tok::Bang),
            b':' => Some(Tok::Colon),
            b'*' | b'+' => Some(Tok::Other),
            _ => None,
        };
        if let Some(t) = single {
            out.push(t);
            i += 1;
            continue;
        }
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'@' => {
                i += 1;
                out.push(Tok::Capture(word(&mut i)));
            }
            b'#' => {
                i += 1;
                out.push(Tok::Predicate(word(&mut i)));
            }
            b'"' => {
                i += 1;
                let mut s = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                        s.push(match b[i] {
                            b'n' => '\n',
                            b't' => '\t',
                            other => other as char,
                        });
                    } else {
                        s.push(b[i] as char);
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' => {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Ident(text[s..i].to_string()));
            }
            _ => {
                out.push(Tok::Other);
                i += 1;
            }
        }
    }
    out
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    grammar: &'a Language,
    query: &'a Query,
    equal: Vec<(u32, String)>,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.at + k)
    }

    fn captures(&mut self) -> Option<Vec<u32>> {
        let mut caps = Vec::new();
        while let Some(Tok::Capture(name)) = self.peek(0) {
            caps.push(self.query.capture_index_for_name(name)?);
            self.at += 1;
        }
        Some(caps)
    }

    /// One pattern and the captures after it; `None` where the pattern uses more than this
    /// module compiles.
    fn pattern(&mut self) -> Option<Pat> {
        match self.next()? {
            Tok::Str(s) => {
                let kind = self.grammar.id_for_node_kind(&s, false);
                (kind != 0).then_some(())?;
                Some(Pat::Anonymous {
                    kind,
                    captures: self.captures()?,
                })
            }
            Tok::OpenAlt => {
                let mut options = Vec::new();
                while self.peek(0)? != &Tok::CloseAlt {
                    options.push(self.pattern()?);
                }
                self.at += 1;
                Some(Pat::Alternation {
                    options,
                    captures: self.captures()?,
                })
            }
            Tok::Open => {
                let Tok::Ident(name) = self.next()? else {
                    return None;
                };
                let kind = if name == "_" {
                    None
                } else {
                    let id = self.grammar.id_for_node_kind(&name, true);
                    (id != 0).then_some(id)?;
                    Some(id)
                };
                let (mut children, mut negated) = (Vec::new(), Vec::new());
                let mut anchored = false;
                loop {
                    match self.peek(0)? {
                        Tok::Close => {
                            self.at += 1;
                            break;
                        }
                        Tok::Anchor => {
                            // Only before the first child: other anchors are not compiled.
                            (children.is_empty() && !anchored).then_some(())?;
                            anchored = true;
                            self.at += 1;
                        }
                        Tok::Bang => {
                            self.at += 1;
                            let Tok::Ident(f) = self.next()? else {
                                return None;
                            };
                            negated.push(self.grammar.field_id_for_name(&f)?.get());
                        }
                        Tok::Open if matches!(self.peek(1), Some(Tok::Predicate(_))) => {
                            self.predicate()?;
                        }
                        Tok::Ident(f) if self.peek(1) == Some(&Tok::Colon) => {
                            let field = self.grammar.field_id_for_name(f)?.get();
                            self.at += 2;
                            let pat = self.pattern()?;
                            children.push(self.child(Some(field), pat, anchored)?);
                            anchored = false;
                        }
                        Tok::Open | Tok::OpenAlt | Tok::Str(_) => {
                            let pat = self.pattern()?;
                            children.push(self.child(None, pat, anchored)?);
                            anchored = false;
                        }
                        _ => return None,
                    }
                }
                (!anchored).then_some(())?;
                Some(Pat::Named {
                    kind,
                    children,
                    negated,
                    captures: self.captures()?,
                })
            }
            _ => None,
        }
    }

    fn child(&mut self, field: Option<u16>, mut pat: Pat, first: bool) -> Option<Child> {
        if matches!(self.peek(0), Some(Tok::Other)) {
            return None; // `*` or `+`
        }
        let optional = self.peek(0) == Some(&Tok::Optional);
        if optional {
            // `(x)? @c`: the captures follow the quantifier.
            self.at += 1;
            let more = self.captures()?;
            match &mut pat {
                Pat::Named { captures, .. }
                | Pat::Anonymous { captures, .. }
                | Pat::Alternation { captures, .. } => captures.extend(more),
            }
        }
        Some(Child {
            field,
            pat,
            optional,
            first,
        })
    }

    /// `(#eq? @capture "text")`; any other predicate is not compiled.
    fn predicate(&mut self) -> Option<()> {
        self.at += 1;
        let Some(Tok::Predicate(name)) = self.next() else {
            return None;
        };
        (name == "eq?").then_some(())?;
        let Some(Tok::Capture(cap)) = self.next() else {
            return None;
        };
        let Some(Tok::Str(text)) = self.next() else {
            return None;
        };
        (self.next()? == Tok::Close).then_some(())?;
        let cap = self.query.capture_index_for_name(&cap)?;
        self.equal.push((cap, text));
        Some(())
    }
}
