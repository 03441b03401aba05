//! The typing-through cache: while the user types the characters of the completion that is
//! shown, the rest of it is the answer, without asking the model again.

/// The completion last shown in a document, with the document around it at that moment.
#[derive(Debug, Clone)]
pub struct Shown {
    pub id: String,
    pub before: String,
    pub after: String,
    pub text: String,
    /// Computed ahead (after an accept), not asked for.
    pub speculative: bool,
}

impl Shown {
    /// The rest of the shown completion if the document is the one it was shown in plus
    /// some of its first characters typed at the cursor; `None` otherwise (or when it has
    /// been typed whole).
    pub fn rest(&self, text: &str, cursor: usize) -> Option<&str> {
        if cursor > text.len() || !text.is_char_boundary(cursor) {
            return None;
        }
        let (before, after) = text.split_at(cursor);
        if after != self.after || !before.starts_with(&self.before) {
            return None;
        }
        let typed = &before[self.before.len()..];
        let rest = self.text.strip_prefix(typed)?;
        (!rest.is_empty()).then_some(rest)
    }
}

impl Shown {
    /// Whether this is an empty completion for exactly `text` at `cursor`: asking the model
    /// again would give the same nothing.
    pub fn nothing_at(&self, text: &str, cursor: usize) -> bool {
        self.text.is_empty()
            && cursor == self.before.len()
            && text.len() == self.before.len() + self.after.len()
            && text.starts_with(&self.before)
            && text.ends_with(&self.after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_the_shown_text_keeps_the_rest() {
        let s = Shown {
            id: "c1".into(),
            before: "x = foo(".into(),
            after: ")\n".into(),
            text: "a, b".into(),
            speculative: false,
        };
        assert_eq!(s.rest("x = foo()\n", 8), Some("a, b"));
        assert_eq!(s.rest("x = foo(a)\n", 9), Some(", b"));
        assert_eq!(s.rest("x = foo(a, )\n", 11), Some("b"));
        assert_eq!(s.rest("x = foo(a, b)\n", 12), None, "typed whole");
        assert_eq!(s.rest("x = foo(z)\n", 9), None, "typed something else");
        assert_eq!(s.rest("y = foo(a)\n", 9), None, "edited before");
        assert_eq!(s.rest("x = foo(a)\n\n", 9), None, "edited after");
        assert_eq!(s.rest("x = foo(a)\n", 99), None);
        assert!(!s.nothing_at("x = foo()\n", 8));
        let empty = Shown {
            text: String::new(),
            ..s
        };
        assert!(empty.nothing_at("x = foo()\n", 8));
        assert!(!empty.nothing_at("x = foo(a)\n", 9));
    }
}
