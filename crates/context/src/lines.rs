//! Line arithmetic on text, shared by assembly and trimming.

/// Byte offsets where each line starts (the first is 0).
pub fn starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// 0-based line of a byte offset.
pub fn line_of(starts: &[usize], offset: usize) -> u32 {
    (starts.partition_point(|s| *s <= offset) - 1) as u32
}

/// Lines `first..=last` (0-based) of `text`, as one slice (shorter at the end of text).
pub fn between(text: &str, first: u32, last: u32) -> &str {
    let starts = starts(text);
    let from = starts.get(first as usize).copied().unwrap_or(text.len());
    let to = starts.get(last as usize + 1).copied().unwrap_or(text.len());
    &text[from..to.max(from)]
}

/// An identifier character in the languages moat reads (`$` for JavaScript and PHP).
pub fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Whether `text` holds `name` as a whole word (identifier characters on neither side).
pub fn has_word(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(is_word)
            && !text[i + name.len()..].chars().next().is_some_and(is_word)
    })
}

/// Leading whitespace width (a tab counts 4).
pub fn indent(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_lines() {
        let t = "a\nbb\nccc";
        assert_eq!(starts(t), vec![0, 2, 5]);
        assert_eq!(line_of(&starts(t), 0), 0);
        assert_eq!(line_of(&starts(t), 3), 1);
        assert_eq!(line_of(&starts(t), 8), 2);
        assert_eq!(indent("\t  x"), 6);
        assert_eq!(between(t, 1, 1), "bb\n");
        assert_eq!(between(t, 1, 9), "bb\nccc");
        assert_eq!(between(t, 5, 9), "");
    }
}
