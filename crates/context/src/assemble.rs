//! Prompt assembly: the in-file window around the cursor and ranked repository context,
//! fitted exactly into a token budget and rendered in the model's repository format.
//!
//! The budget is filled by priority: the lines nearest the cursor, then repository context
//! up to its share, then more of the file before the cursor. Context is ordered by how
//! rarely it changes (file summaries, definitions, similar code, recent edits) and by path,
//! so that consecutive requests share a long token prefix and the engine's KV cache pays
//! off; the cursor region comes last.

use crate::error::{ContextError, Result};
use crate::lines;
use crate::snippets::{self, Files, Snippet, SourceKind};
use moat_engine::fim::{self, ContextFile, FimFormat, FimPrompt};
use moat_engine::tokenizer::Tokenizer;
use moat_index::{Index, Lang};
use serde::Serialize;
use std::collections::BTreeMap;

/// Lines the start of a budget-cut window moves by.
const WINDOW_STEP: u32 = 16;

/// Lines the cursor may move down from where the repository context was chosen and keep
/// it, on a CPU (see [`ContextMemo::keeping`]). Writing new code moves the cursor down a
/// line at a time; context chosen afresh at every Enter changed the head of the prompt,
/// and the engine recomputed all of it: `moat bench lsp --lines 4` saw 7 of 12 next lines
/// prefill ~1,450 tokens anew (10 s on a CPU without AMX) against ~0.4 s for the others.
/// It costs retrieval: the context then holds the answer's name less often (`moat eval
/// repo --stale-lines`).
pub const MEMO_LINES: u32 = 8;

/// Most tokens the text after the cursor takes on a CPU, where every keystroke re-prefills
/// it. Session 20 measured both sides (`moat eval repo DIR --holes 200 --seed 1 --context
/// file --suffix-tokens N`; `moat bench lsp rich/table.py --sites 4 --suffix-tokens N`):
/// 64 / 128 / 256 tokens gave rich 19.5 / 21.0 / 23.5 and axios 12.0 / 16.5 / 17.5 exact
/// match, and model-answered keystrokes p50 125 / 125 / 1,660 ms: 256 is worth more but
/// too slow to type with on two cores.
pub const CPU_SUFFIX_TOKENS: usize = 128;

/// Prompt tokens, markup included, and how they are shared.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub total: usize,
    /// Most of the total that repository context may take.
    pub repo_share: f32,
    /// Most of the total that the text after the cursor may take.
    pub suffix_share: f32,
}

impl Budget {
    /// This budget with the text after the cursor held to at most `tokens` (never more than
    /// its usual share): the server's `suffixTokens`, and the eval's flag of that name.
    pub fn suffix_capped(self, tokens: usize) -> Self {
        Self {
            suffix_share: self
                .suffix_share
                .min(tokens as f32 / self.total.max(1) as f32),
            ..self
        }
    }
}

impl Default for Budget {
    /// Fitted to the CPU model: 1,536 prompt tokens prefill in about a second once the
    /// context part is cached.
    fn default() -> Self {
        Self {
            total: 1536,
            repo_share: 0.4,
            suffix_share: 0.15,
        }
    }
}

/// What the prompt may draw on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextMode {
    /// The text before the cursor only (left-to-right completion).
    None,
    /// The file around the cursor, before and after (fill-in-the-middle).
    File,
    /// The file and the repository context.
    Repo,
}

impl ContextMode {
    pub const ALL: [ContextMode; 3] = [ContextMode::None, ContextMode::File, ContextMode::Repo];

    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::File => "file",
            Self::Repo => "repo",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// A region the user edited recently (the language server keeps these).
#[derive(Debug, Clone)]
pub struct RecentEdit {
    pub path: String,
    pub start_line: u32,
    pub text: String,
}

/// A completion request: the document as the editor has it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Repository-relative, `/`-separated.
    pub path: &'a str,
    pub lang: Option<Lang>,
    pub text: &'a str,
    /// Byte offset of the cursor in `text`.
    pub cursor: usize,
    /// Most recent first.
    pub recent: &'a [RecentEdit],
}

/// One part of the prompt, for `--explain` and for tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// `prefix`, `suffix`, or a repository source (`definition`, `import`, `similar`,
    /// `recent_edit`).
    pub kind: &'static str,
    pub path: String,
    /// 0-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// Tokens it was counted at.
    pub tokens: usize,
    /// Fused rank score (0 for the in-file window).
    pub score: f32,
}

#[derive(Debug, Clone)]
pub struct Assembled {
    pub prompt: FimPrompt,
    /// The in-file window alone (the prompt's prefix may also carry context as comments):
    /// what post-processing looks at.
    pub prefix: String,
    pub suffix: String,
    pub sources: Vec<Source>,
    /// Tokens of the rendered prompt, exactly.
    pub tokens: usize,
}

/// Reciprocal rank fusion constant (the usual 60: ranks below ~10 barely differ).
const RRF_K: f32 = 60.0;

pub struct Assembler<'a> {
    pub tok: &'a Tokenizer,
    pub format: FimFormat,
    pub repo_name: String,
    pub budget: Budget,
    pub style: ContextStyle,
}

/// How repository context is shown to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextStyle {
    /// The model's repository markup (Qwen: `<|repo_name|>`, `<|file_sep|>`). The default:
    /// 17.5 vs 15.0 exact match for comments on 40 rich holes (seed 2), within noise.
    #[default]
    RepoMarkup,
    /// Path comments at the start of the prefix, in plain fill-in-the-middle.
    Comments,
}

impl ContextStyle {
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "repo" | "markup" => Some(Self::RepoMarkup),
            "comments" => Some(Self::Comments),
            _ => None,
        }
    }
}

/// The ranked context chosen for a cursor line (see `Assembler::assemble_memo`).
pub struct ContextMemo {
    /// The document and the cursor line it was chosen at.
    key: Option<(String, u32)>,
    ranked: Vec<(Snippet, f32)>,
    /// Lines it serves: its own and those below it.
    lines: u32,
}

impl Default for ContextMemo {
    /// Kept on its own line only.
    fn default() -> Self {
        Self::keeping(1)
    }
}

impl ContextMemo {
    /// A memo that serves the line it was chosen at and the `lines - 1` below it; with 0,
    /// none: the context is chosen afresh for every request.
    pub fn keeping(lines: u32) -> Self {
        Self {
            key: None,
            ranked: Vec::new(),
            lines,
        }
    }

    /// Changes how far down the context is kept; what is kept stays.
    pub fn set_lines(&mut self, lines: u32) {
        self.lines = lines;
    }

    /// Whether the context chosen at the memo's line still serves `line` of `path`.
    fn serves(&self, path: &str, line: u32) -> bool {
        matches!(&self.key, Some((p, at)) if p == path && (*at..at.saturating_add(self.lines)).contains(&line))
    }
}

/// A snippet with its fused score and its token cost as counted when it was chosen.
struct Chosen {
    snippet: Snippet,
    score: f32,
    tokens: usize,
}

impl Assembler<'_> {
    fn count(&self, s: &str) -> Result<usize> {
        Ok(self.tok.count(s)?)
    }

    pub fn assemble(
        &self,
        req: &Request,
        index: Option<&Index>,
        mode: ContextMode,
    ) -> Result<Assembled> {
        self.assemble_memo(req, index, mode, &mut ContextMemo::default())
    }

    /// Like `assemble`, reusing the repository context that an earlier call chose (kept in
    /// `memo`) while the cursor stays on its line or, as the memo says, the next few below.
    /// While a line is typed its new names would change the context at the head of the
    /// prompt, and the engine would recompute all of it (on a CPU, seconds) for a keystroke;
    /// so would each Enter while new code is written line after line. The context is
    /// chosen afresh when the cursor goes up, further down, or to another document.
    pub fn assemble_memo(
        &self,
        req: &Request,
        index: Option<&Index>,
        mode: ContextMode,
        memo: &mut ContextMemo,
    ) -> Result<Assembled> {
        let text = req.text;
        if req.cursor > text.len() || !text.is_char_boundary(req.cursor) {
            return Err(ContextError::Cursor {
                cursor: req.cursor,
                len: text.len(),
            });
        }
        let (before, after) = text.split_at(req.cursor);
        let starts = lines::starts(text);
        let cursor_line = lines::line_of(&starts, req.cursor);
        let total = self.budget.total;

        // With repository context the prompt is in the model's repository format (repo
        // name, then each file under its path, the current one last); without any, it is
        // plain fill-in-the-middle, the form the model was trained on for one file (the
        // repository header alone made the default model answer worse: `return n` for the
        // body of `fib`).
        let shape = |context: Vec<ContextFile>| {
            let repo = !context.is_empty();
            FimPrompt {
                prefix: String::new(),
                suffix: String::new(),
                path: repo.then(|| req.path.to_string()),
                repo_name: repo.then(|| self.repo_name.clone()),
                context,
            }
        };
        // Markup alone, rendered; in repo mode with the header the context will need.
        let header = FimPrompt {
            path: Some(req.path.to_string()),
            repo_name: Some(self.repo_name.clone()),
            ..Default::default()
        };
        let overhead = if mode == ContextMode::Repo {
            fim::render(self.tok, self.format, &header)?.len()
        } else {
            fim::render(self.tok, self.format, &shape(Vec::new()))?.len()
        };
        let avail = total.saturating_sub(overhead);

        // Units of the window: whole lines outward from the cursor; the first unit of each
        // side is the cursor line's part.
        let prefix_units: Vec<&str> = {
            let mut v = Vec::new();
            let mut end = before.len();
            for (i, _) in before.rmatch_indices('\n') {
                v.push(&before[i + 1..end]);
                end = i + 1;
            }
            v.push(&before[..end]);
            v
        };
        let suffix_units: Vec<&str> = if mode == ContextMode::None {
            Vec::new()
        } else {
            after.split_inclusive('\n').collect()
        };
        let first_cost = self.count(prefix_units[0])?;
        if first_cost > avail {
            return Err(ContextError::Budget {
                budget: total,
                needed: overhead + first_cost,
            });
        }

        let repo_max = if mode == ContextMode::Repo {
            (total as f32 * self.budget.repo_share) as usize
        } else {
            0
        };
        let suffix_max = (total as f32 * self.budget.suffix_share) as usize;
        let near_prefix = avail.saturating_sub(suffix_max + repo_max).max(first_cost);

        let mut used = 0;
        let mut n_prefix = 0;
        let grow_prefix = |limit: usize, used: &mut usize, n: &mut usize| {
            while *n < prefix_units.len() {
                let c = self.count(prefix_units[*n])?;
                if *used + c > limit {
                    break;
                }
                *used += c;
                *n += 1;
            }
            Ok::<(), ContextError>(())
        };
        grow_prefix(near_prefix, &mut used, &mut n_prefix)?;
        let mut n_suffix: usize = 0;
        let mut suffix_tokens = 0;
        for u in &suffix_units {
            let c = self.count(u)?;
            if suffix_tokens + c > suffix_max || used + c > avail {
                break;
            }
            suffix_tokens += c;
            used += c;
            n_suffix += 1;
        }

        let mut chosen: Vec<Chosen> = Vec::new();
        if let (ContextMode::Repo, Some(index)) = (mode, index) {
            let limit = repo_max.min(avail.saturating_sub(used));
            let files = Files::new(index, req.path, text);
            if !memo.serves(req.path, cursor_line) {
                memo.ranked = self.ranked(&files, index, req, before, cursor_line);
                memo.key = Some((req.path.to_string(), cursor_line));
            }
            let ranked = memo.ranked.clone();
            let mut spent = 0;
            let mut paths_shown: Vec<String> = Vec::new();
            for (snippet, score) in ranked {
                let header = if paths_shown.contains(&snippet.path) {
                    1 // the `...` between parts of one file, about
                } else {
                    self.count(&format!("{}\n", snippet.path))? + 1
                };
                let cost = self.count(&snippet.text)? + header;
                if spent + cost > limit {
                    continue;
                }
                spent += cost;
                if !paths_shown.contains(&snippet.path) {
                    paths_shown.push(snippet.path.clone());
                }
                chosen.push(Chosen {
                    snippet,
                    score,
                    tokens: cost,
                });
            }
            used += spent;
        }
        // What is left goes to more of the file before the cursor. Nothing twice: a
        // same-file snippet that the grown window now shows is dropped, and its tokens go to
        // the window too.
        loop {
            grow_prefix(avail, &mut used, &mut n_prefix)?;
            let first_prefix_line = cursor_line + 1 - n_prefix as u32;
            let last_suffix_line = cursor_line + n_suffix.saturating_sub(1) as u32;
            let before_drop = chosen.len();
            chosen.retain(|c| {
                let keep = c.snippet.path != req.path
                    || c.snippet.last() < first_prefix_line
                    || c.snippet.first() > last_suffix_line;
                if !keep {
                    used -= c.tokens;
                }
                keep
            });
            if chosen.len() == before_drop {
                break;
            }
        }

        // A window cut by the budget starts on a multiple of WINDOW_STEP lines, so that
        // the start stays put while the user types and moves down a few lines: the prompt
        // keeps its head and the engine's cache covers it.
        if n_prefix < prefix_units.len() {
            let first = cursor_line + 1 - n_prefix as u32;
            let aligned = first.div_ceil(WINDOW_STEP) * WINDOW_STEP;
            if aligned <= cursor_line {
                n_prefix = (cursor_line + 1 - aligned) as usize;
            }
        }

        // Exact fit: render and count; over the budget (the per-line counts are estimates),
        // drop the least-ranked snippet, then the farthest prefix line.
        loop {
            let window = (&prefix_units[..], n_prefix, &suffix_units[..], n_suffix);
            let windowed = Self::prompt(window, &chosen, &shape);
            let prompt = self.styled(&windowed, req);
            let tokens = fim::render(self.tok, self.format, &prompt)?.len();
            if tokens <= total {
                let sources = self.sources(req, cursor_line, &windowed, &chosen)?;
                return Ok(Assembled {
                    prompt,
                    prefix: windowed.prefix,
                    suffix: windowed.suffix,
                    sources,
                    tokens,
                });
            }
            if let Some(worst) = chosen
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.score.total_cmp(&b.1.score))
                .map(|(i, _)| i)
            {
                chosen.remove(worst);
            } else if n_suffix > 0 {
                n_suffix -= 1;
            } else if n_prefix > 1 {
                n_prefix -= 1;
            } else {
                return Err(ContextError::Budget {
                    budget: total,
                    needed: tokens,
                });
            }
        }
    }

    /// The repository sources as ranked lists, fused by reciprocal rank; a snippet that
    /// overlaps an earlier one adds its score to it, and its other lines stay a candidate
    /// of their own.
    fn ranked(
        &self,
        files: &Files,
        index: &Index,
        req: &Request,
        before: &str,
        cursor_line: u32,
    ) -> Vec<(Snippet, f32)> {
        let mut lists: Vec<Vec<Snippet>> = Vec::new();
        if let Some(lang) = req.lang {
            lists.push(snippets::definitions(
                files,
                index,
                req.path,
                lang,
                req.text,
                cursor_line,
                word_at(req.text, req.cursor),
            ));
        }
        lists.push(snippets::similar(files, index, req.path, before));
        lists.push(
            req.recent
                .iter()
                .filter(|e| !e.text.trim().is_empty())
                .map(|e| Snippet {
                    kind: SourceKind::RecentEdit,
                    path: e.path.clone(),
                    lines: (e.start_line..e.start_line + e.text.lines().count().max(1) as u32)
                        .collect(),
                    text: e.text.clone(),
                    file: None,
                })
                .collect(),
        );
        // The cursor right after `module.` asks for a member of that module: its summary
        // leads (ties in the fusion go to the earlier list).
        let members = snippets::members(files, index, req.path, req.text, before);
        let skip = members.as_ref().map(|m| m.path.clone());
        lists.push(snippets::imports(files, index, req.path, skip.as_deref()));
        if let Some(m) = members {
            lists.insert(0, vec![m]);
        }
        let mut fused: Vec<(Snippet, f32)> = Vec::new();
        for list in lists {
            for (rank, s) in list.into_iter().enumerate() {
                let score = 1.0 / (RRF_K + rank as f32 + 1.0);
                let Some(at) = fused.iter().position(|(f, _)| f.overlaps(&s)) else {
                    fused.push((s, score));
                    continue;
                };
                fused[at].1 += score;
                // What no earlier candidate shows stays a candidate of its own.
                let mut rest = Some(s);
                for (f, _) in &fused[at..] {
                    rest = match rest {
                        Some(r) if r.overlaps(f) => r.without(f),
                        r => r,
                    };
                }
                fused.extend(rest.map(|r| (r, score)));
            }
        }
        // Stable: equal scores keep the order of the lists (definitions first).
        fused.sort_by(|a, b| b.1.total_cmp(&a.1));
        fused
    }

    /// In the comments style, the context files go at the start of the prefix, each under a
    /// comment with its path, and the prompt is plain fill-in-the-middle.
    fn styled(&self, p: &FimPrompt, req: &Request) -> FimPrompt {
        if self.style == ContextStyle::RepoMarkup || p.context.is_empty() {
            return p.clone();
        }
        let marker = match req.lang {
            Some(Lang::Python) => "#",
            _ => "//",
        };
        let mut prefix = String::new();
        for f in &p.context {
            prefix.push_str(&format!("{marker} {}\n{}\n\n", f.path, f.content));
        }
        prefix.push_str(&format!("{marker} {}\n", req.path));
        prefix.push_str(&p.prefix);
        FimPrompt {
            prefix,
            suffix: p.suffix.clone(),
            ..Default::default()
        }
    }

    /// The prompt for a window and a choice of snippets. One context file per path, its
    /// snippets' lines merged; files ordered by the most stable kind they hold, then by path.
    fn prompt(
        window: (&[&str], usize, &[&str], usize),
        chosen: &[Chosen],
        shape: &dyn Fn(Vec<ContextFile>) -> FimPrompt,
    ) -> FimPrompt {
        let (prefix_units, n_prefix, suffix_units, n_suffix) = window;
        let mut kind_of: BTreeMap<&str, SourceKind> = BTreeMap::new();
        for c in chosen {
            let k = kind_of.entry(&c.snippet.path).or_insert(c.snippet.kind);
            *k = (*k).min(c.snippet.kind);
        }
        let mut by_path: BTreeMap<(SourceKind, &str), Vec<&Snippet>> = BTreeMap::new();
        for c in chosen {
            let path = c.snippet.path.as_str();
            by_path
                .entry((kind_of[path], path))
                .or_default()
                .push(&c.snippet);
        }
        let mut context = Vec::new();
        for ((_, path), parts) in by_path {
            let mut content = String::new();
            // Lines of the file itself, merged and shown in order.
            let file = parts.iter().find_map(|s| s.file.clone());
            if let Some(file) = file {
                let mut lines: Vec<u32> = parts
                    .iter()
                    .filter(|s| s.file.is_some())
                    .flat_map(|s| s.lines.iter().copied())
                    .collect();
                lines.sort_unstable();
                lines.dedup();
                content.push_str(&snippets::show(&file, &lines));
            }
            // An edit's own text (it may not be saved).
            for s in parts.iter().filter(|s| s.file.is_none()) {
                if !content.is_empty() {
                    content.push_str("...\n");
                }
                content.push_str(&s.text);
                if !content.ends_with('\n') {
                    content.push('\n');
                }
            }
            context.push(ContextFile {
                path: path.to_string(),
                content: content.trim_end_matches('\n').to_string(),
            });
        }
        let mut p = shape(context);
        p.prefix = prefix_units[..n_prefix].iter().rev().copied().collect();
        p.suffix = suffix_units[..n_suffix].concat();
        p
    }

    fn sources(
        &self,
        req: &Request,
        cursor_line: u32,
        prompt: &FimPrompt,
        chosen: &[Chosen],
    ) -> Result<Vec<Source>> {
        let n_prefix = prompt.prefix.split_inclusive('\n').count().max(1) as u32;
        let mut v = vec![Source {
            kind: "prefix",
            path: req.path.to_string(),
            start_line: cursor_line + 1 - n_prefix,
            end_line: cursor_line,
            tokens: self.count(&prompt.prefix)?,
            score: 0.0,
        }];
        if !prompt.suffix.is_empty() {
            let n_suffix = prompt.suffix.split_inclusive('\n').count() as u32;
            v.push(Source {
                kind: "suffix",
                path: req.path.to_string(),
                start_line: cursor_line,
                end_line: cursor_line + n_suffix - 1,
                tokens: self.count(&prompt.suffix)?,
                score: 0.0,
            });
        }
        for c in chosen {
            v.push(Source {
                kind: c.snippet.kind.as_str(),
                path: c.snippet.path.clone(),
                start_line: c.snippet.first(),
                end_line: c.snippet.last(),
                tokens: c.tokens,
                score: c.score,
            });
        }
        Ok(v)
    }
}

/// The identifier the cursor is in or at the end of ("" when none).
fn word_at(text: &str, cursor: usize) -> &str {
    let is_word = lines::is_word;
    let start = text[..cursor]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(cursor, |(i, _)| i);
    let end = text[cursor..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(text.len(), |(i, _)| cursor + i);
    &text[start..end]
}
