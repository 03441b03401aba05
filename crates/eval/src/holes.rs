//! Holes cut from a repository's own files, deterministic by seed: the text after a
//! line's indentation (a line completion), the rest of a line after a `.` or `(` (an API
//! call or its arguments), and the body of a short function after its doc (a block).
//! A fourth kind, asked for by name, is the one CrossCodeEval selects: the rest of a line
//! from the first use of a name that another file of the repository defines (a cross-file
//! hole), where random holes mostly ask for local code that no context can add to.
//! Like CrossCodeEval's static analysis, a cross-file name is one the file imports or a
//! member written on one (`utils.name`, `Measurement.get`); a member on anything else
//! (`lines[-1].append`, `url.protocol`) is a guess about a value's type, and a third of
//! axios's cross-file holes were such guesses, often builtins that the repository happens
//! to define too (session 13).
//!
//! Holes are cut in code only: a cursor inside a comment or a string (a docstring line, a
//! message) asks for prose, which neither the model nor repository context can know, and
//! such holes were a third of the line and mid-line holes in rich. Before session 11 they
//! were cut there too, so older figures are not comparable.

use moat_context::{is_word, receiver};
use moat_index::{DefKind, Index, Lang};
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoleKind {
    Line,
    MidLine,
    Block,
    CrossFile,
}

impl HoleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Line => "line",
            Self::MidLine => "mid_line",
            Self::Block => "block",
            Self::CrossFile => "cross_file",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Line, Self::MidLine, Self::Block, Self::CrossFile]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct Hole {
    pub path: String,
    pub lang: Lang,
    pub kind: HoleKind,
    /// Byte offset of the cursor in `text`.
    pub cursor: usize,
    /// The text that was there.
    pub answer: String,
    /// The whole file as it is on disk.
    pub text: String,
}

impl Hole {
    /// The document the user has: the file without the hole.
    pub fn document(&self) -> String {
        format!(
            "{}{}",
            &self.text[..self.cursor],
            &self.text[self.cursor + self.answer.len()..]
        )
    }

    /// Where the cursor line starts: the index is shown the file up to here only.
    pub fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }
}

/// xorshift64*: small, deterministic, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

const MAX_FILE: usize = 200_000;

/// Node kinds a hole may not start or end inside: prose, not code.
fn is_prose(kind: &str) -> bool {
    kind.contains("comment") || kind.contains("string") || kind.contains("heredoc")
}

/// The parsed file, asked whether a byte is inside a comment or a string.
pub struct Syntax {
    tree: Option<tree_sitter::Tree>,
}

impl Syntax {
    pub fn parse(lang: Lang, text: &str) -> Self {
        let mut p = tree_sitter::Parser::new();
        let tree = p
            .set_language(&lang.grammar())
            .ok()
            .and_then(|_| p.parse(text, None));
        Self { tree }
    }

    /// Whether `byte` lies inside a comment or string (a file that did not parse: never).
    pub fn in_prose(&self, byte: usize) -> bool {
        let Some(tree) = &self.tree else {
            return false;
        };
        let mut node = tree.root_node().descendant_for_byte_range(byte, byte);
        while let Some(n) = node {
            // A string's own delimiters are code: `f(` then `"x")` is an argument.
            if is_prose(n.kind()) && n.start_byte() < byte && byte < n.end_byte() {
                return true;
            }
            node = n.parent();
        }
        false
    }

    /// Whether `byte` lies inside an import (`import`, `use`, `#include`, `using`, a package
    /// clause): a name there is declared, not used.
    fn in_import(&self, byte: usize) -> bool {
        let Some(tree) = &self.tree else {
            return false;
        };
        let mut node = tree.root_node().descendant_for_byte_range(byte, byte);
        while let Some(n) = node {
            let k = n.kind();
            if [
                "import",
                "use_declaration",
                "using_directive",
                "include",
                "package",
            ]
            .iter()
            .any(|m| k.contains(m))
            {
                return true;
            }
            node = n.parent();
        }
        false
    }

    /// Whether the name at `at` (`len` bytes), inside an import, is one the import binds:
    /// `Console` in `from .console import Console` or `use crate::console::Console`, not
    /// the module path (a parameter named `console` is not an imported name).
    fn import_binds(&self, text: &str, at: usize, len: usize) -> bool {
        let rest = &text[at + len..];
        if [".", "::", "\\"].iter().any(|sep| rest.starts_with(sep)) {
            return false;
        }
        let Some(tree) = &self.tree else {
            return true;
        };
        let mut node = tree.root_node().descendant_for_byte_range(at, at + len);
        while let Some(n) = node {
            let parent = n.parent();
            if parent.is_some_and(|p| {
                p.kind() == "import_from_statement"
                    && p.child_by_field_name("module_name") == Some(n)
            }) {
                return false;
            }
            node = parent;
        }
        true
    }

    /// Whether the line holding `byte` is a comment or inside a string from its first
    /// non-blank character (a docstring line).
    fn line_is_prose(&self, text: &str, byte: usize) -> bool {
        let s = text[..byte].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[s..];
        let first = s + (line.len() - line.trim_start().len());
        self.in_prose(first + 1)
    }
}

fn is_comment(t: &str) -> bool {
    ["#", "//", "/*", "*", "\"\"\"", "'''"]
        .iter()
        .any(|m| t.starts_with(m))
}

/// `(start, end)` byte offsets of each line, without the newline.
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices('\n') {
        v.push((start, i));
        start = i + 1;
    }
    v.push((start, text.len()));
    v
}

fn line_hole(text: &str, syntax: &Syntax, rng: &mut Rng) -> Option<(usize, usize)> {
    let spans = line_spans(text);
    let (s, e) = spans[rng.below(spans.len())];
    let line = &text[s..e];
    let t = line.trim();
    if t.len() < 6 || t.len() > 120 || is_comment(t) || t.chars().all(|c| !c.is_alphanumeric()) {
        return None;
    }
    let cursor = s + (line.len() - line.trim_start().len());
    let end = s + line.trim_end().len();
    if syntax.in_prose(cursor) || syntax.in_prose(end) {
        return None;
    }
    Some((cursor, end))
}

fn mid_line_hole(text: &str, syntax: &Syntax, rng: &mut Rng) -> Option<(usize, usize)> {
    let spans = line_spans(text);
    let (s, e) = spans[rng.below(spans.len())];
    let line = &text[s..e];
    let t = line.trim();
    if t.len() < 10 || is_comment(t) {
        return None;
    }
    let end = s + line.trim_end().len();
    let spots: Vec<usize> = line
        .char_indices()
        .filter(|(i, c)| {
            let next = line[i + c.len_utf8()..].chars().next();
            (*c == '.' && next.is_some_and(|n| n.is_alphabetic() || n == '_'))
                || (*c == '(' && next.is_some_and(|n| n != ')'))
        })
        .map(|(i, c)| s + i + c.len_utf8())
        .filter(|&c| (3..=100).contains(&(end - c)))
        .filter(|&c| !syntax.in_prose(c - 1) && !syntax.in_prose(c))
        .collect();
    if spots.is_empty() {
        return None;
    }
    Some((spots[rng.below(spots.len())], end))
}

fn block_hole(
    index: &Index,
    path: &str,
    text: &str,
    syntax: &Syntax,
    rng: &mut Rng,
) -> Option<(usize, usize)> {
    let syms = index.file(path)?;
    let fns: Vec<_> = syms
        .definitions
        .iter()
        .filter(|d| matches!(d.kind, DefKind::Function | DefKind::Method))
        .collect();
    if fns.is_empty() {
        return None;
    }
    let d = fns[rng.below(fns.len())];
    let spans = line_spans(text);
    let sig_lines = d.signature.lines().count().max(1) as u32;
    let mut first = d.start_line + sig_lines;
    // The doc is the user's; the hole is the code after it.
    while spans.get(first as usize).is_some_and(|(s, e)| {
        let t = text[*s..*e].trim();
        t.is_empty() || syntax.line_is_prose(text, *s)
    }) {
        first += 1;
    }
    let mut last = d.end_line;
    if spans
        .get(last as usize)
        .is_some_and(|(s, e)| text[*s..*e].trim().chars().all(|c| c == '}' || c == ';'))
    {
        last -= 1; // the closing brace stays: the editor has it already
    }
    if first > last || last - first + 1 > 8 || last as usize >= spans.len() {
        return None;
    }
    let (s, _) = spans[first as usize];
    let (_, e) = spans[last as usize];
    let body = &text[s..e];
    if body.trim().len() < 6 || text[s..e].trim() == "{" {
        return None;
    }
    Some((s, s + body.trim_end().len()))
}

/// Byte offsets of `name` as a whole word in `text[s..e]`.
fn word_at<'a>(
    text: &'a str,
    s: usize,
    e: usize,
    name: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    text[s..e]
        .match_indices(name)
        .map(move |(i, _)| s + i)
        .filter(move |&i| {
            !text[..i].chars().next_back().is_some_and(is_word)
                && !text[i + name.len()..].chars().next().is_some_and(is_word)
        })
}

/// Most definitions a cross-file name may have: more, and it is a common word (`get`,
/// `run`) whose use says nothing of the repository.
const CROSS_FILE_MAX_DEFS: usize = 3;

/// The rest of a line from the first use of a name this file does not define but another
/// file does, as CrossCodeEval cuts them: a name the file imports, or a member `x.name`.
/// Names in imports are declarations, not uses; locals that happen to share a name with a
/// definition elsewhere are left out by asking for the import or the member's dot.
fn cross_file_hole(
    index: &Index,
    path: &str,
    text: &str,
    syntax: &Syntax,
    rng: &mut Rng,
) -> Option<(usize, usize)> {
    let tree = syntax.tree.as_ref()?;
    let syms = index.file(path)?;
    let own: HashSet<&str> = syms.definitions.iter().map(|d| d.name.as_str()).collect();
    let uses = moat_index::extract::uses_of_tree(syms.lang, text, tree);
    let spans = line_spans(text);
    let mut imported: HashSet<&str> = HashSet::new();
    let mut used: HashSet<u32> = HashSet::new();
    let mut spots = Vec::new();
    for &(line, id) in &uses.uses {
        let name = uses.identifiers[id as usize].as_str();
        let Some(&(s, e)) = spans.get(line as usize) else {
            continue;
        };
        let mut first_use = None;
        for at in word_at(text, s, e, name) {
            if syntax.in_prose(at) {
                continue;
            }
            if syntax.in_import(at) {
                if syntax.import_binds(text, at, name.len()) {
                    imported.insert(name);
                }
            } else if first_use.is_none() {
                first_use = Some(at);
            }
        }
        let Some(at) = first_use else { continue };
        if !used.insert(id) || name.len() < 3 || own.contains(name) {
            continue;
        }
        let cross_file = match receiver(&text[..at]) {
            Some(object) => imported.contains(object),
            None => imported.contains(name),
        };
        if !cross_file {
            continue;
        }
        let end = s + text[s..e].trim_end().len();
        if !(3..=120).contains(&(end - at)) {
            continue;
        }
        let defs = index.definitions(name);
        if defs.is_empty()
            || defs.len() > CROSS_FILE_MAX_DEFS
            || defs.iter().any(|h| h.path == path)
        {
            continue;
        }
        spots.push((at, end));
    }
    if spots.is_empty() {
        return None;
    }
    Some(spots[rng.below(spots.len())])
}

/// The usual mix: 40% line, 30% mid-line, 30% block holes.
pub const MIX: [HoleKind; 10] = [
    HoleKind::Line,
    HoleKind::Line,
    HoleKind::Line,
    HoleKind::Line,
    HoleKind::MidLine,
    HoleKind::MidLine,
    HoleKind::MidLine,
    HoleKind::Block,
    HoleKind::Block,
    HoleKind::Block,
];

/// `n` holes from the indexed files of `index`, in the usual mix.
pub fn sample(index: &Index, n: usize, seed: u64) -> Vec<Hole> {
    let paths: Vec<String> = index.paths().map(String::from).collect();
    sample_from(index, &paths, n, seed, &MIX)
}

/// `n` holes from `paths` only (e.g. the files a tuning run held out), their kinds taken
/// from `kinds` in turn.
pub fn sample_from(
    index: &Index,
    paths: &[String],
    n: usize,
    seed: u64,
    kinds: &[HoleKind],
) -> Vec<Hole> {
    let kinds = if kinds.is_empty() { &MIX[..] } else { kinds };
    let mut rng = Rng::new(seed);
    let mut out: Vec<Hole> = Vec::new();
    let mut parsed: Option<(String, Syntax)> = None;
    let mut attempts = 0;
    while out.len() < n && attempts < n * 200 && !paths.is_empty() {
        attempts += 1;
        let kind = kinds[out.len() % kinds.len()];
        let path = &paths[rng.below(paths.len())];
        let Some(lang) = index.file(path).map(|f| f.lang) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(index.root().join(path)) else {
            continue;
        };
        if text.len() > MAX_FILE || text.contains('\r') {
            continue;
        }
        if parsed.as_ref().is_none_or(|(p, _)| p != path) {
            parsed = Some((path.clone(), Syntax::parse(lang, &text)));
        }
        let syntax = &parsed.as_ref().expect("just parsed").1;
        let span = match kind {
            HoleKind::Line => line_hole(&text, syntax, &mut rng),
            HoleKind::MidLine => mid_line_hole(&text, syntax, &mut rng),
            HoleKind::Block => block_hole(index, path, &text, syntax, &mut rng),
            HoleKind::CrossFile => cross_file_hole(index, path, &text, syntax, &mut rng),
        };
        let Some((cursor, end)) = span else { continue };
        if out.iter().any(|h| h.path == *path && h.cursor == cursor) {
            continue;
        }
        out.push(Hole {
            path: path.clone(),
            lang,
            kind,
            cursor,
            answer: text[cursor..end].to_string(),
            text,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_cut_at_character_boundaries_and_keep_the_answer() {
        // Multi-byte characters before `.` and `(` (a panic once: a byte index inside `┃`).
        let text = "x = ('┃   ', '┗━━ ').join(parts)\nvalue = compute(total, 3)\n";
        let mut rng = Rng::new(3);
        let syntax = Syntax::parse(Lang::Python, text);
        for _ in 0..200 {
            for (cursor, end) in [
                mid_line_hole(text, &syntax, &mut rng),
                line_hole(text, &syntax, &mut rng),
            ]
            .into_iter()
            .flatten()
            {
                assert!(text.is_char_boundary(cursor) && text.is_char_boundary(end));
                assert!(cursor < end && !text[cursor..end].contains('\n'));
            }
        }
        let hole = Hole {
            path: "a.py".into(),
            lang: Lang::Python,
            kind: HoleKind::MidLine,
            cursor: 57,
            answer: "total, 3)".into(),
            text: text.into(),
        };
        assert_eq!(&text[57..66], "total, 3)");
        assert_eq!(hole.document(), text.replace("total, 3)", ""));
        assert_eq!(hole.line_start(), text.find("value").unwrap());
    }

    #[test]
    fn holes_are_cut_in_code_not_in_comments_or_strings() {
        let text = concat!(
            "def area(shape):\n",
            "    \"\"\"Area of shape.width (in units).\n",
            "\n",
            "    Calls helper.compute(shape) first.\n",
            "    \"\"\"\n",
            "    # then math.floor(value) is taken\n",
            "    total = helper.compute(shape.width, shape.height)\n",
            "    log(\"area of (shape.name) is\", total)\n",
            "    return math.floor(total)\n",
        );
        let syntax = Syntax::parse(Lang::Python, text);
        let code: Vec<usize> = ["def ", "total = ", "log(", "return "]
            .iter()
            .map(|m| text.find(m).unwrap())
            .collect();
        let mut rng = Rng::new(5);
        let mut cut = Vec::new();
        for _ in 0..2000 {
            cut.extend(mid_line_hole(text, &syntax, &mut rng));
            cut.extend(line_hole(text, &syntax, &mut rng));
        }
        assert!(!cut.is_empty());
        for (cursor, _) in &cut {
            let line_start = text[..*cursor].rfind('\n').map_or(0, |i| i + 1);
            let line = text[line_start..].lines().next().unwrap();
            assert!(
                code.iter()
                    .any(|c| (line_start..line_start + line.len()).contains(c)),
                "hole in prose: {line:?} at {cursor}"
            );
            // Inside `log("area of (shape.name) is", …)` only the call's own `(` counts.
            assert!(!syntax.in_prose(*cursor), "{line:?}");
        }
        // Every kind of code line was offered.
        for c in &code {
            let end = c + text[*c..].find('\n').unwrap();
            assert!(cut.iter().any(|(k, _)| (*c..end).contains(k)));
        }
        let doc_line = text.find("    Calls").unwrap();
        assert!(syntax.line_is_prose(text, doc_line));
        assert!(syntax.line_is_prose(text, text.find("    # then").unwrap()));
        assert!(!syntax.line_is_prose(text, code[1]));
    }

    #[test]
    fn cross_file_holes_start_at_the_first_use_of_a_name_another_file_defines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("shapes.py"),
            "class Canvas:\n    def paint_area(self, w):\n        return w\n\n\ndef make_canvas(size):\n    return Canvas()\n\n\ndef clear_canvas(c):\n    return c\n\n\ncolors = []\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("colors.py"),
            "def mix(a, b):\n    return a\n",
        )
        .unwrap();
        let main = concat!(
            "import shapes\n",
            "from shapes import make_canvas\n",
            "from colors import mix\n",
            "\n",
            "def run(width):\n",
            "    # make_canvas(width) is called once\n",
            "    width = width + 1\n",
            "    canvas = make_canvas(width)\n",
            "    canvas.paint_area(width)\n",
            "    other = make_canvas(2)\n",
            "    shapes.clear_canvas(other)\n",
            "    return run_local(canvas)\n",
            "\n",
            "def run_local(c, colors):\n",
            "    return mix(c, colors)\n",
        );
        std::fs::write(dir.path().join("main.py"), main).unwrap();
        let mut index = Index::new(dir.path(), moat_index::WalkOptions::default()).unwrap();
        index.refresh();
        let syntax = Syntax::parse(Lang::Python, main);
        let mut rng = Rng::new(1);
        let mut cut: Vec<&str> = (0..200)
            .filter_map(|_| cross_file_hole(&index, "main.py", main, &syntax, &mut rng))
            .map(|(c, e)| &main[c..e])
            .collect();
        cut.sort();
        cut.dedup();
        // The imported function at its first call (not in the import, the comment, or its
        // second call) and the member of the imported module; not `paint_area` (written on
        // a local, whose type only a type checker knows), not `width` (a local), not
        // `run_local` (defined here), not the parameter `colors` (the imported module
        // path has its name, and shapes.py defines it, but the import binds only `mix`).
        assert_eq!(
            cut,
            [
                "clear_canvas(other)",
                "make_canvas(width)",
                "mix(c, colors)"
            ]
        );
        let holes = sample_from(&index, &["main.py".into()], 5, 1, &[HoleKind::CrossFile]);
        assert_eq!(holes.len(), 3, "only three places qualify");
        assert!(holes.iter().all(|h| h.kind == HoleKind::CrossFile));
        assert_eq!(HoleKind::from_name("cross_file"), Some(HoleKind::CrossFile));
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let (mut a, mut b) = (Rng::new(9), Rng::new(9));
        let xs: Vec<usize> = (0..20).map(|_| a.below(1000)).collect();
        let ys: Vec<usize> = (0..20).map(|_| b.below(1000)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|x| *x != xs[0]));
    }
}
