//! The repeat guard: small models often fill a hole with the line that follows it (the
//! first line of the suffix, indentation and all), which is never what was missing there.
//! The generator backs up to the token that began such a line and takes the next best token
//! instead (`GenerateParams::avoid`).
//!
//! Four more first lines are refused the same way:
//! - one that only closes brackets (`}`, `});`) above a deeper next line, which the
//!   closer would leave outside any block: where that line is as deep as the one above the
//!   hole, the generation backs up to the line's newline so that it goes on (`} else {`),
//!   else to its indentation (it closes too much); or one as deep as a closer that
//!   follows, which would close one block twice: backed up to its indentation;
//! - one shallower than the line above it and no deeper than a closer that follows (`}`,
//!   `)`, `]` starting the next line) or a clause that goes on from the block's statement
//!   (`else:`, `elif`, `except`, `finally`): it would sit outside the block it is written
//!   in, or close it before its own closer (the 0.5B ends a Java method early so, and
//!   starts a `main` below it), or cut an `if` from its `else` (a syntax error);
//! - where only one line will be kept (`AvoidLine::one_line`), one that opens a block the
//!   next line does not enter: the block would stay empty;
//! - one that ends its block (`return`, `pass`, `raise`, `break`, `continue`, `throw`) as
//!   deep as the next line of code, which would then never run (the 0.5B returns early
//!   right after a Python docstring so: `return len(string)` above `for c in string:`). A
//!   next line that continues the statement (`elif`, `else`, `except`, `case`, a closer)
//!   or that is a declaration the language hoists (`function`, Rust's items) does not
//!   count, nor does a line the user began (the head).
//!
//! No canonical line of HumanEval-FIM's 4,792 breaks any of them (checked by
//! `crates/eval/tests/guard_vs_canonical.rs`).

use crate::trim::indent;

/// The first lines a completion should not write, told by the text around the hole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvoidLine {
    /// The cursor's line up to the cursor: the generation continues it.
    pub head: String,
    /// The suffix's first line with any non-blank character, as written (trailing blanks
    /// aside); empty when there is none.
    pub line: String,
    /// Indentation of the last line before the hole with any non-blank character (the head
    /// included), in columns.
    pub above: usize,
    /// Only the first written line will be kept, with `line` after it (empty: nothing comes
    /// after it): a first line that opens a block (ends in `{`, `(`, `[` or `:`) is refused
    /// unless `line` is indented deeper.
    pub one_line: bool,
}

/// What the generation so far says about its first written line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// That line is not finished yet.
    Pending,
    /// It is finished and none of the rules refuses it.
    Fine,
    /// It is refused; its text starts at this byte of the generation.
    Refused(usize),
}

impl AvoidLine {
    /// For a hole between `prefix` and `suffix`; none when the suffix has no written line.
    pub fn after(prefix: &str, suffix: &str) -> Option<Self> {
        suffix
            .split('\n')
            .any(|l| !l.trim().is_empty())
            .then(|| Self::around(prefix, suffix))
    }

    /// The guard for a hole of one line between `prefix` and `suffix`, of which only the
    /// first written line is kept. At the end of the text (no written line after the hole)
    /// no block can be entered, so any opener is refused.
    pub fn one_line(prefix: &str, suffix: &str) -> Self {
        Self {
            one_line: true,
            ..Self::around(prefix, suffix)
        }
    }

    fn around(prefix: &str, suffix: &str) -> Self {
        let written = |l: &&str| !l.trim().is_empty();
        let line = suffix.split('\n').find(written).unwrap_or("");
        Self {
            head: prefix[prefix.rfind('\n').map_or(0, |i| i + 1)..].to_string(),
            line: line.trim_end().to_string(),
            above: prefix.rsplit('\n').find(written).map_or(0, indent),
            one_line: false,
        }
    }

    /// Whether a finished first line is refused, and for what: its indentation (the
    /// generation backs up to the line's start) or its text (to its first character).
    /// `begun`: the line began before the hole (the head has code on it).
    fn refuses(&self, line: &str, begun: bool) -> Option<Refusal> {
        let line = line.trim_end();
        if line == self.line {
            return Some(Refusal::Text);
        }
        let code = line.trim_start();
        if self.closes_below(code)
            && indent(line) <= indent(&self.line)
            && indent(line) < self.above
        {
            return Some(Refusal::Indent);
        }
        if closers_only(code) && !self.line.is_empty() {
            let next = indent(&self.line);
            // Next as deep as the line above: one body ends and a sibling follows (`} else
            // {`). Shallower than that: the closer closes too many blocks.
            if next > indent(line) {
                return Some(if next >= self.above {
                    Refusal::End
                } else {
                    Refusal::Indent
                });
            }
            if next == indent(line) && self.line.trim_start().starts_with(['}', ')', ']']) {
                return Some(Refusal::Indent);
            }
        }
        if !begun && ends_block(code) && self.unreachable_at(indent(line)) {
            return Some(Refusal::Text);
        }
        let comment = is_comment(code);
        // `case 'a':` above `case 'e':` shares its body (a C-family fall-through label).
        let labels = |l: &str| matches!(first_word(l), "case" | "default");
        (self.one_line
            && !comment
            && code.ends_with(['{', '(', '[', ':'])
            && indent(&self.line) <= indent(line)
            && !(labels(code) && labels(self.line.trim_start())))
        .then_some(Refusal::Text)
    }

    /// Whether the suffix's first line ends the block above the hole, so that the first line
    /// `code` (indentation stripped) must stay inside it: a closer, or a clause that goes on
    /// from the block's statement (`else:`, `except …:`), which nothing but a comment or
    /// another such clause may precede at its own depth.
    fn closes_below(&self, code: &str) -> bool {
        let next = self.line.trim_start();
        if next.starts_with(['}', ')', ']']) {
            return true;
        }
        const CLAUSES: &[&str] = &["elif", "else", "except", "finally"];
        CLAUSES.contains(&first_word(next))
            && !CLAUSES.contains(&first_word(code))
            && !code.starts_with(['}', ')', ']'])
            && !is_comment(code)
    }

    /// Whether a line that ends its block at `depth` columns would leave the suffix's first
    /// line unreachable.
    fn unreachable_at(&self, depth: usize) -> bool {
        let next = self.line.trim_start();
        const GOES_ON: &[&str] = &[
            "elif",
            "else",
            "except",
            "finally",
            "case",
            "default",
            "catch",
            "function",
            "async",
            "fn",
            "pub",
            "struct",
            "enum",
            "impl",
            "use",
            "mod",
            "trait",
            "type",
            "const",
            "static",
            "macro_rules",
        ];
        let label = next
            .strip_suffix(':')
            .is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_alphanumeric() || c == '_'));
        // A next line that starts with an operator (`? a : b`, `.map(…)`, `+ x`) goes on
        // with the statement; a Python `pass` is harmless unreached (the set's stubs end
        // so after their `return`).
        let word_or_string = next.starts_with(|c: char| {
            c.is_alphanumeric() || matches!(c, '_' | '$' | '"' | '\'' | '`')
        });
        !next.is_empty()
            && indent(&self.line) == depth
            && word_or_string
            && next != "pass"
            && !is_comment(next)
            && !GOES_ON.contains(&first_word(next))
            && !label
    }

    /// Judges the first line that the generation `text` writes a non-blank character on
    /// (the cursor's line counts with its head). `ended`: no more text will come, so an
    /// unterminated line is finished.
    pub fn verdict(&self, text: &str, ended: bool) -> Verdict {
        let mut start = 0; // of the current line, in `text`
        let mut head = self.head.as_str();
        loop {
            let end = text[start..].find('\n').map(|i| start + i);
            let piece = &text[start..end.unwrap_or(text.len())];
            let Some(first) = piece.find(|c: char| !c.is_whitespace()) else {
                match end {
                    Some(e) => {
                        start = e + 1;
                        head = "";
                        continue;
                    }
                    None => return Verdict::Pending,
                }
            };
            if end.is_none() && !ended {
                return Verdict::Pending;
            }
            let begun = !head.trim().is_empty();
            return match self.refuses(&format!("{head}{piece}"), begun) {
                // A line that continues the head has the head's indentation: not refusable
                // by it, so `start` is a line's start here.
                Some(Refusal::Indent) => Verdict::Refused(start),
                Some(Refusal::Text) => Verdict::Refused(start + first),
                // The line must go on (`} else {`): back up to its newline. A generation
                // that has ended there has no token to take back.
                Some(Refusal::End) => end.map_or(Verdict::Fine, Verdict::Refused),
                None => Verdict::Fine,
            };
        }
    }
}

fn first_word(code: &str) -> &str {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("")
}

/// Whether a line of code (indentation stripped) only closes brackets (`}`, `});`, `],`).
fn closers_only(code: &str) -> bool {
    let body = code.trim_end_matches([';', ',']);
    !body.is_empty() && body.chars().all(|c| matches!(c, '}' | ')' | ']'))
}

fn is_comment(code: &str) -> bool {
    code.starts_with('#') || code.starts_with("//") || code.starts_with("/*")
}

/// Whether a line of code (indentation stripped) is a statement after which its block runs
/// no further.
fn ends_block(code: &str) -> bool {
    const ENDERS: &[&str] = &["return", "pass", "raise", "break", "continue", "throw"];
    ENDERS.iter().any(|k| {
        code.strip_prefix(k)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    })
}

enum Refusal {
    Indent,
    Text,
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(prefix: &str, suffix: &str) -> AvoidLine {
        AvoidLine::after(prefix, suffix).expect("a written line")
    }

    #[test]
    fn the_avoided_line_is_the_suffixs_first_written_line() {
        let g = guard("x = 1\n    ", "\n\n    return answer;  \n}");
        assert_eq!(g.head, "    ");
        assert_eq!(g.line, "    return answer;");
        assert_eq!(AvoidLine::after("a", " \n\t\n"), None);
    }

    #[test]
    fn a_hole_on_its_own_line_judges_the_line_after_the_newline() {
        // The HumanEval-FIM shape: the prompt ends at the end of the line before.
        let g = guard("    for x in y:", "        return answer;\n");
        assert_eq!(g.verdict("\n        return ans", false), Verdict::Pending);
        assert_eq!(
            g.verdict("\n        return answer;\n", false),
            Verdict::Refused(9)
        );
        assert_eq!(
            g.verdict("\n        return answer;", true),
            Verdict::Refused(9)
        );
        assert_eq!(
            g.verdict("\n            count += 1\n", false),
            Verdict::Fine
        );
    }

    #[test]
    fn indentation_tells_a_closer_from_the_next_one() {
        let g = guard("        }", "    }\n}");
        assert_eq!(g.verdict("\n        }\n", false), Verdict::Fine);
        assert_eq!(g.verdict("\n    }\n", false), Verdict::Refused(5));
    }

    #[test]
    fn the_cursors_line_counts_with_its_head() {
        let g = guard("def f():\n    ret", "\n    return 2");
        assert_eq!(g.verdict("urn 2\n", false), Verdict::Refused(0));
        assert_eq!(g.verdict("urn 1\n", false), Verdict::Fine);
        // Blank output first: the judged line is the next one written.
        let g = guard("def f():\n    ", "\n    return 2");
        assert_eq!(g.verdict("\n", false), Verdict::Pending);
        assert_eq!(g.verdict("\n    return 2\n", false), Verdict::Refused(5));
    }
}

#[cfg(test)]
mod rules {
    use super::*;

    #[test]
    fn a_line_outside_the_block_before_its_closer_is_refused() {
        // HumanEval-FIM Java: the method's last statement is missing; the 0.5B ends the
        // method there and writes a comment for a `main` below it.
        let g = AvoidLine::after("            }\n        }", "    }\n}\n").unwrap();
        assert_eq!(g.above, 8);
        // Backed up to the line's start: its indentation is what is wrong.
        let comment = "\n    // Main method for testing\n";
        assert_eq!(g.verdict(comment, false), Verdict::Refused(1));
        assert_eq!(g.verdict("\n        return res;\n", false), Verdict::Fine);
        // Closing more than the next line does is no better; a deeper closer is fine, and
        // so is a line as deep as the one above (indentation the model got wrong on a
        // right line).
        assert_eq!(g.verdict("\n}\n", false), Verdict::Refused(1));
        assert_eq!(g.verdict("\n        }\n", false), Verdict::Fine);
        let g = AvoidLine::after("    {\n    count++;", "    }\n").unwrap();
        assert_eq!(g.verdict("\n    count++;\n", false), Verdict::Fine);
        // Not before a closer: anything goes.
        let g = AvoidLine::after("        }", "    return x;\n").unwrap();
        assert_eq!(g.verdict("\n    // done\n", false), Verdict::Fine);
    }

    #[test]
    fn a_closer_must_leave_the_next_line_in_a_block_and_close_once() {
        // HumanEval-FIM JavaScript: `}else{` wanted, the 0.5B closes the `if` only.
        let g = AvoidLine::after("\tif(x){\n\t\treturn true;", "\t\treturn false;\n\t}\n").unwrap();
        let text = "\n\t}\n";
        assert_eq!(g.verdict(text, false), Verdict::Refused(3));
        assert_eq!(g.verdict("\n\t}else{\n", false), Verdict::Fine);
        // Ended without a newline: nothing to take back.
        assert_eq!(g.verdict("\n\t}", true), Verdict::Fine);
        // The `if` body's statement wanted, the 0.5B writes a closer before `} else {`.
        let g = AvoidLine::after("    if (a) {", "    } else {\n").unwrap();
        assert_eq!(g.verdict("\n    }\n", false), Verdict::Refused(1));
        assert_eq!(g.verdict("\n      a();\n", false), Verdict::Fine);
        // Between an inner closer and the outer body's next line: too shallow (the 0.5B
        // closes a `while` where a `for` ends).
        let g = AvoidLine::after("        for (;;) {\n            }", "        next();\n").unwrap();
        assert_eq!(g.verdict("\n    }\n", false), Verdict::Refused(1));
        assert_eq!(g.verdict("\n        }\n", false), Verdict::Fine);
        // A closer deeper than the next one, or above a shallower line, is fine.
        let g = AvoidLine::after("        a();", "  }\n").unwrap();
        assert_eq!(g.verdict("\n    });\n", false), Verdict::Fine);
        let g = AvoidLine::after("        a();", "  b();\n").unwrap();
        assert_eq!(g.verdict("\n    ]\n", false), Verdict::Fine);
    }

    #[test]
    fn a_line_between_a_block_and_its_else_is_refused() {
        // HumanEval-FIM Python: the `if` body's last line, written at the `else:`'s depth.
        let prefix = "        if n % d == 0:\n            factors.append(d)";
        let g = AvoidLine::after(prefix, "        else:\n            d += 1\n").unwrap();
        assert_eq!(g.verdict("\n        n //= d\n", false), Verdict::Refused(1));
        assert_eq!(g.verdict("\n    n //= d\n", false), Verdict::Refused(1));
        assert_eq!(g.verdict("\n            n //= d\n", false), Verdict::Fine);
        // Another clause, a closer or a comment may come before it.
        assert_eq!(g.verdict("\n        elif n < 0:\n", false), Verdict::Fine);
        assert_eq!(g.verdict("\n        # odd\n", false), Verdict::Fine);
        let g = AvoidLine::after(prefix, "        except ValueError:\n").unwrap();
        assert_eq!(g.verdict("\n        n //= d\n", false), Verdict::Refused(1));
        // Brace languages' `else` on its own line, after the closer.
        let g = AvoidLine::after("    if (x) {\n        y();", "    else {\n").unwrap();
        assert_eq!(g.verdict("\n    z();\n", false), Verdict::Refused(1));
        assert_eq!(g.verdict("\n    }\n", false), Verdict::Fine);
        // `elsewhere` is no clause.
        let g = AvoidLine::after(prefix, "        elsewhere = 1\n").unwrap();
        assert_eq!(g.verdict("\n        n //= d\n", false), Verdict::Fine);
    }

    #[test]
    fn a_single_line_may_not_open_a_block_that_the_next_line_does_not_enter() {
        // HumanEval-FIM Java: the method's last statement is missing, the 0.5B starts a
        // `main` method instead.
        let g = AvoidLine::one_line("        }", "    }\n}\n");
        let main = "\n    public static void main(String[] args) {\n";
        assert_eq!(g.verdict(main, false), Verdict::Refused(1));
        assert_eq!(
            g.verdict("\n        while (b != 0) {\n", false),
            Verdict::Refused(9)
        );
        assert_eq!(g.verdict("\n        return res;\n", false), Verdict::Fine);
        // Python's opener, and a body that follows deeper.
        let g = AvoidLine::one_line("    x = 1", "    return x\n");
        assert_eq!(g.verdict("\n    if x:\n", false), Verdict::Refused(5));
        let g = AvoidLine::one_line("    x = 1", "        return x\n");
        assert_eq!(g.verdict("\n    if x:\n", false), Verdict::Fine);
        assert_eq!(g.verdict("\n    foo(\n", false), Verdict::Fine);
        // Fall-through labels share the next one's body.
        let g = AvoidLine::one_line("            case 'a':", "            case 'e':\n");
        assert_eq!(g.verdict("\n            case 'o':\n", false), Verdict::Fine);
        assert_eq!(
            g.verdict("\n            if (x) {\n", false),
            Verdict::Refused(13)
        );
        // Tabs count as four columns; comments open nothing.
        let g = AvoidLine::one_line("\tx = 1", "\treturn x\n");
        assert_eq!(g.verdict("\n    if x:\n", false), Verdict::Refused(5));
        assert_eq!(g.verdict("\n\t# note:\n", false), Verdict::Fine);
        // At the end of the file nothing can enter a block: the class's `}` is missing.
        let g = AvoidLine::one_line("        }\n    }", "\n");
        assert_eq!(g.verdict(main, false), Verdict::Refused(5));
        assert_eq!(g.verdict("\n}\n", false), Verdict::Fine);
        assert_eq!(g.verdict("\n}", true), Verdict::Fine);
    }

    #[test]
    fn a_line_that_makes_the_next_one_unreachable_is_refused() {
        // HumanEval-FIM Python: the 0.5B returns right after the docstring.
        let g = AvoidLine::after("    \"\"\"", "    for char in string:\n").unwrap();
        let early = "\n    return len(string)\n";
        assert_eq!(g.verdict(early, false), Verdict::Refused(5));
        assert_eq!(g.verdict("\n    pass\n", false), Verdict::Refused(5));
        assert_eq!(g.verdict("\n    length = 0\n", false), Verdict::Fine);
        // Deeper, it ends an inner block; a word that only begins with a keyword is no
        // keyword.
        assert_eq!(g.verdict("\n        return x\n", false), Verdict::Fine);
        assert_eq!(g.verdict("\n    return_value = 0\n", false), Verdict::Fine);
        assert_eq!(g.verdict("\n    passes = 0\n", false), Verdict::Fine);
        // Brace languages: the next line is code as deep.
        let g = AvoidLine::after("        }", "    y.sort();\n").unwrap();
        assert_eq!(g.verdict("\n    return x;\n", false), Verdict::Refused(5));
        assert_eq!(g.verdict("\n    throw e;\n", false), Verdict::Refused(5));
        assert_eq!(g.verdict("\n    break;\n", false), Verdict::Refused(5));
    }

    #[test]
    fn a_next_line_that_goes_on_from_a_return_keeps_it() {
        let fine = |suffix: &str| {
            let g = AvoidLine::after("    if x:", suffix).unwrap();
            g.verdict("\n    return x\n", false)
        };
        for next in [
            "    elif y:",
            "    else:",
            "    except ValueError:",
            "    finally:",
            "    }",
            "    } else {",
            "    case 2:",
            "    default:",
            "    function helper() {",
            "    fn helper() {}",
            "    # a comment",
            "    // a comment",
            "    #endif",
            "    retry:",
            "    @decorator",
            "    ? char.toUpperCase()",
            "    .map(f)",
            "    pass",
        ] {
            assert_eq!(fine(next), Verdict::Fine, "{next}");
        }
        assert_eq!(fine("    y = 2"), Verdict::Refused(5));
        // A line the user began is theirs.
        let g = AvoidLine::after("    \"\"\"\n    return ", "    y = 2\n").unwrap();
        assert_eq!(g.verdict("x\n", false), Verdict::Fine);
        let g = AvoidLine::after("x = 1\n    ret", "    y = 2\n").unwrap();
        assert_eq!(g.verdict("urn x\n", false), Verdict::Fine);
    }

    #[test]
    fn without_one_line_a_block_opener_is_fine() {
        // The block's body may follow in the completion itself.
        let g = AvoidLine::after("    x = 1;", "    return x;\n").unwrap();
        assert_eq!(g.verdict("\n    if (x) {\n", false), Verdict::Fine);
        let g = AvoidLine::one_line("    x = 1;", "    return x;\n");
        assert_eq!(g.verdict("\n    if (x) {\n", false), Verdict::Refused(5));
    }
}
