//! Post-processing of model output, once in the server so that every editor benefits.
//!
//! Small models rarely stop at the end of the hole: they run on into the following code,
//! repeat the suffix, or close brackets the suffix already closes. `Post` decides from the
//! syntax at the cursor how much text belongs there (`Shape`), tells the generation loop
//! when it has enough (`end`), and cuts the final text (`finish`): to whole statements or the
//! block, without the suffix's own lines or closers, and — where tree-sitter knows the
//! language — never to something that parses worse than the document did without it.

use crate::lines::indent;
use moat_index::{Extractor, Lang};
use std::cell::RefCell;
use tree_sitter::{Node, Tree};

/// How much text the cursor position calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Code follows the cursor on its line: finish the line only.
    Line,
    /// Between statements: one statement (a compound one with its block).
    Statement,
    /// After a block opener or inside an empty block: the block's body.
    Block,
}

/// Lines shown of a block at most (a body longer than this is left for the next request).
const MAX_LINES: usize = 40;
/// Lines of the document around the cursor that the syntax check parses.
const CHECK_BEFORE: usize = 150;
const CHECK_AFTER: usize = 80;

thread_local! {
    static EXTRACTOR: RefCell<Extractor> = RefCell::new(Extractor::new());
}

fn parse(lang: Lang, text: &str) -> Option<Tree> {
    EXTRACTOR.with(|e| e.borrow_mut().parse(lang, text))
}

#[derive(Debug, Clone)]
pub struct Post {
    lang: Option<Lang>,
    shape: Shape,
    /// The cursor line before the cursor.
    line_prefix: String,
    /// The cursor line after the cursor.
    rest_of_line: String,
    /// The first non-blank line after the cursor line, trimmed.
    next_line: String,
    /// Indentation of the next non-blank line (0 when there is none).
    next_indent: usize,
    /// Indentation of the cursor's statement: where the completion's own lines start.
    stmt_indent: usize,
    /// The document near the cursor, for the syntax check.
    before: String,
    after: String,
}

fn is_closer(c: char) -> bool {
    matches!(c, ')' | ']' | '}')
}

fn only_closers(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty()
        && t.chars()
            .all(|c| is_closer(c) || matches!(c, ';' | ',' | ' '))
}

/// Ends a line so that the next one continues the same statement or opens a block.
fn continues(line: &str, lang: Option<Lang>) -> bool {
    let t = strip_line_comment(line.trim_end(), lang);
    let t = t.trim_end();
    if t.is_empty() {
        return false;
    }
    const TAILS: [&str; 18] = [
        ",", "(", "[", "{", "\\", "+", "-", "*", "/", "=", "&&", "||", "and", "or", "?", ".", "=>",
        "->",
    ];
    TAILS.iter().any(|x| t.ends_with(x)) || opens_block(t, lang)
}

fn opens_block(line: &str, lang: Option<Lang>) -> bool {
    let t = strip_line_comment(line.trim_end(), lang);
    let t = t.trim_end();
    t.ends_with('{')
        || (lang == Some(Lang::Python) && t.ends_with(':'))
        || t.ends_with("=>")
        || t.ends_with(" do")
        || t.ends_with(" then")
}

fn strip_line_comment(line: &str, lang: Option<Lang>) -> &str {
    let marker = if lang == Some(Lang::Python) {
        "#"
    } else {
        "//"
    };
    // Only a marker outside quotes counts; a rough scan is enough for a line's end.
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q && prev != '\\' => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if line[i..].starts_with(marker) => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

/// Bracket depth change of `s`, outside strings and line comments.
fn depth(s: &str, lang: Option<Lang>) -> i32 {
    let mut d = 0;
    for line in s.split('\n') {
        let code = strip_line_comment(line, lang);
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in code.chars() {
            match quote {
                Some(q) if c == q && prev != '\\' => quote = None,
                Some(_) => {}
                None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
                None if matches!(c, '(' | '[' | '{') => d += 1,
                None if is_closer(c) => d -= 1,
                None => {}
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
        }
    }
    d
}

/// ERROR and MISSING nodes in a tree: how badly the text parses.
fn errors(tree: &Tree) -> usize {
    let mut n = 0;
    let mut cursor = tree.walk();
    'walk: loop {
        let node: Node = cursor.node();
        if node.is_error() || node.is_missing() {
            n += 1;
        }
        if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    n
}

/// Whether the cursor sits in a block with nothing but comments in it.
fn in_empty_block(lang: Lang, before: &str, after: &str) -> bool {
    let text = format!("{before}{after}");
    let Some(tree) = parse(lang, &text) else {
        return false;
    };
    let at = before.len();
    let mut node = tree
        .root_node()
        .descendant_for_byte_range(at, at)
        .unwrap_or(tree.root_node());
    loop {
        let k = node.kind();
        let blockish = k.contains("block")
            || k.ends_with("body")
            || k == "compound_statement"
            || k == "declaration_list"
            || k == "statement_block";
        if blockish && node.start_byte() < at && at <= node.end_byte() {
            let mut c = node.walk();
            let has_code = node
                .named_children(&mut c)
                .any(|ch| !ch.kind().contains("comment"));
            return !has_code;
        }
        match node.parent() {
            Some(p) => node = p,
            None => return false,
        }
    }
}

impl Post {
    pub fn new(lang: Option<Lang>, prefix: &str, suffix: &str) -> Self {
        let line_prefix = prefix.rsplit('\n').next().unwrap_or("").to_string();
        let rest_of_line = suffix.split('\n').next().unwrap_or("").to_string();
        let next = suffix.split('\n').skip(1).find(|l| !l.trim().is_empty());
        let next_line = next.map(|l| l.trim().to_string()).unwrap_or_default();
        let next_indent = next.map(indent).unwrap_or(0);
        let before_start = prefix
            .rmatch_indices('\n')
            .nth(CHECK_BEFORE)
            .map(|(i, _)| i + 1)
            .unwrap_or(0);
        let after_end = suffix
            .match_indices('\n')
            .nth(CHECK_AFTER)
            .map(|(i, _)| i + 1)
            .unwrap_or(suffix.len());
        let before = prefix[before_start..].to_string();
        let after = suffix[..after_end].to_string();
        // The statement's indentation: the cursor line's, or for a blank cursor line the
        // previous non-blank line's (deeper after an opener).
        let prev_line = prefix
            .rsplit('\n')
            .skip(1)
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        // A block whose body is already there (the suffix goes on deeper than its opener)
        // takes one statement, not a second body.
        let body_follows = |opener: &str| {
            !next_line.is_empty() && next_indent > indent(opener) && !only_closers(&next_line)
        };
        let shape = if !rest_of_line.trim().is_empty() && !only_closers(&rest_of_line) {
            Shape::Line
        } else if !line_prefix.trim().is_empty() {
            if opens_block(&line_prefix, lang) && !body_follows(&line_prefix) {
                Shape::Block
            } else if opens_block(&line_prefix, lang) {
                Shape::Statement
            } else if continues(&line_prefix, lang) || !rest_of_line.trim().is_empty() {
                Shape::Line
            } else {
                Shape::Statement
            }
        } else if (opens_block(prev_line, lang) && !body_follows(prev_line))
            || lang.is_some_and(|l| in_empty_block(l, &before, &after))
        {
            Shape::Block
        } else {
            Shape::Statement
        };
        let stmt_indent = if line_prefix.trim().is_empty() {
            indent(&line_prefix).max(match shape {
                Shape::Block if line_prefix.is_empty() => indent(prev_line) + 1,
                _ => 0,
            })
        } else {
            indent(&line_prefix)
        };
        Self {
            lang,
            shape,
            line_prefix,
            rest_of_line,
            next_line,
            next_indent,
            stmt_indent,
            before,
            after,
        }
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Byte offset at which `text` (the output so far) is complete, once the text shows
    /// it; `None` while more output could still belong to the completion.
    pub fn end(&self, text: &str) -> Option<usize> {
        if self.shape == Shape::Line {
            return text.find('\n');
        }
        let mut offset = 0;
        let mut started = false;
        let mut base: Option<usize> = None;
        let mut d = depth(&self.line_prefix, self.lang).max(0);
        let mut open_block = false;
        let mut lines = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if !line.ends_with('\n') {
                break; // decide when the line is whole
            }
            let body = &line[..line.len() - 1];
            let start = offset;
            offset += line.len();
            let full = if i == 0 {
                format!("{}{body}", self.line_prefix)
            } else {
                body.to_string()
            };
            // The cursor line itself is not the completion's: output that starts with a
            // newline begins on the next line.
            if full.trim().is_empty() || (i == 0 && body.trim().is_empty()) {
                continue;
            }
            let cut_before = Some(start.saturating_sub(1));
            let ind = indent(&full);
            // The suffix's next line again: the hole is filled.
            let fresh_line = i > 0 || self.line_prefix.trim().is_empty();
            // (Closers repeat only at the same indentation: `}` at 4 is not `}` at 0.)
            let same_closer = !only_closers(&full) || ind == self.next_indent;
            if fresh_line
                && !self.next_line.is_empty()
                && full.trim() == self.next_line
                && same_closer
            {
                return cut_before;
            }
            let b = *base.get_or_insert(match self.shape {
                Shape::Block => ind.max(self.stmt_indent),
                _ => ind,
            });
            if i > 0 && ind < b && started {
                // Leaving the block: keep a closer that balances it, unless the suffix
                // closes it already.
                if only_closers(&full) && d > 0 && !self.suffix_closes(ind) {
                    return Some(offset - 1);
                }
                return cut_before;
            }
            // A compound statement is over when a line at its own indentation neither
            // closes it (`}`) nor continues it (`else`, `except`…).
            if self.shape == Shape::Statement && open_block && ind == b && d <= 0 {
                let t = full.trim_start();
                let continues_it = ["else", "elif", "except", "finally", "catch"]
                    .iter()
                    .any(|k| t.starts_with(k));
                if !t.starts_with(is_closer) && !continues_it {
                    return cut_before;
                }
            }
            started = true;
            lines += 1;
            d += depth(body, self.lang);
            if opens_block(&full, self.lang) {
                open_block = true;
                // The block's body is in the suffix already (it is indented deeper than
                // this opener): the opener is the completion.
                if lines == 1 && !self.next_line.is_empty() && self.next_indent > ind {
                    return Some(offset - 1);
                }
            }
            let complete = d <= 0 && !continues(&full, self.lang);
            if self.shape == Shape::Statement && complete {
                // A simple statement, or a compound one whose block closed on the opener's
                // indentation.
                let closed = open_block && ind == b && full.trim_start().starts_with(is_closer);
                if !open_block || closed {
                    return Some(offset - 1);
                }
            }
            if d < 0 {
                // Closed more than was opened: a closer as the whole statement ends the
                // enclosing block (unless the suffix does); after code, the rest belongs to
                // the enclosing code.
                let alone = lines == 1 && only_closers(&full) && !self.suffix_closes(ind);
                return if only_closers(&full) && !alone {
                    cut_before
                } else {
                    Some(offset - 1)
                };
            }
            if lines >= MAX_LINES {
                return Some(offset - 1);
            }
        }
        None
    }

    /// Whether the suffix's next line closes a block at indentation `ind` already.
    fn suffix_closes(&self, ind: usize) -> bool {
        self.next_line.starts_with(is_closer) && self.next_indent == ind
    }

    /// The final text once generation has stopped, for whatever reason. Empty rather than
    /// junk.
    pub fn finish(&self, text: &str) -> String {
        let cut = match self.end(&format!("{text}\n")) {
            Some(end) => &text[..end.min(text.len())],
            None => text,
        };
        let mut t: String = cut
            .split('\n')
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string();
        if self.shape == Shape::Line {
            t = self.drop_duplicate_closers(t);
        } else {
            // A last line of closers that the suffix's next line repeats.
            if let Some((head, last)) = t.rsplit_once('\n') {
                if only_closers(last) && self.suffix_closes(indent(last)) {
                    t = head.trim_end().to_string();
                }
            }
        }
        if t.trim().is_empty() || t.trim() == self.rest_of_line.trim() {
            return String::new();
        }
        self.syntax_checked(t)
    }

    /// On one line: closers at the end of the completion that the rest of the line has
    /// already, and the rest of the line repeated whole.
    fn drop_duplicate_closers(&self, mut t: String) -> String {
        let rest = self.rest_of_line.trim();
        if !rest.is_empty() && t.ends_with(rest) && t.len() > rest.len() {
            let head = t[..t.len() - rest.len()].to_string();
            // Only when the completion then balances without them.
            if depth(&format!("{}{head}", self.line_prefix), self.lang)
                >= depth(&format!("{}{t}", self.line_prefix), self.lang)
            {
                t = head;
            }
        }
        let mut rest_closers = rest.chars().filter(|c| is_closer(*c)).count();
        while rest_closers > 0 && t.ends_with(is_closer) {
            let line_depth = depth(&format!("{}{t}", self.line_prefix), self.lang);
            let rest_depth = depth(rest, self.lang);
            // The line with the rest would close more than it opened: drop our closer.
            if line_depth + rest_depth >= 0 {
                break;
            }
            t.pop();
            rest_closers -= 1;
        }
        t.trim_end().to_string()
    }

    /// The longest line-prefix of `t` that parses no worse than the document without it;
    /// empty when even its first line makes things worse.
    fn syntax_checked(&self, t: String) -> String {
        let Some(lang) = self.lang else {
            return t;
        };
        let count = |middle: &str| -> Option<usize> {
            let doc = format!("{}{middle}{}", self.before, self.after);
            parse(lang, &doc).map(|tree| errors(&tree))
        };
        let Some(baseline) = count("") else {
            return t;
        };
        let ends: Vec<usize> = t
            .match_indices('\n')
            .map(|(i, _)| i)
            .chain([t.len()])
            .collect();
        let mut best: Option<(usize, usize)> = None; // (errors, end)
        for &end in ends.iter().rev() {
            let cand = &t[..end];
            if cand.trim().is_empty() {
                continue;
            }
            let Some(e) = count(cand) else { continue };
            if best.is_none_or(|(b, _)| e < b) {
                best = Some((e, end));
            }
            if e == 0 {
                break;
            }
        }
        match best {
            Some((e, end)) if e <= baseline => t[..end].trim_end().to_string(),
            _ => String::new(),
        }
    }
}
