//! Code text → search terms: identifiers split at `snake_case` and `camelCase` boundaries,
//! lowercased, so that `parseConfig`, `parse_config` and `ConfigParser` share terms.

/// Appends the terms of `text` to `out`. Single characters and pure numbers are dropped:
/// they match everything and mean nothing.
pub fn terms(text: &str, out: &mut Vec<String>) {
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        for part in word.split('_') {
            split_camel(part, out);
        }
    }
}

fn split_camel(word: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = word.chars().collect();
    let mut start = 0;
    for i in 1..chars.len() {
        let (prev, cur) = (chars[i - 1], chars[i]);
        let next_lower = chars.get(i + 1).is_some_and(|c| c.is_lowercase());
        // fooBar | HTTPServer (split before the S) | foo2Bar
        let boundary = (prev.is_lowercase() && cur.is_uppercase())
            || (prev.is_uppercase() && cur.is_uppercase() && next_lower)
            || (prev.is_ascii_digit() && cur.is_alphabetic());
        if boundary {
            push(&chars[start..i], out);
            start = i;
        }
    }
    push(&chars[start..], out);
}

fn push(chars: &[char], out: &mut Vec<String>) {
    if chars.len() < 2 || chars.iter().all(|c| c.is_ascii_digit()) {
        return;
    }
    out.push(chars.iter().flat_map(|c| c.to_lowercase()).collect());
}

#[cfg(test)]
mod tests {
    use super::terms;

    #[test]
    fn splits_code_identifiers() {
        let cases = [
            ("parseConfig(path)", vec!["parse", "config", "path"]),
            (
                "HTTPServer.start_now",
                vec!["http", "server", "start", "now"],
            ),
            ("x = 42 + y2k", vec!["y2", "k"]),
            ("read_file_v2", vec!["read", "file", "v2"]),
        ];
        for (text, want) in cases {
            let mut got = Vec::new();
            terms(text, &mut got);
            // "y2k": the digit boundary splits "y2" | "k"; "k" alone is dropped.
            let want: Vec<String> = want
                .into_iter()
                .filter(|w| w.len() > 1)
                .map(String::from)
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }
}
