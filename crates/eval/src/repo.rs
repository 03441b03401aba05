//! `moat eval repo`: holes cut from a repository, each completed in each context mode with
//! the hole's file hidden from the index after the cursor line (so the answer cannot be
//! copied from the index), scored by exact match, edit similarity and identifier match.

use crate::holes::{Hole, HoleKind};
use crate::metrics::{edit_similarity, exact_match, identifier_match, mean, percent, percentile};
use crate::{Completer, Result};
use moat_context::{Assembler, Budget, ContextMode, ContextStyle, Request};
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
}

pub struct Settings {
    pub repo_name: String,
    pub budget: Budget,
    pub style: ContextStyle,
    pub max_tokens: usize,
    /// Keep each outcome's rendered prompt.
    pub keep_prompts: bool,
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
        a.assemble(&req, Some(index), mode)?
    };
    let prompt = if s.keep_prompts {
        let tok = engine.tokenizer();
        let ids = moat_engine::fim::render(tok, engine.fim_format(), &assembled.prompt)?;
        Some(tok.decode(&ids)?)
    } else {
        None
    };
    let mut c = Completer {
        engine,
        max_tokens: s.max_tokens,
    };
    let window = (assembled.prefix.as_str(), assembled.suffix.as_str());
    let done = c.complete(&assembled.prompt, window, Some(hole.lang))?;
    let line = hole.text[..hole.cursor].matches('\n').count() as u32;
    Ok(Outcome {
        path: hole.path.clone(),
        line,
        kind: hole.kind,
        mode,
        exact: exact_match(&done.text, &hole.answer),
        edit_similarity: edit_similarity(&done.text, &hole.answer),
        identifier_exact: identifier_match(&done.text, &hole.answer),
        want: hole.answer.clone(),
        got: done.text,
        prompt_tokens: assembled.tokens,
        ms: done.timings.prefill_ms + done.timings.decode_ms,
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
    Score {
        n,
        exact_match: percent(v.iter().filter(|o| o.exact).count(), n),
        edit_similarity: 100.0 * mean(v.iter().map(|o| o.edit_similarity)),
        identifier_exact_match: percent(v.iter().filter(|o| o.identifier_exact).count(), n),
        prompt_tokens_mean: mean(v.iter().map(|o| o.prompt_tokens as f64)),
        latency_p50_ms: percentile(&lat, 0.5),
        latency_p95_ms: percentile(&lat, 0.95),
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
        for kind in [HoleKind::Line, HoleKind::MidLine, HoleKind::Block] {
            let v: Vec<&Outcome> = of_mode.iter().copied().filter(|o| o.kind == kind).collect();
            if !v.is_empty() {
                e.insert(kind.as_str().to_string(), score(&v));
            }
        }
        e.insert("all".into(), score(&of_mode));
    }
    m
}
