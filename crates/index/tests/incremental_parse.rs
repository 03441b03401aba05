//! An open document is re-parsed from its previous tree (`Extractor::reparse`, which the
//! index uses for `update_text`). Whatever the edits, and through the syntax errors that
//! typing leaves on the way, what is extracted must equal what a fresh parse of the same
//! text gives: the index must not depend on a document's history.

mod common;

use common::Rng;
use moat_index::extract::{edit_between, extract_tree, uses_of_tree};
use moat_index::{Extractor, Lang};
use std::path::Path;

/// A number below `n`.
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.next(n as u64) as usize
}

const PYTHON: &str = r#"import os
from .util import helper

class Store:
    """Keeps things."""

    def __init__(self, root):
        self.root = root

    def get(self, key, default=None):
        path = os.path.join(self.root, key)
        if not os.path.exists(path):
            return default
        return helper(path)

def make(root="."):
    return Store(root)
"#;

const TYPESCRIPT: &str = r#"import { helper } from './util';

export interface Options { retries: number; name?: string }

export class Client {
  constructor(private opts: Options) {}

  async fetch(url: string): Promise<string> {
    for (let i = 0; i < this.opts.retries; i++) {
      const r = await helper(url, { attempt: i });
      if (r.ok) { return r.text; }
    }
    throw new Error(`failed: ${url}`);
  }
}

export const make = (opts: Options) => new Client(opts);
"#;

const GO: &str = r#"package store

import (
	"fmt"
	"os"
)

type Store struct {
	Root string
}

// Get reads a key.
func (s *Store) Get(key string) (string, error) {
	b, err := os.ReadFile(s.Root + "/" + key)
	if err != nil {
		return "", fmt.Errorf("get %s: %w", key, err)
	}
	return string(b), nil
}
"#;

const JAVA: &str = r#"package com.example.store;

import java.util.HashMap;
import java.util.Map;

/** Keeps things. */
public class Store {
    private final Map<String, String> items = new HashMap<>();

    public String get(String key) {
        return items.getOrDefault(key, "");
    }

    public void put(String key, String value) {
        if (key == null) { throw new IllegalArgumentException("key"); }
        items.put(key, value);
    }
}
"#;

/// One edit as an editor makes them: a character typed, a span deleted, or a piece of the
/// source pasted somewhere else.
fn edit(rng: &mut Rng, text: &str, source: &str) -> String {
    let at = |rng: &mut Rng, s: &str| {
        let mut i = below(rng, s.len() + 1);
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let i = at(rng, text);
    let mut out = text.to_string();
    match below(rng, 3) {
        0 => {
            const TYPED: &[&str] = &[
                "(", ")", "{", "}", ":", ";", ",", ".", "=", "\n", " ", "x", "\"", "'", "def ",
                "fn ",
            ];
            out.insert_str(i, TYPED[below(rng, TYPED.len())]);
        }
        1 => {
            let mut j = (i + 1 + below(rng, 40)).min(text.len());
            while !text.is_char_boundary(j) {
                j -= 1;
            }
            out.replace_range(i..j, "");
        }
        _ => {
            let a = at(rng, source);
            let mut b = (a + 1 + below(rng, 60)).min(source.len());
            while !source.is_char_boundary(b) {
                b -= 1;
            }
            out.insert_str(i, &source[a..b]);
        }
    }
    out
}

#[test]
fn the_edit_between_two_texts_spans_exactly_what_changed() {
    let e = edit_between("ab\ncd\nef", "ab\ncXd\nef");
    assert_eq!((e.start_byte, e.old_end_byte, e.new_end_byte), (4, 4, 5));
    assert_eq!((e.start_position.row, e.start_position.column), (1, 1));
    assert_eq!((e.new_end_position.row, e.new_end_position.column), (1, 2));
    // A repeated letter: the shared end never overlaps the shared start.
    let e = edit_between("aaa", "aaaa");
    assert_eq!((e.start_byte, e.old_end_byte, e.new_end_byte), (3, 3, 4));
    let e = edit_between("line\n", "");
    assert_eq!((e.start_byte, e.old_end_byte, e.new_end_byte), (0, 5, 0));
    assert_eq!(e.old_end_position.row, 1);
    assert_eq!(e.old_end_position.column, 0);
}

#[test]
fn an_incremental_parse_extracts_what_a_fresh_parse_does() {
    let own = include_str!("../src/similar.rs");
    let sources = [
        ("a.py", PYTHON),
        ("a.ts", TYPESCRIPT),
        ("a.go", GO),
        ("Store.java", JAVA),
        ("similar.rs", own),
    ];
    let mut ex = Extractor::new();
    for (path, source) in sources {
        let lang = Lang::from_path(Path::new(path)).unwrap();
        for seed in 1..=8u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut text = source.to_string();
            let mut tree = ex.parse(lang, &text).unwrap();
            for step in 0..30 {
                let next = edit(&mut rng, &text, source);
                let again = ex.reparse(lang, &next, Some((&tree, &text))).unwrap();
                let fresh = ex.parse(lang, &next).unwrap();
                assert_eq!(
                    extract_tree(lang, &next, &again),
                    extract_tree(lang, &next, &fresh),
                    "{path} seed {seed} step {step}"
                );
                assert_eq!(
                    uses_of_tree(lang, &next, &again),
                    uses_of_tree(lang, &next, &fresh),
                    "{path} seed {seed} step {step}"
                );
                (text, tree) = (next, again);
            }
        }
    }
}
