use anyhow::{anyhow, bail, Context, Result};
use moat_context::post::Post;
use moat_context::{Assembler, Budget, ContextMode, ContextStyle, Request};
use moat_engine::{
    AvoidLine, CancelFlag, DeviceChoice, Engine, EngineOptions, Flow, GenerateParams,
};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// FILE:LINE:COL, 1-based; COL counts characters.
    location: String,
    /// A built-in model name or a path to a GGUF file.
    #[arg(long)]
    model: Option<String>,
    /// A tuned adapter (name or directory) served unmerged on top of the model.
    #[arg(long)]
    adapter: Option<String>,
    /// Serve the adapter even if it did not beat the model on its held-out files.
    #[arg(long, requires = "adapter")]
    adapter_force: bool,
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Prompt budget in tokens, markup and context included.
    #[arg(long, default_value_t = Budget::default().total)]
    budget: usize,
    /// What the prompt draws on: none (text before the cursor), file, or repo.
    #[arg(long, default_value = "repo")]
    context: String,
    /// The repository (default: the git work tree around FILE, else FILE's directory).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Print the sources that went into the prompt, with their token counts.
    #[arg(long)]
    explain: bool,
    /// Print {"text", "timings", "sources"} as JSON.
    #[arg(long)]
    json: bool,
}

/// Splits `FILE:LINE:COL`; the file name itself may contain colons.
pub fn parse_location(loc: &str) -> Result<(PathBuf, usize, usize)> {
    let mut parts = loc.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    let (Some(col), Some(line), Some(file)) = (col, line, file) else {
        bail!("expected FILE:LINE:COL, got `{loc}`");
    };
    let num = |s: &str, what: &str| -> Result<usize> {
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(anyhow!(
                "{what} must be a number from 1, got `{s}` in `{loc}`"
            )),
        }
    };
    Ok((PathBuf::from(file), num(line, "LINE")?, num(col, "COLUMN")?))
}

/// Byte offset of a 1-based line and character column, or a clear error.
pub fn cursor_offset(text: &str, line: usize, col: usize) -> Result<usize> {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(l) = lines.get(line - 1) else {
        bail!(
            "line {line} is past the end of the file ({} lines)",
            lines.len()
        );
    };
    let l = l.strip_suffix('\r').unwrap_or(l);
    let chars = l.chars().count();
    if col > chars + 1 {
        bail!("column {col} is past the end of line {line} ({chars} characters)");
    }
    let start: usize = lines[..line - 1].iter().map(|l| l.len() + 1).sum();
    let within = l
        .char_indices()
        .nth(col - 1)
        .map(|(i, _)| i)
        .unwrap_or(l.len());
    Ok(start + within)
}

pub fn read_source(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{} is not UTF-8 text (invalid byte at offset {}); moat completes text files only",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

pub fn run(args: Args) -> Result<()> {
    let (file, line, col) = parse_location(&args.location)?;
    let text = read_source(&file)?;
    let offset = cursor_offset(&text, line, col)?;
    let mode = ContextMode::from_name(&args.context)
        .with_context(|| format!("unknown context mode `{}` (none, file, repo)", args.context))?;
    let device: DeviceChoice = args.device.parse()?;
    let abs = file
        .canonicalize()
        .with_context(|| format!("{}", file.display()))?;
    let root = match &args.repo {
        Some(r) => crate::index::repo_root(Some(r))?,
        None => crate::index::repo_root(abs.parent())?,
    }
    .canonicalize()?;
    let rel = abs
        .strip_prefix(&root)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_else(|_| file.display().to_string());
    let lang = moat_index::Lang::from_path_and_text(&abs, &text);
    // The index only when the prompt draws on it; `none` and `file` stay instant.
    let index = if mode == ContextMode::Repo {
        Some(crate::index::open(&root)?.0)
    } else {
        None
    };
    let model = crate::model::resolve(args.model.as_deref(), device.is_gpu())?;
    let mut engine = Engine::load(
        &model,
        &EngineOptions {
            device,
            ..Default::default()
        },
    )
    .with_context(|| format!("loading {}", model.display()))?;
    if let Some(a) = &args.adapter {
        let adapter = crate::tune::load_for_serving(a, &model, args.adapter_force)
            .map_err(anyhow::Error::msg)?;
        engine.set_adapter(Some(&adapter))?;
    }
    let assembled = Assembler {
        tok: engine.tokenizer(),
        format: engine.fim_format(),
        repo_name: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repo".into()),
        budget: Budget {
            total: args.budget,
            ..Budget::default()
        },
        style: ContextStyle::default(),
    }
    .assemble(
        &Request {
            path: &rel,
            lang,
            text: &text,
            cursor: offset,
            recent: &[],
        },
        index.as_ref(),
        mode,
    )?;
    let prompt = &assembled.prompt;
    let post = Post::new(lang, &assembled.prefix, &assembled.suffix);
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        avoid: AvoidLine::after(&prompt.prefix, &prompt.suffix),
        ..Default::default()
    };
    let tokens = engine.render_fim(prompt)?;
    let gen = engine.generate(
        &tokens,
        &params,
        &CancelFlag::new(),
        &mut |t| match post.end(t) {
            Some(cut) => Flow::StopAt(cut),
            None => Flow::Continue,
        },
    )?;
    let completion = post.finish(&gen.text);
    if args.json {
        let t = &gen.timings;
        let out = json!({
            "text": completion,
            "raw": gen.text,
            "stop": format!("{:?}", gen.stop),
            "prompt_tokens": assembled.tokens,
            "sources": assembled.sources,
            "timings": {
                "load_ms": engine.info().load_ms,
                "prompt_tokens": t.prompt_tokens,
                "prefill_ms": t.prefill_ms,
                "generated_tokens": t.generated_tokens,
                "decode_ms": t.decode_ms,
                "cached_tokens": t.cached_tokens,
            }
        });
        println!("{out}");
        return Ok(());
    }
    if args.explain {
        println!(
            "prompt: {} of {} tokens ({} mode)",
            assembled.tokens,
            args.budget,
            mode.name()
        );
        println!("{:<12} {:>7} {:>7}  source", "kind", "tokens", "score");
        for s in &assembled.sources {
            println!(
                "{:<12} {:>7} {:>7.4}  {}:{}-{}",
                s.kind,
                s.tokens,
                s.score,
                s.path,
                s.start_line + 1,
                s.end_line + 1
            );
        }
        println!("---");
    }
    println!("{completion}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_reject_nonsense() {
        assert_eq!(
            parse_location("a:b.py:3:4").unwrap(),
            (PathBuf::from("a:b.py"), 3, 4)
        );
        assert!(parse_location("a.py:3").is_err());
        assert!(parse_location("a.py:0:1").is_err());
        assert!(parse_location("a.py:x:1").is_err());
    }

    #[test]
    fn cursor_offsets_count_characters_and_check_range() {
        let text = "ab\nçd€f\r\nx";
        assert_eq!(cursor_offset(text, 1, 1).unwrap(), 0);
        assert_eq!(cursor_offset(text, 1, 3).unwrap(), 2);
        assert_eq!(&text[cursor_offset(text, 2, 3).unwrap()..], "€f\r\nx");
        assert_eq!(&text[cursor_offset(text, 2, 5).unwrap()..], "\r\nx");
        assert!(cursor_offset(text, 2, 6)
            .unwrap_err()
            .to_string()
            .contains("past the end of line 2"));
        assert!(cursor_offset(text, 4, 1)
            .unwrap_err()
            .to_string()
            .contains("past the end of the file"));
    }
}
