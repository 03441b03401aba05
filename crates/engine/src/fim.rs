//! Fill-in-the-middle prompt formats per model family.

use crate::error::{EngineError, Result};
use crate::tokenizer::Tokenizer;

/// The markup a model family was trained with for infilling and for repository context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FimFormat {
    /// Qwen2.5-Coder: `<|fim_prefix|>…<|fim_suffix|>…<|fim_middle|>`, repository form with
    /// `<|repo_name|>` and `<|file_sep|>`.
    Qwen,
    /// StarCoder / StarCoder2: `<fim_prefix>…`, `<reponame>`, `<file_sep>`.
    StarCoder,
}

struct Markup {
    prefix: &'static str,
    suffix: &'static str,
    middle: &'static str,
    repo_name: &'static str,
    file_sep: &'static str,
}

impl FimFormat {
    pub const ALL: [FimFormat; 2] = [FimFormat::Qwen, FimFormat::StarCoder];

    pub fn name(self) -> &'static str {
        match self {
            FimFormat::Qwen => "qwen2.5-coder",
            FimFormat::StarCoder => "starcoder",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    fn markup(self) -> Markup {
        match self {
            FimFormat::Qwen => Markup {
                prefix: "<|fim_prefix|>",
                suffix: "<|fim_suffix|>",
                middle: "<|fim_middle|>",
                repo_name: "<|repo_name|>",
                file_sep: "<|file_sep|>",
            },
            FimFormat::StarCoder => Markup {
                prefix: "<fim_prefix>",
                suffix: "<fim_suffix>",
                middle: "<fim_middle>",
                repo_name: "<reponame>",
                file_sep: "<file_sep>",
            },
        }
    }

    /// The first format whose infilling tokens are all in the vocabulary.
    pub fn detect(tok: &Tokenizer) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| {
                let m = f.markup();
                [m.prefix, m.suffix, m.middle]
                    .iter()
                    .all(|t| tok.token_id(t).is_some())
            })
            .ok_or_else(|| {
                EngineError::NoFimTokens(
                    Self::ALL
                        .iter()
                        .map(|f| f.markup().prefix)
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
    }
}

/// Another file shown to the model before the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    pub path: String,
    pub content: String,
}

/// Everything a fill-in-the-middle prompt is made of. The context issue decides what goes in;
/// this module only renders it.
#[derive(Debug, Clone, Default)]
pub struct FimPrompt {
    pub prefix: String,
    pub suffix: String,
    /// Path of the current file, shown in the repository format.
    pub path: Option<String>,
    pub repo_name: Option<String>,
    pub context: Vec<ContextFile>,
}

fn id(tok: &Tokenizer, t: &str) -> Result<u32> {
    tok.token_id(t)
        .ok_or_else(|| EngineError::NoFimTokens(t.to_string()))
}

/// Renders `p` as token ids. Context comes first and the cursor region last, so that
/// consecutive requests share a long prefix of tokens and the KV cache can be reused.
pub fn render(tok: &Tokenizer, format: FimFormat, p: &FimPrompt) -> Result<Vec<u32>> {
    let m = format.markup();
    let mut out = Vec::new();
    let repo_form = !p.context.is_empty() || p.repo_name.is_some();
    if repo_form {
        if let (Some(repo_tok), Some(sep)) = (tok.token_id(m.repo_name), tok.token_id(m.file_sep)) {
            out.push(repo_tok);
            out.extend(tok.encode(&format!("{}\n", p.repo_name.as_deref().unwrap_or("repo")))?);
            for f in &p.context {
                out.push(sep);
                out.extend(tok.encode(&format!("{}\n{}\n", f.path, f.content))?);
            }
            out.push(sep);
            out.extend(tok.encode(&format!("{}\n", p.path.as_deref().unwrap_or("file")))?);
        } else {
            // No repository markup: show context files as path-comment headers.
            for f in &p.context {
                out.extend(tok.encode(&format!("// {}\n{}\n", f.path, f.content))?);
            }
        }
    }
    out.push(id(tok, m.prefix)?);
    out.extend(tok.encode(&p.prefix)?);
    out.push(id(tok, m.suffix)?);
    out.extend(tok.encode(&p.suffix)?);
    out.push(id(tok, m.middle)?);
    Ok(out)
}
