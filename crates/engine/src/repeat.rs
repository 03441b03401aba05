//! The repeat guard: small models often fill a hole with the line that follows it (the
//! first line of the suffix, indentation and all), which is never what was missing there.
//! The generator backs up to the token that began such a line and takes the next best token
//! instead (`GenerateParams::avoid`).

/// The line a completion should not write, and the text of the cursor's line before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvoidLine {
    /// The cursor's line up to the cursor: the generation continues it.
    pub head: String,
    /// The suffix's first line with any non-blank character, as written (trailing blanks
    /// aside).
    pub line: String,
}

/// What the generation so far says about its first written line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// That line is not finished yet.
    Pending,
    /// It is finished and is not the avoided line.
    Fine,
    /// It repeats the avoided line; its text starts at this byte of the generation.
    Repeats(usize),
}

impl AvoidLine {
    /// For a hole between `prefix` and `suffix`; none when the suffix has no written line.
    pub fn after(prefix: &str, suffix: &str) -> Option<Self> {
        let line = suffix.split('\n').find(|l| !l.trim().is_empty())?;
        Some(Self {
            head: prefix[prefix.rfind('\n').map_or(0, |i| i + 1)..].to_string(),
            line: line.trim_end().to_string(),
        })
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
            let whole = format!("{head}{piece}");
            return if whole.trim_end() == self.line {
                Verdict::Repeats(start + first)
            } else {
                Verdict::Fine
            };
        }
    }
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
            Verdict::Repeats(9)
        );
        assert_eq!(
            g.verdict("\n        return answer;", true),
            Verdict::Repeats(9)
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
        assert_eq!(g.verdict("\n    }\n", false), Verdict::Repeats(5));
    }

    #[test]
    fn the_cursors_line_counts_with_its_head() {
        let g = guard("def f():\n    ret", "\n    return 2");
        assert_eq!(g.verdict("urn 2\n", false), Verdict::Repeats(0));
        assert_eq!(g.verdict("urn 1\n", false), Verdict::Fine);
        // Blank output first: the judged line is the next one written.
        let g = guard("def f():\n    ", "\n    return 2");
        assert_eq!(g.verdict("\n", false), Verdict::Pending);
        assert_eq!(g.verdict("\n    return 2\n", false), Verdict::Repeats(5));
    }
}
