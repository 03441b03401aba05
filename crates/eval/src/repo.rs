//! `moat eval repo`: holes cut from a repository, each completed in each context mode with
//! the hole's file hidden from the index after the cursor line (so the answer cannot be
//! copied from the index), scored by exact match, edit similarity and identifier match.

use crate::holes::{Hole, HoleKind};
use crate::metrics::{edit_similarity, exact_match, identifier_match, mean, percent, percentile};
use crate::{Completer, Result};
use moat_context::{
    has_word, is_word, Assembler, Budget, ContextMemo, ContextMode, ContextStyle, Request,
};
use moat_engine::Engine;
use moat_index::Index;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub path: String,
    pub line: u32,
    pub kind: HoleKind,
    pub mode: ContextMode,
    pub want: String,
    pub got: String,
    pub exact: bool,
    pub edit_similarity: f64,
    pub identifier_exact: bool,
    pub prompt_tokens: usize,
    pub ms: f64,
    /// In repo mode, whether the repository context holds the name the answer starts with
    /// (for a cross-file hole, the name another file defines): retrieval, apart from what
    /// the model makes of it. `None` in other modes or when the answer starts otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_has_answer: Option<bool>,
    /// The rendered prompt, when `Settings::keep_prompts` asks for it (for diagnosis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub n: usize,
    pub exact_match: f64,
    pub edit_similarity: f64,
    pub identifier_exact_match: f64,
    pub prompt_tokens_mean: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    /// Percent of the outcomes with an answer name whose repository context held it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_recall: Option<f64>,
}

pub struct Settings {
    pub repo_name: String,
    pub budget: Budget,
    pub style: ContextStyle,
    pub max_tokens: usize,
    /// Decode with the first-line guard (`Completer::avoid_repeats`).
    pub avoid_repeats: bool,
    /// Keep each outcome's rendered prompt.
    pub keep_prompts: bool,
    /// Assemble the prompts and measure retrieval only; the model writes nothing.
    pub retrieval_only: bool,
    /// In repo mode, choose the context at the start of the line this many lines above the
    /// hole's line (0: its own), before those lines were written, and keep it for the hole
    /// as the language server on a CPU does (`None`: chosen at the cursor).
    pub stale_lines: Option<u32>,
}

/// The name an answer starts with, when it starts with one worth looking for.
fn answer_name(answer: &str) -> Option<&str> {
    let end = answer.find(|c: char| !is_word(c)).unwrap_or(answer.len());
    (end >= 3).then(|| &answer[..end])
}

/// The document as it was `lines` lines above the cursor's line, before they and the
/// cursor's line were written: those lines gone, the cursor at the start of an empty line
/// where the first of them was.
fn written_from(document: &str, cursor: usize, lines: u32) -> (String, usize) {
    let line_start = |at: usize| document[..at].rfind('\n').map_or(0, |i| i + 1);
    let mut start = line_start(cursor);
    for _ in 0..lines {
        if start == 0 {
            break;
        }
        start = line_start(start - 1); // before the newline that ends the line above
    }
    let end = document[cursor..]
        .find('\n')
        .map_or(document.len(), |i| cursor + i);
    (format!("{}{}", &document[..start], &document[end..]), start)
}

/// Completes one hole in one mode. The index must already have the hole's file hidden.
fn complete(
    engine: &mut Engine,
    index: &Index,
    hole: &Hole,
    document: &str,
    mode: ContextMode,
    s: &Settings,
) -> Result<Outcome> {
    let assembled = {
        let a = Assembler {
            tok: engine.tokenizer(),
            format: engine.fim_format(),
            repo_name: s.repo_name.clone(),
            budget: s.budget,
            style: s.style,
        };
        let req = Request {
            path: &hole.path,
            lang: Some(hole.lang),
            text: document,
            cursor: hole.cursor,
            recent: &[],
        };
        let mut memo = ContextMemo::default();
        if let (ContextMode::Repo, Some(k)) = (mode, s.stale_lines) {
            memo.set_lines(k + 1);
            let earlier = written_from(document, hole.cursor, k);
            let req = Request {
                text: &earlier.0,
                cursor: earlier.1,
                ..req
            };
            a.assemble_memo(&req, Some(index), mode, &mut memo)?;
        }
        a.assemble_memo(&req, Some(index), mode, &mut memo)?
    };
    let context_has_answer = match (mode, answer_name(&hole.answer)) {
        (ContextMode::Repo, Some(name)) => {
            // The context files, and in the comments style the context above the window.
            let mut context: Vec<&str> = assembled
                .prompt
                .context
                .iter()
                .map(|f| f.content.as_str())
                .collect();
            context.extend(assembled.prompt.prefix.strip_suffix(&assembled.prefix));
            Some(context.iter().any(|t| has_word(t, name)))
        }
        _ => None,
    };
    let prompt = if s.keep_prompts {
        let tok = engine.tokenizer();
        let ids = moat_engine::fim::render(tok, engine.fim_format(), &assembled.prompt)?;
        Some(tok.decode(&ids)?)
    } else {
        None
    };
    let line = hole.text[..hole.cursor].matches('\n').count() as u32;
    let (got, ms) = if s.retrieval_only {
        (String::new(), 0.0)
    } else {
        let mut c = Completer {
            engine,
            max_tokens: s.max_tokens,
            avoid_repeats: s.avoid_repeats,
        };
        let window = (assembled.prefix.as_str(), assembled.suffix.as_str());
        let done = c.complete(&assembled.prompt, window, Some(hole.lang))?;
        (done.text, done.timings.prefill_ms + done.timings.decode_ms)
    };
    Ok(Outcome {
        path: hole.path.clone(),
        line,
        kind: hole.kind,
        mode,
        exact: exact_match(&got, &hole.answer),
        edit_similarity: edit_similarity(&got, &hole.answer),
        identifier_exact: identifier_match(&got, &hole.answer),
        want: hole.answer.clone(),
        got,
        prompt_tokens: assembled.tokens,
        ms,
        context_has_answer,
        prompt,
    })
}

/// Runs every hole in every mode; `progress` sees each outcome as it comes.
pub fn run(
    engine: &mut Engine,
    index: &mut Index,
    holes: &[Hole],
    modes: &[ContextMode],
    s: &Settings,
    progress: &mut dyn FnMut(&Outcome),
) -> Result<Vec<Outcome>> {
    let mut out = Vec::new();
    for hole in holes {
        // Hide the file from the cursor line on; put it back afterwards.
        index.update_text(&hole.path, hole.lang, &hole.text[..hole.line_start()]);
        let document = hole.document();
        let mut result = Ok(());
        for &mode in modes {
            match complete(engine, index, hole, &document, mode, s) {
                Ok(o) => {
                    progress(&o);
                    out.push(o);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        index.update_file(&index.root().join(&hole.path));
        result?;
    }
    Ok(out)
}

fn score(v: &[&Outcome]) -> Score {
    let n = v.len();
    let lat: Vec<f64> = v.iter().map(|o| o.ms).collect();
    let looked: Vec<bool> = v.iter().filter_map(|o| o.context_has_answer).collect();
    Score {
        n,
        exact_match: percent(v.iter().filter(|o| o.exact).count(), n),
        edit_similarity: 100.0 * mean(v.iter().map(|o| o.edit_similarity)),
        identifier_exact_match: percent(v.iter().filter(|o| o.identifier_exact).count(), n),
        prompt_tokens_mean: mean(v.iter().map(|o| o.prompt_tokens as f64)),
        latency_p50_ms: percentile(&lat, 0.5),
        latency_p95_ms: percentile(&lat, 0.95),
        context_recall: (!looked.is_empty())
            .then(|| percent(looked.iter().filter(|h| **h).count(), looked.len())),
    }
}

/// Scores by mode, then by hole kind and `"all"`.
pub fn scores(outcomes: &[Outcome]) -> BTreeMap<String, BTreeMap<String, Score>> {
    let mut m: BTreeMap<String, BTreeMap<String, Score>> = BTreeMap::new();
    for mode in ContextMode::ALL {
        let of_mode: Vec<&Outcome> = outcomes.iter().filter(|o| o.mode == mode).collect();
        if of_mode.is_empty() {
            continue;
        }
        let e = m.entry(mode.name().to_string()).or_default();
        for kind in [
            HoleKind::Line,
            HoleKind::MidLine,
            HoleKind::Block,
            HoleKind::CrossFile,
        ] {
            let v: Vec<&Outcome> = of_mode.iter().copied().filter(|o| o.kind == kind).collect();
            if !v.is_empty() {
                e.insert(kind.as_str().to_string(), score(&v));
            }
        }
        e.insert("all".into(), score(&of_mode));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_name_is_looked_for_as_a_whole_word() {
        assert_eq!(answer_name("grid(padding=(0, 1))"), Some("grid"));
        assert_eq!(answer_name("cell_len(text) < 1:"), Some("cell_len"));
        assert_eq!(answer_name("$el.find()"), Some("$el"));
        assert_eq!(answer_name("x = 1"), None);
        assert_eq!(answer_name("(a, b)"), None);
        assert!(has_word("def grid(cls):\n", "grid"));
        assert!(!has_word("def grid_size(cls):\n", "grid"));
        assert!(!has_word("subgrid = 1\n", "grid"));
        assert!(has_word("x.grid", "grid"));
    }

    #[test]
    fn the_document_as_it_was_lines_above() {
        let doc = "a\nb\nc\nd = f(x\ne\n";
        let cursor = doc.find("f(").unwrap() + 2;
        // The cursor's line alone: an empty line in its place.
        assert_eq!(written_from(doc, cursor, 0), ("a\nb\nc\n\ne\n".into(), 6));
        assert_eq!(written_from(doc, cursor, 2), ("a\n\ne\n".into(), 2));
        // Beyond the first line: from the start.
        assert_eq!(written_from(doc, cursor, 3), ("\ne\n".into(), 0));
        assert_eq!(written_from(doc, cursor, 9), ("\ne\n".into(), 0));
        // No newline after the cursor's line.
        assert_eq!(written_from("a\nbc", 4, 1), ("".into(), 0));
    }
}
