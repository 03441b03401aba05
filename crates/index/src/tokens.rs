//! Code text → search terms: identifiers split at `snake_case` and `camelCase` boundaries,
//! lowercased, so that `parseConfig`, `parse_config` and `ConfigParser` share terms.
//! Single characters and pure numbers are dropped: they match everything and mean nothing.
//!
//! Indexing runs this over every byte of a repository, so words of ASCII letters take a
//! byte path that allocates nothing; a word with other characters takes the `char` path,
//! whose rules the byte path repeats for ASCII (a test holds them equal).

/// Appends the terms of `text` to `out`.
pub fn terms(text: &str, out: &mut Vec<String>) {
    for_each_term(text, |t| out.push(t.to_string()));
}

/// Calls `f` with each term of `text`, in order (lowercased; the `&str` lives in a buffer
/// reused between calls).
pub fn for_each_term(text: &str, mut f: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut buf = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() && !is_word_byte(b) {
            i += 1;
            continue;
        }
        // A run of word bytes and non-ASCII characters: ASCII separators end it, and they
        // end words on the `char` path too, so the run splits the same way on either path.
        let start = i;
        let mut ascii = true;
        while i < bytes.len() && (!bytes[i].is_ascii() || is_word_byte(bytes[i])) {
            ascii &= bytes[i].is_ascii();
            i += 1;
        }
        let run = &text[start..i];
        if ascii {
            for part in run.as_bytes().split(|b| *b == b'_') {
                split_camel_ascii(part, &mut buf, &mut f);
            }
        } else {
            let mut words = Vec::new();
            terms_by_char(run, &mut words);
            for w in &words {
                f(w);
            }
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn split_camel_ascii(p: &[u8], buf: &mut String, f: &mut impl FnMut(&str)) {
    let mut start = 0;
    for i in 1..p.len() {
        let (prev, cur) = (p[i - 1], p[i]);
        let next_lower = p.get(i + 1).is_some_and(u8::is_ascii_lowercase);
        let boundary = (prev.is_ascii_lowercase() && cur.is_ascii_uppercase())
            || (prev.is_ascii_uppercase() && cur.is_ascii_uppercase() && next_lower)
            || (prev.is_ascii_digit() && cur.is_ascii_alphabetic());
        if boundary {
            emit_ascii(&p[start..i], buf, f);
            start = i;
        }
    }
    emit_ascii(&p[start..], buf, f);
}

fn emit_ascii(seg: &[u8], buf: &mut String, f: &mut impl FnMut(&str)) {
    if seg.len() < 2 || seg.iter().all(u8::is_ascii_digit) {
        return;
    }
    buf.clear();
    buf.extend(seg.iter().map(|b| b.to_ascii_lowercase() as char));
    f(buf);
}

/// The rules on `char`s, for text that is not all ASCII.
fn terms_by_char(text: &str, out: &mut Vec<String>) {
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
    use super::{terms, terms_by_char};

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
            ("naïveParse→ÜberMap", vec!["naïve", "parse", "über", "map"]),
        ];
        for (text, want) in cases {
            let mut got = Vec::new();
            terms(text, &mut got);
            // "y2k": the digit boundary splits "y2" | "k"; "k" alone is dropped.
            let want: Vec<String> = want
                .into_iter()
                .filter(|w| w.chars().count() > 1)
                .map(String::from)
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }

    /// The byte path gives what the `char` rules give, on random text over an alphabet of
    /// the characters that matter (cases, digits, underscores, separators, non-ASCII).
    #[test]
    fn the_byte_path_follows_the_char_rules() {
        use rand::{Rng, SeedableRng};
        let alphabet: Vec<char> = "aZbY09_ .(-\tÄé→ßxHTTPq".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..5000 {
            let n = rng.gen_range(0..24);
            let text: String = (0..n)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            terms(&text, &mut fast);
            terms_by_char(&text, &mut slow);
            assert_eq!(fast, slow, "{text:?}");
        }
    }
}
