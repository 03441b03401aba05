//! Fill-in-the-middle training samples cut from source files, prompted exactly as the server
//! prompts the model (the same assembler: window, markup, repository context, suffix capped
//! like the CPU server's), so that training matches serving: the rest of a line, a few whole
//! lines, or a block's body.

use crate::data::SourceFile;
use crate::error::Result;
use crate::train::Sample;
use moat_context::{Assembler, Budget, ContextError, ContextMode, ContextStyle, Request};
use moat_engine::fim::{render, FimFormat};
use moat_engine::tokenizer::Tokenizer;
use moat_index::Index;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoleKind {
    /// From a point in a line to its end.
    Line,
    /// One to four whole lines.
    Lines,
    /// The indented body after a block opener.
    Block,
}

#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Tokens per sample, prompt and middle together.
    pub seq: usize,
    /// Longest middle, in tokens (longer holes are not used).
    pub max_middle: usize,
    /// Suffix tokens at most (the CPU server sends 64).
    pub max_suffix: usize,
    /// What the prompts draw on (the server's `context` setting; repository context needs
    /// an index in the [`Prompter`]).
    pub context: ContextMode,
    /// Samples per 1,000 bytes of source (at least one per file).
    pub per_kb: f64,
    /// At most this many samples in all (a monorepo is thinned evenly, not truncated).
    pub max_samples: usize,
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            seq: 256,
            max_middle: 48,
            max_suffix: 64,
            context: ContextMode::Repo,
            per_kb: 1.0,
            max_samples: 20_000,
            seed: 1,
        }
    }
}

/// A hole: byte range of the middle in the file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    pub kind: HoleKind,
    pub start: usize,
    pub end: usize,
}

struct Lines<'a> {
    text: &'a str,
    /// Byte offset of each line's start; one extra entry at the end of the text.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        if *starts.last().expect("non-empty") != text.len() {
            starts.push(text.len());
        }
        Self { text, starts }
    }
    fn count(&self) -> usize {
        self.starts.len() - 1
    }
    /// Line `i` without its newline.
    fn line(&self, i: usize) -> &'a str {
        self.text[self.starts[i]..self.starts[i + 1]].trim_end_matches(['\n', '\r'])
    }
    fn indent(&self, i: usize) -> usize {
        let l = self.line(i);
        l.len() - l.trim_start().len()
    }
}

/// Picks a hole of `kind`, or `None` when the file has no place for one.
pub fn pick_hole(text: &str, kind: HoleKind, rng: &mut StdRng) -> Option<Hole> {
    let lines = Lines::new(text);
    let n = lines.count();
    let code: Vec<usize> = (0..n)
        .filter(|&i| !lines.line(i).trim().is_empty())
        .collect();
    if code.is_empty() {
        return None;
    }
    match kind {
        HoleKind::Line => {
            let i = code[rng.gen_range(0..code.len())];
            let l = lines.line(i);
            let indent = lines.indent(i);
            // Half the time from the start of the code, else from a random character of it.
            let col = if rng.gen_bool(0.5) {
                indent
            } else {
                let bounds: Vec<usize> = l
                    .char_indices()
                    .map(|(c, _)| c)
                    .filter(|&c| c >= indent)
                    .collect();
                bounds[rng.gen_range(0..bounds.len())]
            };
            let start = lines.starts[i] + col;
            let end = lines.starts[i] + l.len();
            (end > start).then_some(Hole { kind, start, end })
        }
        HoleKind::Lines => {
            let i = code[rng.gen_range(0..code.len())];
            let k = rng.gen_range(1..=4).min(n - i);
            Some(Hole {
                kind,
                start: lines.starts[i],
                end: lines.starts[i + k],
            })
        }
        HoleKind::Block => {
            let openers: Vec<usize> = (0..n.saturating_sub(1))
                .filter(|&i| {
                    let l = lines.line(i).trim_end();
                    (l.ends_with(':') || l.ends_with('{'))
                        && !lines.line(i + 1).trim().is_empty()
                        && lines.indent(i + 1) > lines.indent(i)
                })
                .collect();
            if openers.is_empty() {
                return None;
            }
            let o = openers[rng.gen_range(0..openers.len())];
            let base = lines.indent(o);
            let mut j = o + 1;
            while j < n && (lines.line(j).trim().is_empty() || lines.indent(j) > base) {
                j += 1;
            }
            // Trailing blank lines belong to what follows.
            while j > o + 2 && lines.line(j - 1).trim().is_empty() {
                j -= 1;
            }
            Some(Hole {
                kind,
                start: lines.starts[o + 1],
                end: lines.starts[j],
            })
        }
    }
}

/// How a sample's prompt is built: by the context crate's assembler, as the server builds it
/// (the same window, markup and, with an index, repository context).
pub struct Prompter<'a> {
    pub tok: &'a Tokenizer,
    pub format: FimFormat,
    pub mode: ContextMode,
    /// What repository context is drawn from (`ContextMode::Repo`). Held-out files must not
    /// be in it, or training would show the model the code it is judged on.
    pub index: Option<&'a Index>,
    /// The repository's name in the prompt (the server uses its directory's name).
    pub repo_name: String,
}

/// Renders the sample for `hole`: the prompt as the server builds it for a cursor where the
/// middle was, then the middle and the end-of-text token, the loss taken on those last two.
/// `None` when the middle is too long or the prompt cannot fit.
pub fn render_sample(
    p: &Prompter,
    file: &SourceFile,
    hole: &Hole,
    opts: &SampleOptions,
) -> Result<Option<Sample>> {
    let text = &file.text;
    let middle = p.tok.encode(&text[hole.start..hole.end])?;
    if middle.is_empty() || middle.len() > opts.max_middle {
        return Ok(None);
    }
    let document = format!("{}{}", &text[..hole.start], &text[hole.end..]);
    let total = opts.seq.saturating_sub(middle.len() + 1);
    let usual = Budget::default();
    let budget = Budget {
        total,
        // The suffix as on a CPU server: `max_suffix` tokens (64) at most.
        suffix_share: (opts.max_suffix as f32 / total.max(1) as f32).min(1.0),
        ..usual
    };
    let assembler = Assembler {
        tok: p.tok,
        format: p.format,
        repo_name: p.repo_name.clone(),
        budget,
        style: ContextStyle::default(),
    };
    let req = Request {
        path: &file.path,
        lang: Some(file.lang),
        text: &document,
        cursor: hole.start,
        recent: &[],
    };
    let assembled = match assembler.assemble(&req, p.index, p.mode) {
        Ok(a) => a,
        Err(ContextError::Budget { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut tokens = render(p.tok, p.format, &assembled.prompt)?;
    let target_from = tokens.len();
    tokens.extend(middle);
    tokens.push(p.tok.eos().unwrap_or(0));
    // The assembler counts pieces; the whole can differ by a token or two at the seams.
    if tokens.len() > opts.seq + 4 {
        let cut = tokens.len() - opts.seq;
        if cut >= target_from {
            return Ok(None);
        }
        tokens.drain(1..=cut);
        return Ok(Some(Sample {
            target_from: target_from - cut,
            tokens,
        }));
    }
    Ok(Some(Sample {
        tokens,
        target_from,
    }))
}

/// Samples for `files`, deterministic for a seed and independent of the order of files.
pub fn samples(p: &Prompter, files: &[SourceFile], opts: &SampleOptions) -> Result<Vec<Sample>> {
    let want_of = |f: &SourceFile| f.text.len() as f64 / 1000.0 * opts.per_kb * f.weight;
    let total: f64 = files.iter().map(|f| want_of(f).max(1.0)).sum();
    let thin = (opts.max_samples as f64 / total.max(1.0)).min(1.0);
    let mut out = Vec::new();
    for f in files {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(opts.seed.to_le_bytes())
            .chain_update(f.path.as_bytes())
            .finalize()
            .into();
        let mut rng = StdRng::from_seed(digest);
        let want = if thin < 1.0 {
            // Thinned: the fractional part decides by chance, so small files still count.
            let x = want_of(f).max(1.0) * thin;
            x.floor() as usize + usize::from(rng.gen::<f64>() < x.fract())
        } else {
            (want_of(f).round() as usize).max(1)
        };
        let mut tries = 0;
        let mut got = 0;
        while got < want && tries < want * 4 {
            tries += 1;
            let kind = match rng.gen_range(0..10) {
                0..=4 => HoleKind::Line,
                5..=7 => HoleKind::Lines,
                _ => HoleKind::Block,
            };
            let Some(hole) = pick_hole(&f.text, kind, &mut rng) else {
                continue;
            };
            if let Some(s) = render_sample(p, f, &hole, opts)? {
                out.push(s);
                got += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY: &str =
        "import os\n\ndef area(w, h):\n    x = w * h\n    return x\n\nprint(area(2, 3))\n";

    #[test]
    fn holes_are_the_rest_of_a_line_whole_lines_or_a_body() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let h = pick_hole(PY, HoleKind::Line, &mut rng).unwrap();
            let mid = &PY[h.start..h.end];
            assert!(
                !mid.contains('\n') && PY[h.end..].starts_with('\n'),
                "{mid:?}"
            );
            let h = pick_hole(PY, HoleKind::Lines, &mut rng).unwrap();
            let mid = &PY[h.start..h.end];
            assert!(
                mid.ends_with('\n') && (h.start == 0 || PY[..h.start].ends_with('\n')),
                "{mid:?}"
            );
            let h = pick_hole(PY, HoleKind::Block, &mut rng).unwrap();
            assert_eq!(&PY[h.start..h.end], "    x = w * h\n    return x\n");
        }
        assert!(pick_hole("x = 1\n", HoleKind::Block, &mut rng).is_none());
        // Multi-byte characters at the ends of lines and of the text.
        let t = "s = 'é'\nt = 'ü'";
        for _ in 0..50 {
            for kind in [HoleKind::Line, HoleKind::Lines] {
                let h = pick_hole(t, kind, &mut rng).unwrap();
                assert!(t.is_char_boundary(h.start) && t.is_char_boundary(h.end));
            }
        }
        assert!(pick_hole("\n\n", HoleKind::Line, &mut rng).is_none());
    }

    /// The tiny test model's tokenizer (a Qwen-like vocabulary with the FIM markup).
    fn tiny_tokenizer(dir: &std::path::Path) -> Tokenizer {
        let path = dir.join("tiny.gguf");
        moat_engine::tiny::write_tiny_model(&path, &moat_engine::tiny::TinySpec::default())
            .unwrap();
        let f = moat_engine::gguf::GgufFile::open(&path).unwrap();
        Tokenizer::from_gguf(&f.content).unwrap()
    }

    #[test]
    fn samples_fit_the_length_and_score_only_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let tok = tiny_tokenizer(dir.path());
        let mut long: String = (0..150)
            .map(|i| format!("def f{i}(n):\n    # café ü\n    return n + {i}\n\n"))
            .collect();
        long.push_str("x = 'é'");
        let file = SourceFile {
            path: "m.py".into(),
            lang: moat_index::Lang::Python,
            text: long.clone(),
            weight: 1.0,
        };
        let opts = SampleOptions {
            seq: 128,
            ..SampleOptions::default()
        };
        // Without an index, repository mode prompts with the file alone, as the server does.
        let p = Prompter {
            tok: &tok,
            format: FimFormat::Qwen,
            mode: ContextMode::Repo,
            index: None,
            repo_name: "repo".into(),
        };
        let s = samples(&p, std::slice::from_ref(&file), &opts).unwrap();
        assert!(s.len() >= long.len() / 1000, "{} samples", s.len());
        let middle = tok.token_id("<|fim_middle|>").unwrap();
        for x in &s {
            assert!(x.tokens.len() <= 128 + 4, "{}", x.tokens.len());
            assert_eq!(x.tokens[x.target_from - 1], middle);
            assert_eq!(*x.tokens.last().unwrap(), tok.eos().unwrap());
            let mid = tok
                .decode(&x.tokens[x.target_from..x.tokens.len() - 1])
                .unwrap();
            assert!(long.contains(&mid), "{mid:?}");
        }
        // Deterministic.
        assert_eq!(s, samples(&p, std::slice::from_ref(&file), &opts).unwrap());
        // A cap thins many files evenly.
        let many: Vec<SourceFile> = (0..200)
            .map(|i| SourceFile {
                path: format!("m{i}.py"),
                text: format!("def f{i}(n):\n    return n + {i}\n"),
                ..file.clone()
            })
            .collect();
        let capped = SampleOptions {
            max_samples: 50,
            ..opts.clone()
        };
        let n = samples(&p, &many, &capped).unwrap().len();
        assert!((30..=70).contains(&n), "{n} samples for a cap of 50");
    }

    #[test]
    fn repository_context_comes_from_the_index_as_the_server_chooses_it() {
        let dir = tempfile::tempdir().unwrap();
        let tok = tiny_tokenizer(dir.path());
        let repo = dir.path().join("shop");
        std::fs::create_dir(&repo).unwrap();
        std::fs::write(
            repo.join("money.py"),
            "def zorblax_total(cart):\n    return sum(cart)\n",
        )
        .unwrap();
        let main = "from money import zorblax_total\n\ndef pay(cart):\n    t = zorblax_total(cart)\n    return t\n";
        std::fs::write(repo.join("main.py"), main).unwrap();
        let mut index = Index::new(&repo, moat_index::walk::WalkOptions::default()).unwrap();
        index.refresh();
        let file = SourceFile {
            path: "main.py".into(),
            lang: moat_index::Lang::Python,
            text: main.into(),
            weight: 1.0,
        };
        let start = main.find("t = ").unwrap();
        let hole = Hole {
            kind: HoleKind::Line,
            start,
            end: start + main[start..].find('\n').unwrap(),
        };
        let opts = SampleOptions {
            seq: 200,
            ..SampleOptions::default()
        };
        let prompt = |mode, index| {
            let p = Prompter {
                tok: &tok,
                format: FimFormat::Qwen,
                mode,
                index,
                repo_name: "shop".into(),
            };
            let s = render_sample(&p, &file, &hole, &opts).unwrap().unwrap();
            let repo_markup = s.tokens.contains(&tok.token_id("<|repo_name|>").unwrap());
            (
                tok.decode(&s.tokens[..s.target_from]).unwrap(),
                tok.decode(&s.tokens[s.target_from..]).unwrap(),
                repo_markup,
            )
        };
        let (with, middle, markup) = prompt(ContextMode::Repo, Some(&index));
        assert!(markup && with.starts_with("shop\nmoney.py\n"), "{with}");
        assert!(with.contains("return sum(cart)"), "the definition: {with}");
        assert!(middle.starts_with("t = zorblax_total(cart)"), "{middle}");
        assert!(
            !with.contains("t = zorblax_total(cart)"),
            "the answer is not in the prompt"
        );
        let (alone, _, markup) = prompt(ContextMode::File, Some(&index));
        assert!(!alone.contains("return sum(cart)") && !markup, "{alone}");
    }
}
