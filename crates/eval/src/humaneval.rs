//! HumanEval-FIM (single-line): the rows, and exact match by the report's first-line rule
//! and by our post-processing, per language and pooled.

use crate::metrics::{exact_match, first_line, percent, percentile};
use crate::{Completer, EvalError, Result};
use moat_context::post::Post;
use moat_engine::FimPrompt;
use moat_index::Lang;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub name: String,
    pub language: String,
    pub prompt: String,
    pub suffix: String,
    pub canonical_solution: String,
}

pub fn lang(code: &str) -> Option<Lang> {
    match code {
        "py" => Some(Lang::Python),
        "java" => Some(Lang::Java),
        "js" => Some(Lang::JavaScript),
        _ => None,
    }
}

/// Reads a `.jsonl` or `.jsonl.gz` file of rows.
pub fn load(path: &Path) -> Result<Vec<Row>> {
    let err = |detail: String| EvalError::Data {
        path: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| err(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row =
            serde_json::from_str(&line).map_err(|e| err(format!("line {}: {e}", i + 1)))?;
        rows.push(row);
    }
    Ok(rows)
}

/// `limit` rows per language, evenly spaced through the set so that every part of it is
/// represented (deterministic).
pub fn sample(rows: &[Row], langs: &[String], limit: Option<usize>) -> Vec<Row> {
    let mut by_lang: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        if langs.is_empty() || langs.contains(&r.language) {
            by_lang.entry(&r.language).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    for (_, v) in by_lang {
        let n = limit.unwrap_or(v.len()).min(v.len());
        if n == 0 {
            continue;
        }
        let step = v.len() as f64 / n as f64;
        out.extend((0..n).map(|i| Row::clone(v[(i as f64 * step) as usize])));
    }
    out
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub n: usize,
    /// Exact match by the report's rule (first line of the generation), percent.
    pub first_line_em: f64,
    /// Exact match of our post-processed completion, percent.
    pub post_em: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub language: String,
    pub first_line: String,
    /// The generation before post-processing.
    pub raw: String,
    pub post: String,
    pub want: String,
    pub ms: f64,
}

fn score(outcomes: &[&Outcome]) -> Score {
    let n = outcomes.len();
    let lat: Vec<f64> = outcomes.iter().map(|o| o.ms).collect();
    let first = outcomes
        .iter()
        .filter(|o| o.first_line == o.want.trim())
        .count();
    let ours = outcomes
        .iter()
        .filter(|o| exact_match(&o.post, &o.want))
        .count();
    Score {
        n,
        first_line_em: percent(first, n),
        post_em: percent(ours, n),
        latency_p50_ms: percentile(&lat, 0.5),
        latency_p95_ms: percentile(&lat, 0.95),
    }
}

/// Scores per language, and pooled under `"all"`.
pub fn scores(outcomes: &[Outcome]) -> BTreeMap<String, Score> {
    let mut m = BTreeMap::new();
    let mut langs: Vec<&str> = outcomes.iter().map(|o| o.language.as_str()).collect();
    langs.sort();
    langs.dedup();
    for l in langs {
        let v: Vec<&Outcome> = outcomes.iter().filter(|o| o.language == l).collect();
        m.insert(l.to_string(), score(&v));
    }
    m.insert("all".into(), score(&outcomes.iter().collect::<Vec<_>>()));
    m
}

/// Pooled the way the report pools: each language's exact match weighted by its rows in the
/// whole set (`set`), so that a sample of equal parts per language reads like the full
/// run. `(first-line, ours)`; `None` without any scored language.
pub fn weighted(scores: &BTreeMap<String, Score>, set: &[Row]) -> Option<(f64, f64)> {
    let (mut w, mut first, mut ours) = (0.0, 0.0, 0.0);
    for (l, s) in scores.iter().filter(|(l, _)| *l != "all") {
        let rows = set.iter().filter(|r| &r.language == l).count() as f64;
        w += rows;
        first += rows * s.first_line_em;
        ours += rows * s.post_em;
    }
    (w > 0.0).then(|| (first / w, ours / w))
}

/// Completes one row the way the report prompts it (no repository, no path).
pub fn run_row(c: &mut Completer, row: &Row) -> Result<Outcome> {
    let prompt = FimPrompt {
        prefix: row.prompt.clone(),
        suffix: row.suffix.clone(),
        ..Default::default()
    };
    // The set's holes are whole lines with both newlines inside the hole: the prompt ends
    // at the end of the line before, the suffix starts at the line after. In an editor the
    // user has an empty line there, so our post-processing sees that document (and the
    // generation without the newline that the set's convention puts first).
    let post = Post::new(
        lang(&row.language),
        &format!("{}\n", row.prompt),
        &format!("\n{}", row.suffix),
    );
    let view = |t: &str| t.strip_prefix('\n').unwrap_or(t).to_string();
    // The first-line rule needs the first non-empty line whole.
    let done = |t: &str| view(t).contains('\n') && post.end(&view(t)).is_some();
    // Both scorings keep one line: the set's holes are single lines.
    let (raw, timings) = c.generate(&prompt, true, &done)?;
    Ok(Outcome {
        name: row.name.clone(),
        language: row.language.clone(),
        first_line: first_line(&raw).to_string(),
        post: post.finish(&view(&raw)),
        raw,
        want: row.canonical_solution.clone(),
        ms: timings.prefill_ms + timings.decode_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(language: &str) -> Row {
        Row {
            name: String::new(),
            language: language.into(),
            prompt: String::new(),
            suffix: String::new(),
            canonical_solution: String::new(),
        }
    }

    fn outcome(language: &str, right: bool) -> Outcome {
        Outcome {
            name: String::new(),
            language: language.into(),
            first_line: if right { "x = 1" } else { "x = 2" }.into(),
            raw: String::new(),
            post: "x = 1".into(),
            want: "    x = 1".into(),
            ms: 1.0,
        }
    }

    #[test]
    fn the_weighted_pool_weighs_languages_by_their_rows_in_the_set() {
        // A sample of two rows each; the set has three times as many js rows as py rows.
        let set: Vec<Row> = ["py", "js", "js", "js"].iter().map(|l| row(l)).collect();
        let outcomes = [
            outcome("py", true),
            outcome("py", true),
            outcome("js", true),
            outcome("js", false),
        ];
        let scores = scores(&outcomes);
        assert_eq!(scores["all"].first_line_em, 75.0);
        let (first, ours) = weighted(&scores, &set).unwrap();
        assert!((first - (100.0 + 3.0 * 50.0) / 4.0).abs() < 1e-9, "{first}");
        assert_eq!(ours, 100.0);
        assert_eq!(weighted(&BTreeMap::new(), &set), None);
    }
}
