//! Open documents: their text as the editor has it, kept in step with incremental changes,
//! and positions converted between the protocol's units (UTF-16 code units unless UTF-8
//! was negotiated) and byte offsets.

use std::collections::HashMap;

/// How the client counts characters in a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PositionError {
    #[error("line {line} is past the end of the document ({lines} lines)")]
    PastEnd { line: u32, lines: usize },
    #[error("the range ends before it starts")]
    Reversed,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub text: String,
    pub version: i32,
    pub language_id: String,
}

/// Byte offset of `(line, character)`. A character past the end of its line means the end
/// of the line (as the protocol says); a line past the end of the document is an error.
/// A position inside a UTF-16 surrogate pair or a multi-byte character snaps back to the
/// character's start.
pub fn offset(
    text: &str,
    line: u32,
    character: u32,
    enc: Encoding,
) -> Result<usize, PositionError> {
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => {
                return Err(PositionError::PastEnd {
                    line,
                    lines: text.matches('\n').count() + 1,
                })
            }
        }
    }
    let rest = &text[start..];
    let end = rest.find('\n').unwrap_or(rest.len());
    // A `\r` before the newline is not part of the line's characters.
    let line_text = rest[..end].strip_suffix('\r').unwrap_or(&rest[..end]);
    let mut units = 0u32;
    for (i, c) in line_text.char_indices() {
        let w = match enc {
            Encoding::Utf8 => c.len_utf8() as u32,
            Encoding::Utf16 => c.len_utf16() as u32,
        };
        if units + w > character {
            return Ok(start + i);
        }
        units += w;
    }
    Ok(start + line_text.len())
}

/// The open documents, by URI.
#[derive(Debug, Default)]
pub struct Documents {
    docs: HashMap<String, Document>,
}

impl Documents {
    pub fn open(&mut self, uri: &str, doc: Document) {
        self.docs.insert(uri.to_string(), doc);
    }

    pub fn close(&mut self, uri: &str) -> Option<Document> {
        self.docs.remove(uri)
    }

    pub fn get(&self, uri: &str) -> Option<&Document> {
        self.docs.get(uri)
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Replaces `range` (or everything, without one) by `new_text`. An out-of-range edit is
    /// refused whole, leaving the text as it was.
    pub fn edit(
        &mut self,
        uri: &str,
        version: i32,
        range: Option<((u32, u32), (u32, u32))>,
        new_text: &str,
        enc: Encoding,
    ) -> Result<bool, PositionError> {
        let Some(doc) = self.docs.get_mut(uri) else {
            return Ok(false);
        };
        match range {
            None => doc.text = new_text.to_string(),
            Some(((l0, c0), (l1, c1))) => {
                let a = offset(&doc.text, l0, c0, enc)?;
                let b = offset(&doc.text, l1, c1, enc)?;
                if b < a {
                    return Err(PositionError::Reversed);
                }
                doc.text.replace_range(a..b, new_text);
            }
        }
        doc.version = version;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_positions_count_surrogate_pairs_and_skip_crlf() {
        // "a😀b": the emoji is two UTF-16 units and four bytes.
        let t = "a😀b\r\nx";
        assert_eq!(offset(t, 0, 0, Encoding::Utf16), Ok(0));
        assert_eq!(offset(t, 0, 1, Encoding::Utf16), Ok(1));
        assert_eq!(offset(t, 0, 2, Encoding::Utf16), Ok(1), "inside the pair");
        assert_eq!(offset(t, 0, 3, Encoding::Utf16), Ok(5));
        assert_eq!(
            offset(t, 0, 4, Encoding::Utf16),
            Ok(6),
            "end of line, before \\r"
        );
        assert_eq!(
            offset(t, 0, 99, Encoding::Utf16),
            Ok(6),
            "past the end: clamped"
        );
        assert_eq!(offset(t, 1, 1, Encoding::Utf16), Ok(9));
        assert_eq!(offset(t, 0, 5, Encoding::Utf8), Ok(5));
        assert_eq!(
            offset(t, 2, 0, Encoding::Utf16),
            Err(PositionError::PastEnd { line: 2, lines: 2 })
        );
    }

    #[test]
    fn incremental_edits_apply_and_bad_ones_change_nothing() {
        let mut d = Documents::default();
        d.open(
            "u",
            Document {
                text: "héllo\nworld\n".into(),
                version: 1,
                language_id: "python".into(),
            },
        );
        assert!(d
            .edit("u", 2, Some(((0, 1), (0, 2))), "e", Encoding::Utf16)
            .unwrap());
        assert_eq!(d.get("u").unwrap().text, "hello\nworld\n");
        assert!(d
            .edit("u", 3, Some(((1, 5), (1, 5))), "!", Encoding::Utf16)
            .unwrap());
        assert_eq!(d.get("u").unwrap().text, "hello\nworld!\n");
        assert!(d
            .edit("u", 4, Some(((9, 0), (9, 1))), "x", Encoding::Utf16)
            .is_err());
        assert!(d
            .edit("u", 4, Some(((1, 3), (0, 1))), "x", Encoding::Utf16)
            .is_err());
        assert_eq!(d.get("u").unwrap().text, "hello\nworld!\n");
        assert_eq!(d.get("u").unwrap().version, 3);
        assert!(!d.edit("other", 1, None, "x", Encoding::Utf16).unwrap());
        assert!(d.edit("u", 5, None, "new", Encoding::Utf16).unwrap());
        assert_eq!(d.get("u").unwrap().text, "new");
    }
}
