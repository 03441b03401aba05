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
    let mut buf = String::new();
    for_each_raw_term(text, |t| match t {
        RawTerm::Ascii(seg) => {
            buf.clear();
            buf.extend(seg.iter().map(|b| fold(*b) as char));
            f(&buf)
        }
        RawTerm::Lower(w) => f(w),
    });
}

/// A term as the scanner finds it, before lowercasing where that costs nothing to defer.
pub(crate) enum RawTerm<'a> {
    /// ASCII letters and digits as written; [`fold`] lowercases each byte.
    Ascii(&'a [u8]),
    /// Already lowercased (a word with non-ASCII characters, on the `char` path).
    Lower(&'a str),
}

/// Lowercases a byte of an ASCII term: only letters and digits reach it, and for those
/// setting bit 5 is exactly `to_ascii_lowercase` (digits already have it set).
#[inline]
pub(crate) fn fold(b: u8) -> u8 {
    b | 0x20
}

/// What each byte is to the scanner: one table lookup instead of a chain of range tests.
const SEP: u8 = 0;
const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 3;
const UNDERSCORE: u8 = 4;
const NON_ASCII: u8 = 5;

const CLASS: [u8; 256] = {
    let mut t = [SEP; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'a'..=b'z' => LOWER,
            b'A'..=b'Z' => UPPER,
            b'0'..=b'9' => DIGIT,
            b'_' => UNDERSCORE,
            0x80..=0xff => NON_ASCII,
            _ => SEP,
        };
        b += 1;
    }
    t
};

/// The scanner under [`for_each_term`]: ASCII words are split and handed over as written,
/// without a copy; a run with other characters takes the `char` path. A short ASCII text
/// (nearly every line of code) is split by bit masks instead of byte by byte.
pub(crate) fn for_each_raw_term(text: &str, mut f: impl FnMut(RawTerm)) {
    if text.len() <= MASK_BYTES && text.is_ascii() {
        split_by_masks(text.as_bytes(), &mut f);
    } else {
        scan(text, &mut f);
    }
}

/// The byte-by-byte scanner, for any text.
fn scan(text: &str, f: &mut impl FnMut(RawTerm)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if CLASS[bytes[i] as usize] == SEP {
            i += 1;
            continue;
        }
        // A run of word bytes and non-ASCII characters: ASCII separators end it, and they
        // end words on the `char` path too, so the run splits the same way on either path.
        let start = i;
        let mut ascii = true;
        while i < bytes.len() {
            match CLASS[bytes[i] as usize] {
                SEP => break,
                NON_ASCII => ascii = false,
                _ => {}
            }
            i += 1;
        }
        let run = &bytes[start..i];
        if ascii {
            split_ascii(run, f);
        } else {
            let mut words = Vec::new();
            terms_by_char(&text[start..i], &mut words);
            for w in &words {
                f(RawTerm::Lower(w));
            }
        }
    }
}

/// The longest text that [`split_by_masks`] takes: one bit a byte in a `u128`.
const MASK_BYTES: usize = 128;

/// Which bytes of a text are lowercase letters, uppercase letters and digits, one bit each.
#[derive(Debug, PartialEq, Eq)]
struct Masks {
    lower: u128,
    upper: u128,
    digit: u128,
}

/// The masks of an ASCII text of at most [`MASK_BYTES`] bytes.
fn masks(text: &[u8]) -> Masks {
    let mut block = [0u8; MASK_BYTES];
    block[..text.len()].copy_from_slice(text);
    #[cfg(target_arch = "x86_64")]
    {
        masks_sse2(&block, text.len().div_ceil(16))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        masks_bytewise(&block)
    }
}

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn masks_bytewise(block: &[u8; MASK_BYTES]) -> Masks {
    let mut m = Masks {
        lower: 0,
        upper: 0,
        digit: 0,
    };
    for (i, b) in block.iter().enumerate() {
        m.lower |= (b.is_ascii_lowercase() as u128) << i;
        m.upper |= (b.is_ascii_uppercase() as u128) << i;
        m.digit |= (b.is_ascii_digit() as u128) << i;
    }
    m
}

/// SSE2 is part of every x86-64 CPU: sixteen bytes classified in a few instructions.
#[cfg(target_arch = "x86_64")]
fn masks_sse2(block: &[u8; MASK_BYTES], lanes: usize) -> Masks {
    use std::arch::x86_64::*;
    let mut m = Masks {
        lower: 0,
        upper: 0,
        digit: 0,
    };
    // SAFETY: SSE2 is baseline on x86-64; the loads read 16 bytes inside `block`.
    unsafe {
        // `x - lo <= span` unsigned, as min(x - lo, span) == x - lo.
        let within = |v: __m128i, lo: u8, span: u8| {
            let d = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
            _mm_movemask_epi8(_mm_cmpeq_epi8(
                _mm_min_epu8(d, _mm_set1_epi8(span as i8)),
                d,
            )) as u16 as u128
        };
        for lane in 0..lanes {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * lane) as *const __m128i);
            let at = 16 * lane;
            m.lower |= within(v, b'a', 25) << at;
            m.upper |= within(v, b'A', 25) << at;
            m.digit |= within(v, b'0', 9) << at;
        }
    }
    m
}

/// [`split_ascii`] over every run of a short ASCII text at once: a term starts at a letter
/// or digit that follows no letter or digit, or at a case or digit boundary; it ends where
/// the next one starts or its run does. Underscores and separators are simply neither.
fn split_by_masks(text: &[u8], f: &mut impl FnMut(RawTerm)) {
    let Masks {
        lower,
        upper,
        digit,
    } = masks(text);
    let alpha = lower | upper;
    let alnum = alpha | digit;
    // Bit i of `before(x)` is bit i - 1 of x; of `after(x)`, bit i + 1.
    let before = |x: u128| x << 1;
    let after = |x: u128| x >> 1;
    let starts = alnum
        & (!before(alnum)
            | (before(lower) & upper)
            | (before(upper) & upper & after(lower))
            | (before(digit) & alpha));
    let lasts = alnum & !after(alnum);
    let mut rest = starts;
    while rest != 0 {
        let i = rest.trailing_zeros();
        rest &= rest - 1;
        // The run's last byte at or after i, and the next start: whichever ends it first.
        let last = (lasts >> i).trailing_zeros() + i;
        let end = (last + 1).min(if rest == 0 {
            128
        } else {
            rest.trailing_zeros()
        });
        let len = end - i;
        let span = (u128::MAX >> (128 - len)) << i;
        if len >= 2 && digit & span != span {
            f(RawTerm::Ascii(&text[i as usize..end as usize]));
        }
    }
}

/// Splits a run of ASCII letters, digits and underscores at underscores and at case and
/// digit boundaries: `fooBar` | `HTTPServer` (before the S) | `foo2Bar`.
fn split_ascii(run: &[u8], f: &mut impl FnMut(RawTerm)) {
    let mut start = 0;
    let mut prev = UNDERSCORE;
    for i in 0..run.len() {
        let cur = CLASS[run[i] as usize];
        let boundary = match (prev, cur) {
            (_, UNDERSCORE) => {
                emit(&run[start..i], f);
                start = i + 1;
                prev = UNDERSCORE;
                continue;
            }
            (LOWER, UPPER) => true,
            (UPPER, UPPER) => run.get(i + 1).is_some_and(u8::is_ascii_lowercase),
            (DIGIT, LOWER | UPPER) => true,
            _ => false,
        };
        if boundary {
            emit(&run[start..i], f);
            start = i;
        }
        prev = cur;
    }
    emit(&run[start..], f);
}

fn emit(seg: &[u8], f: &mut impl FnMut(RawTerm)) {
    if seg.len() < 2 || seg.iter().all(u8::is_ascii_digit) {
        return;
    }
    f(RawTerm::Ascii(seg));
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
    use super::{masks, masks_bytewise, scan, split_by_masks, terms, terms_by_char, RawTerm};

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

    fn collect(f: impl FnOnce(&mut dyn FnMut(RawTerm))) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        f(&mut |t| match t {
            RawTerm::Ascii(s) => out.push(s.to_vec()),
            RawTerm::Lower(w) => out.push(w.as_bytes().to_vec()),
        });
        out
    }

    /// The mask path splits ASCII lines as the byte path does, as written (not lowercased),
    /// for every length up to its limit; its SIMD masks equal the byte-wise ones.
    #[test]
    fn the_mask_path_follows_the_byte_path() {
        use rand::{Rng, SeedableRng};
        let alphabet = b"aZbY09_ .(-\txHTTPqQ1";
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..20000 {
            let n = rng.gen_range(0..=super::MASK_BYTES);
            let text: Vec<u8> = (0..n)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let s = std::str::from_utf8(&text).unwrap();
            let by_masks = collect(|f| split_by_masks(&text, &mut |t| f(t)));
            let by_bytes = collect(|f| scan(s, &mut |t| f(t)));
            assert_eq!(by_masks, by_bytes, "{s:?}");
            let mut block = [0u8; super::MASK_BYTES];
            block[..n].copy_from_slice(&text);
            assert_eq!(masks(&text), masks_bytewise(&block), "{s:?}");
        }
    }
}
