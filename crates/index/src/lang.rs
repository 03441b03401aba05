//! The languages the index understands: a grammar and an extraction query each.

use crate::pattern::Matcher;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::OnceLock;
use tree_sitter::{Language, Query};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Lang {
    Python,
    Rust,
    TypeScript,
    Tsx,
    JavaScript,
    Go,
    Java,
    C,
    Cpp,
    CSharp,
    Php,
    Kotlin,
}

pub const ALL: [Lang; 12] = [
    Lang::Python,
    Lang::Rust,
    Lang::TypeScript,
    Lang::Tsx,
    Lang::JavaScript,
    Lang::Go,
    Lang::Java,
    Lang::C,
    Lang::Cpp,
    Lang::CSharp,
    Lang::Php,
    Lang::Kotlin,
];

impl Lang {
    /// The language of a file, from its extension.
    pub fn from_path(path: &Path) -> Option<Lang> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "py" | "pyi" => Lang::Python,
            "rs" => Lang::Rust,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "go" => Lang::Go,
            "java" => Lang::Java,
            "c" | "h" => Lang::C,
            "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "h++" | "ipp" => Lang::Cpp,
            "cs" => Lang::CSharp,
            "php" => Lang::Php,
            "kt" | "kts" => Lang::Kotlin,
            _ => return None,
        })
    }

    /// The language of a file from its extension and, where C and C++ share one (`.h`),
    /// its text. C++ read by the C grammar loses its classes and namespaces and runs
    /// tree-sitter's error recovery over every template: a 683-line libstdc++ header took
    /// 125 ms to parse as C (and as long again at every keystroke), a few ms as C++.
    pub fn from_path_and_text(path: &Path, text: &str) -> Option<Lang> {
        let lang = Lang::from_path(path)?;
        let shared = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("h"));
        Some(if shared && looks_like_cpp(text) {
            Lang::Cpp
        } else {
            lang
        })
    }

    /// The name editors use (LSP language identifiers).
    pub fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Rust => "rust",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "typescriptreact",
            Lang::JavaScript => "javascript",
            Lang::Go => "go",
            Lang::Java => "java",
            Lang::C => "c",
            Lang::Cpp => "cpp",
            Lang::CSharp => "csharp",
            Lang::Php => "php",
            Lang::Kotlin => "kotlin",
        }
    }

    /// From an LSP language identifier or a plain name.
    pub fn from_name(name: &str) -> Option<Lang> {
        ALL.into_iter().find(|l| l.name() == name).or(match name {
            "javascriptreact" => Some(Lang::JavaScript),
            "tsx" => Some(Lang::Tsx),
            "c++" => Some(Lang::Cpp),
            "c#" | "cs" => Some(Lang::CSharp),
            _ => None,
        })
    }

    pub fn grammar(self) -> Language {
        match self {
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
            Lang::Java => tree_sitter_java::LANGUAGE.into(),
            Lang::C => tree_sitter_c::LANGUAGE.into(),
            Lang::Cpp => tree_sitter_cpp::LANGUAGE.into(),
            Lang::CSharp => tree_sitter_c_sharp::LANGUAGE.into(),
            Lang::Php => tree_sitter_php::LANGUAGE_PHP.into(),
            Lang::Kotlin => tree_sitter_kotlin_ng::LANGUAGE.into(),
        }
    }

    /// The grammar's description of its tree: which node kinds may hold which.
    fn node_types(self) -> &'static str {
        match self {
            Lang::Python => tree_sitter_python::NODE_TYPES,
            Lang::Rust => tree_sitter_rust::NODE_TYPES,
            Lang::TypeScript => tree_sitter_typescript::TYPESCRIPT_NODE_TYPES,
            Lang::Tsx => tree_sitter_typescript::TSX_NODE_TYPES,
            Lang::JavaScript => tree_sitter_javascript::NODE_TYPES,
            Lang::Go => tree_sitter_go::NODE_TYPES,
            Lang::Java => tree_sitter_java::NODE_TYPES,
            Lang::C => tree_sitter_c::NODE_TYPES,
            Lang::Cpp => tree_sitter_cpp::NODE_TYPES,
            Lang::CSharp => tree_sitter_c_sharp::NODE_TYPES,
            Lang::Php => tree_sitter_php::PHP_NODE_TYPES,
            Lang::Kotlin => tree_sitter_kotlin_ng::NODE_TYPES,
        }
    }

    fn query_source(self) -> &'static str {
        match self {
            Lang::Python => include_str!("../queries/python.scm"),
            Lang::Rust => include_str!("../queries/rust.scm"),
            Lang::TypeScript | Lang::Tsx => include_str!("../queries/typescript.scm"),
            Lang::JavaScript => include_str!("../queries/javascript.scm"),
            Lang::Go => include_str!("../queries/go.scm"),
            Lang::Java => include_str!("../queries/java.scm"),
            Lang::C => include_str!("../queries/c.scm"),
            Lang::Cpp => include_str!("../queries/cpp.scm"),
            Lang::CSharp => include_str!("../queries/csharp.scm"),
            Lang::Php => include_str!("../queries/php.scm"),
            Lang::Kotlin => include_str!("../queries/kotlin.scm"),
        }
    }

    /// The compiled extraction query (compiled once per process), without its `@use`
    /// patterns, and the node kinds those patterns name.
    ///
    /// Why split: every identifier would be a query match, and tree-sitter's query engine
    /// spent more time producing those matches than parsing the file. A plain walk over
    /// the tree collects the same nodes for a fraction of that; the kinds still come from
    /// the query file.
    pub fn query(self) -> &'static Extraction {
        static QUERIES: [OnceLock<Extraction>; ALL.len()] = [const { OnceLock::new() }; ALL.len()];
        self.pick(&QUERIES, true)
    }

    /// The same extraction with no pattern compiled by the matcher (tests compare the two).
    pub(crate) fn reference_query(self) -> &'static Extraction {
        static QUERIES: [OnceLock<Extraction>; ALL.len()] = [const { OnceLock::new() }; ALL.len()];
        self.pick(&QUERIES, false)
    }

    /// Each language is compiled when first needed (a fifth of a second for all twelve, with
    /// every other thread waiting): a Rust repository compiles Rust's query alone.
    fn pick(
        self,
        all: &'static [OnceLock<Extraction>; ALL.len()],
        compile: bool,
    ) -> &'static Extraction {
        let i = ALL.iter().position(|l| *l == self).expect("in ALL");
        all[i].get_or_init(|| Extraction::build(self, compile))
    }
}

pub struct Extraction {
    /// The patterns the matcher does not compile (none, with today's query files).
    pub query: Query,
    /// Whether `query` has any pattern left enabled.
    pub query_needed: bool,
    pub matcher: Matcher,
    /// By node kind id: whether a node of that kind can hold one the matcher starts at
    /// (`reach`); the extraction walk enters no other.
    pub enter: crate::reach::Enter,
    /// Node kind ids whose nodes are identifier uses.
    pub use_kinds: Vec<u16>,
}

impl Extraction {
    fn build(lang: Lang, compile: bool) -> Self {
        let source = lang.query_source();
        let grammar = lang.grammar();
        // The queries ship inside the binary and a test compiles every one, so a failure
        // here is a build defect, not a user error.
        let mut query =
            Query::new(&grammar, source).unwrap_or_else(|e| panic!("query for {lang:?}: {e}"));
        let mut use_kinds = Vec::new();
        let mut disabled = Vec::new();
        for i in 0..query.pattern_count() {
            let start = query.start_byte_for_pattern(i);
            let end = query.end_byte_for_pattern(i);
            let text = source[start..end].trim();
            // `(kind) @use`: a single node kind captured as a use.
            if let Some(kind) = text
                .strip_suffix("@use")
                .map(str::trim)
                .and_then(|t| t.strip_prefix('('))
                .and_then(|t| t.strip_suffix(')'))
            {
                let id = grammar.id_for_node_kind(kind.trim(), true);
                assert!(
                    id != 0,
                    "{lang:?}: unknown node kind {kind} in a @use pattern"
                );
                use_kinds.push(id);
                query.disable_pattern(i);
                disabled.push(i);
            }
        }
        use_kinds.sort_unstable();
        // Definitions and imports by one walk (see `pattern`), the rest by the query engine.
        let matcher = if compile {
            Matcher::new(&query, source, &grammar, &disabled)
        } else {
            Matcher::default()
        };
        for i in matcher.compiled() {
            query.disable_pattern(i);
            disabled.push(i);
        }
        let local = crate::reach::local_directive(source);
        let enter = crate::reach::kinds_to_enter(
            &grammar,
            lang.node_types(),
            |k| matcher.may_match(k),
            &local,
        );
        Self {
            enter,
            query_needed: disabled.len() < query.pattern_count(),
            query,
            matcher,
            use_kinds,
        }
    }
}

/// Whether a header's text uses C++: a line that begins with what C cannot say there
/// (a template, namespace, class, access label, `using namespace`) or includes a standard
/// header without `.h` (all of C's have one). Only line starts count, so prose in
/// comments ("the class of …") does not.
fn looks_like_cpp(text: &str) -> bool {
    const STARTS: [&str; 8] = [
        "template<",
        "template <",
        "namespace ",
        "using namespace ",
        "public:",
        "private:",
        "protected:",
        "extern \"C++\"",
    ];
    text.lines().any(|line| {
        let l = line.trim_start();
        STARTS.iter().any(|s| l.starts_with(s))
            || l.strip_prefix("class ").is_some_and(|r| {
                r.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && !r.trim_end().ends_with(['.', ','])
            })
            || l.strip_prefix("#include <").is_some_and(|r| {
                r.split('>')
                    .next()
                    .is_some_and(|h| !h.is_empty() && !h.contains('.'))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pattern of today's query files runs in the walk (`pattern`), none in the query
    /// engine, which costs a tree walk of its own even for one pattern. A pattern the matcher
    /// cannot compile still works; this test only says the speed is gone.
    #[test]
    fn the_matcher_compiles_every_pattern_of_todays_queries() {
        for l in ALL {
            assert!(!l.query().query_needed, "{l:?}");
        }
    }

    /// Rows: file name, text, language.
    const HEADERS: &[(&str, &str, Lang)] = &[
        (
            "a.h",
            "#include <stdio.h>\nstruct point { int x; };\n",
            Lang::C,
        ),
        (
            "a.h",
            "/* the class of\n * class names, every kind.\n */\nint f(void);\n",
            Lang::C,
        ),
        ("a.h", "#include <vector>\nint f();\n", Lang::Cpp),
        ("a.h", "namespace geo {\nint f();\n}\n", Lang::Cpp),
        ("a.H", "template <typename T>\nT id(T t);\n", Lang::Cpp),
        (
            "a.h",
            "class Shape {\n  public:\n  virtual ~Shape();\n};\n",
            Lang::Cpp,
        ),
        (
            "a.h",
            "#ifdef __cplusplus\nextern \"C\" {\n#endif\nint f(void);\n",
            Lang::C,
        ),
        // Only a header's extension is shared: a `.c` file is C whatever it holds.
        ("a.c", "template <typename T>\nT id(T t);\n", Lang::C),
        ("a.hpp", "int f(void);\n", Lang::Cpp),
    ];

    #[test]
    fn a_header_is_cpp_when_its_lines_begin_the_way_only_cpp_can() {
        for (name, text, want) in HEADERS {
            let got = Lang::from_path_and_text(Path::new(name), text);
            assert_eq!(got, Some(*want), "{name}: {text:?}");
        }
    }

    #[test]
    fn every_query_compiles_against_its_grammar() {
        for l in ALL {
            Query::new(&l.grammar(), l.query_source()).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            assert!(
                !l.query().use_kinds.is_empty(),
                "{l:?} has no @use patterns"
            );
        }
    }
}
