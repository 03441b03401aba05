//! Retention: is an accepted completion still in the document?
//!
//! The inserted text is looked for near the offset it was inserted at: the best match of
//! it anywhere in a window around that offset, by edit distance (a match may start and end
//! anywhere in the window). It counts as kept when the distance is at most half its length,
//! as Copilot measures; the fraction kept is `1 - distance / length` then, else 0.

/// When retention is checked, seconds after the accept.
pub const CHECKPOINTS: [u32; 4] = [30, 120, 300, 600];

/// The fraction of `inserted` still found near byte `offset` of `doc` (0 to 1).
pub fn kept(inserted: &str, doc: &str, offset: usize) -> f64 {
    let ins: Vec<char> = inserted.chars().collect();
    if ins.is_empty() {
        return 1.0;
    }
    // A window of the text's length on each side (in characters), so that edits before it
    // that shift it a little still find it.
    let offset = floor_boundary(doc, offset.min(doc.len()));
    let before: Vec<char> = doc[..offset].chars().rev().take(ins.len()).collect();
    let after = doc[offset..].chars().take(2 * ins.len());
    let window: Vec<char> = before.into_iter().rev().chain(after).collect();
    let d = best_substring_distance(&ins, &window);
    let n = ins.len();
    if 2 * d <= n {
        1.0 - d as f64 / n as f64
    } else {
        0.0
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The least edit distance between `pattern` and any substring of `text` (Sellers'
/// algorithm: the first row is all zeros, the answer the least value of the last row).
fn best_substring_distance(pattern: &[char], text: &[char]) -> usize {
    // Column by column over the text; `col[i]` = distance of pattern[..i] ending here.
    let mut col: Vec<usize> = (0..=pattern.len()).collect();
    let mut best = col[pattern.len()];
    for &t in text {
        let mut diag = col[0];
        col[0] = 0;
        for i in 1..=pattern.len() {
            let up = col[i];
            let cost = usize::from(pattern[i - 1] != t);
            col[i] = (diag + cost).min(up + 1).min(col[i - 1] + 1);
            diag = up;
        }
        best = best.min(col[pattern.len()]);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_edited_and_removed_text() {
        let ins = "return a + b";
        let doc = "def add(a, b):\n    return a + b\n";
        let at = doc.find("return").unwrap();
        assert_eq!(kept(ins, doc, at), 1.0);
        // Text typed before it shifts it: still found.
        let shifted = "def add(a, b):\n    # sum\n    return a + b\n";
        assert_eq!(kept(ins, shifted, at), 1.0);
        // Edited a little: kept, the fraction says how much.
        let edited = "def add(a, b):\n    return a + b + 0\n";
        assert!(
            (kept(ins, edited, at) - 1.0).abs() < 1e-9,
            "a superstring keeps it whole"
        );
        let changed = "def add(a, b):\n    return a - c\n";
        assert!((kept(ins, changed, at) - (1.0 - 2.0 / 12.0)).abs() < 1e-9);
        // Removed: gone.
        let removed = "def add(a, b):\n    pass\n";
        assert_eq!(kept(ins, removed, at), 0.0);
        // Half of a block kept: at the limit of the rule.
        let block = "x = 1\ny = 2\n";
        assert_eq!(kept(block, "x = 1\n", 0), 1.0 - 6.0 / 12.0);
        // Offsets past the end or inside a character are clamped.
        assert_eq!(kept("é", "é", 1), 1.0);
        assert_eq!(kept("abc", "abc", 99), 1.0);
    }
}
