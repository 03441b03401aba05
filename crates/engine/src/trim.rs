//! First cut of completion trimming, by plain text and indentation. Small models rarely stop
//! after the hole: they run on into the following code. The context layer refines this with
//! syntax; the engine uses it to stop generating early.

#[derive(Debug, Clone)]
pub struct Trimmer {
    /// Text after the cursor up to the end of its line.
    rest_of_line: String,
    /// Text before the cursor on its line.
    line_prefix: String,
    /// The first non-blank line of the suffix, trimmed: output that reaches it has run on.
    next_line: String,
}

/// Leading whitespace width (a tab counts 4).
pub(crate) fn indent(s: &str) -> usize {
    s.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

fn opens_block(line: &str) -> bool {
    let t = line.trim_end();
    [":", "{", "(", "[", "=>", "->", "do", "then"]
        .iter()
        .any(|o| t.ends_with(o))
}

fn only_closers(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && (t.chars().all(|c| matches!(c, '}' | ')' | ']' | ';' | ',')) || t == "end")
}

impl Trimmer {
    pub fn new(prefix: &str, suffix: &str) -> Self {
        let rest_of_line = suffix.split('\n').next().unwrap_or("").to_string();
        let line_prefix = prefix.rsplit('\n').next().unwrap_or("").to_string();
        let next_line = suffix
            .split('\n')
            .skip(1)
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string();
        Self {
            rest_of_line,
            line_prefix,
            next_line,
        }
    }

    /// A hole with code after the cursor on its line takes one line at most.
    pub fn single_line(&self) -> bool {
        !self.rest_of_line.trim().is_empty()
    }

    /// Byte offset at which `text` is complete, once the text shows it; `None` while more
    /// output could still belong to the completion.
    pub fn end(&self, text: &str) -> Option<usize> {
        if self.single_line() {
            return text.find('\n');
        }
        let mut base: Option<usize> = None;
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if !line.ends_with('\n') {
                break; // incomplete: decide when it is whole
            }
            let body = &line[..line.len() - 1];
            let start = offset;
            offset += line.len();
            let full = if i == 0 {
                format!("{}{}", self.line_prefix, body)
            } else {
                body.to_string()
            };
            if full.trim().is_empty() {
                continue;
            }
            let repeats_suffix = !self.next_line.is_empty() && full.trim() == self.next_line;
            if repeats_suffix && i > 0 {
                return Some(start.saturating_sub(1));
            }
            match base {
                None => {
                    let ind = indent(&full);
                    // At the end of an opener line (`def f():|`) the body must be indented deeper.
                    let opener = i == 0 && body.trim().is_empty() && opens_block(&full);
                    base = Some(if opener { ind + 1 } else { ind });
                }
                Some(b) if indent(&full) < b => {
                    if only_closers(&full) {
                        return Some(offset - 1); // the closer ends the block: keep it
                    }
                    return Some(start.saturating_sub(1));
                }
                Some(_) => {}
            }
        }
        None
    }

    /// The final text once generation has stopped, for whatever reason.
    pub fn finish(&self, text: &str) -> String {
        let mut t = match self.end(&format!("{text}\n")) {
            Some(end) => &text[..end.min(text.len())],
            None => text,
        }
        .trim_end()
        .to_string();
        if self.single_line() {
            // Do not repeat what already follows the cursor, e.g. a closing `)`.
            let rest = self.rest_of_line.trim();
            if t.ends_with(rest) {
                t.truncate(t.len() - rest.len());
                t = t.trim_end().to_string();
            }
        }
        if t.trim().is_empty() {
            String::new()
        } else {
            t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // (prefix, suffix, raw model output, expected completion)
    const CASES: &[(&str, &str, &str, &str)] = &[
        // Mid-line: finish the line only.
        ("x = foo(", ")\nprint(x)\n", "a, b)\nprint(x)\n", "a, b"),
        // Python body: stop where the suffix starts again.
        (
            "def fib(n):\n    ",
            "\n\nprint(fib(10))\n",
            "if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\nprint(fib(10))\n",
            "if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)",
        ),
        // Python body: stop at a dedent into a new definition.
        (
            "def add(a, b):\n",
            "",
            "    return a + b\n\ndef sub(a, b):\n    return a - b\n",
            "    return a + b",
        ),
        // Brace language: the closing brace ends the block and is kept when the suffix has none.
        (
            "fn main() {\n",
            "",
            "    println!(\"hi\");\n}\n\nfn other() {}\n",
            "    println!(\"hi\");\n}",
        ),
        // Brace language: the closing brace is already in the suffix.
        ("func f() int {\n\t", "\n}\n", "return 1\n}\n", "return 1"),
        // Nothing useful: return nothing rather than whitespace.
        ("a = 1\n", "", "   \n\n", ""),
    ];

    #[test]
    fn trims_like_a_person_would() {
        for (prefix, suffix, raw, want) in CASES {
            let got = Trimmer::new(prefix, suffix).finish(raw);
            assert_eq!(&got, want, "prefix {prefix:?} raw {raw:?}");
        }
    }

    #[test]
    fn end_is_found_while_streaming() {
        let t = Trimmer::new("def add(a, b):\n", "");
        assert_eq!(t.end("    return a + b\n"), None);
        assert_eq!(t.end("    return a + b\n\ndef"), None);
        assert_eq!(t.end("    return a + b\n\ndef sub():\n"), Some(17));
        let single = Trimmer::new("x = (", ")");
        assert!(single.single_line());
        assert_eq!(single.end("1 + 2"), None);
        assert_eq!(single.end("1 + 2\n"), Some(5));
    }
}
