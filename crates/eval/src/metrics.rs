//! How a completion is compared with the text that was there.

/// Lines trimmed, blank lines dropped: indentation and spacing that editors fix up do not
/// decide a match.
pub fn normalize(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn exact_match(got: &str, want: &str) -> bool {
    normalize(got) == normalize(want)
}

/// 1 − Levenshtein distance / longer length, over characters of the normalized texts.
pub fn edit_similarity(got: &str, want: &str) -> f64 {
    let (a, b) = (normalize(got), normalize(want));
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - strsim::levenshtein(&a, &b) as f64 / longest as f64
}

/// The identifiers of a text, in order (keywords included: they are code too).
pub fn identifiers(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices().chain([(s.len(), ' ')]) {
        let part = c.is_alphanumeric() || c == '_' || c == '$';
        match (start, part) {
            (None, true) => start = Some(i),
            (Some(b), false) => {
                if !s[b..i].starts_with(|c: char| c.is_ascii_digit()) {
                    out.push(&s[b..i]);
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The same identifiers in the same order (CrossCodeEval's identifier exact match).
pub fn identifier_match(got: &str, want: &str) -> bool {
    identifiers(got) == identifiers(want)
}

/// The HumanEval-FIM report's first-line rule: the first line of the generation, or the
/// second if the generation starts with a newline, stripped.
pub fn first_line(generation: &str) -> &str {
    let g = generation.strip_prefix('\n').unwrap_or(generation);
    g.split('\n').next().unwrap_or("").trim()
}

/// `k` of `n` in percent (0 for no cases).
pub fn percent(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * k as f64 / n as f64
    }
}

/// The mean, 0 for no values.
pub fn mean(values: impl ExactSizeIterator<Item = f64>) -> f64 {
    let n = values.len();
    if n == 0 {
        0.0
    } else {
        values.sum::<f64>() / n as f64
    }
}

/// The `q` quantile (0..=1) by nearest rank; NaN for no values.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert!(exact_match("  return a + b \n\n", "return a + b"));
        assert!(exact_match("if x:\n        y()", "if x:\n    y()"));
        assert!(!exact_match("return a+b", "return a + b"));
        assert_eq!(edit_similarity("abc", "abc"), 1.0);
        assert_eq!(edit_similarity("", ""), 1.0);
        assert!((edit_similarity("abcd", "abce") - 0.75).abs() < 1e-9);
        assert_eq!(edit_similarity("xyz", ""), 0.0);
        assert_eq!(
            identifiers("foo.bar(x_1, 42, $y)"),
            vec!["foo", "bar", "x_1", "$y"]
        );
        assert!(identifier_match("foo(a,b)", "foo(a, b)"));
        assert!(!identifier_match("foo(b, a)", "foo(a, b)"));
        assert_eq!(first_line("\n    x = 1\ny"), "x = 1");
        assert_eq!(first_line("x = 1\ny"), "x = 1");
        assert_eq!(first_line(""), "");
        assert_eq!(percentile(&[3.0, 1.0, 2.0, 4.0], 0.5), 2.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0, 4.0], 0.95), 4.0);
        assert!(percentile(&[], 0.5).is_nan());
        assert_eq!(percent(1, 4), 25.0);
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(mean([1.0, 2.0].into_iter()), 1.5);
        assert_eq!(
            mean(std::iter::empty::<f64>().collect::<Vec<_>>().into_iter()),
            0.0
        );
    }
}
