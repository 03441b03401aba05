//! `moat index`, `moat symbols`, `moat similar`: the repository index from the command line.

use anyhow::{bail, Context, Result};
use clap::Args;
use moat_index::{persist, Index, WalkOptions};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct IndexArgs {
    /// Repository (default: the git repository around the current directory, or it).
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SymbolsArgs {
    /// A name (`parse`) or a qualified name (`Config.parse`).
    name: String,
    #[arg(long)]
    repo: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SimilarArgs {
    /// FILE:LINE (1-based): the code before that line is the query.
    location: String,
    #[arg(long)]
    repo: Option<PathBuf>,
    /// How many windows to show.
    #[arg(long, default_value_t = 5)]
    top: usize,
    #[arg(long)]
    json: bool,
}

/// The repository root for `dir`: its git work tree if it is in one, else `dir` itself.
pub(crate) fn repo_root(dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir()?,
    };
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    Ok(moat_index::git::discover(&dir)
        .map(|g| g.root)
        .unwrap_or(dir))
}

fn cache_dir() -> PathBuf {
    moat_models::Store::from_env().root().join("index")
}

/// Loads the persisted index, refreshes it against the files, and saves it back.
pub(crate) fn open(root: &Path) -> Result<(Index, moat_index::Stats)> {
    let root = root
        .canonicalize()
        .with_context(|| format!("{}", root.display()))?;
    let file = persist::index_path(&cache_dir(), &root);
    let mut idx = persist::load(&root, WalkOptions::default(), &file)?;
    let stats = idx.refresh();
    if stats.parsed > 0 || stats.removed > 0 || !file.exists() {
        if let Err(e) = persist::save(&idx, &file) {
            // The index works without its cache file; say why it could not be written.
            tracing::warn!("could not save the index: {e}");
        }
    }
    Ok((idx, stats))
}

pub fn run_index(args: IndexArgs) -> Result<()> {
    let root = repo_root(args.dir.as_deref())?;
    let (_, stats) = open(&root)?;
    if args.json {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        println!("{}", root.canonicalize()?.display());
        println!(
            "{} files, {:.1} MB, {} definitions, {} chunks in {:.2} s ({} parsed, {} removed)",
            stats.files,
            stats.bytes as f64 / 1e6,
            stats.definitions,
            stats.chunks,
            stats.seconds,
            stats.parsed,
            stats.removed
        );
        for (why, n) in &stats.skipped {
            println!(
                "skipped {n} ({})",
                serde_json::to_string(why)?.trim_matches('"')
            );
        }
    }
    Ok(())
}

pub fn run_symbols(args: SymbolsArgs) -> Result<()> {
    let root = repo_root(args.repo.as_deref())?;
    let (idx, _) = open(&root)?;
    let hits = idx.definitions(&args.name);
    if args.json {
        println!("{}", serde_json::to_string(&hits)?);
        return Ok(());
    }
    if hits.is_empty() {
        bail!("no definition named {}", args.name);
    }
    for h in hits {
        let d = &h.def;
        println!(
            "{}:{}  {} {}\n    {}",
            h.path,
            d.start_line + 1,
            d.kind.as_str(),
            d.qualified_name(),
            d.signature.replace('\n', "\n    ")
        );
    }
    Ok(())
}

pub fn run_similar(args: SimilarArgs) -> Result<()> {
    let (file, line) = args
        .location
        .rsplit_once(':')
        .context("expected FILE:LINE")?;
    let line: u32 = line.parse().context("LINE must be a number")?;
    if line == 0 {
        bail!("LINE is 1-based");
    }
    let text = std::fs::read(file).with_context(|| file.to_string())?;
    let text = String::from_utf8(text).with_context(|| format!("{file} is not UTF-8"))?;
    let lines: Vec<&str> = text.lines().collect();
    if line as usize > lines.len() + 1 {
        bail!(
            "{file} has {} lines; line {line} is out of range",
            lines.len()
        );
    }
    let root = repo_root(args.repo.as_deref())?;
    let (idx, _) = open(&root)?;
    let first = (line as usize).saturating_sub(21);
    let query = lines[first..(line as usize - 1).min(lines.len())].join("\n");
    let abs = Path::new(file).canonicalize()?;
    let rel = moat_index::walk::relative(idx.root(), &abs);
    let exclude = rel
        .as_deref()
        .map(|r| (r, first as u32, line.saturating_sub(1)));
    let hits = idx.similar(&query, args.top, exclude);
    if args.json {
        println!("{}", serde_json::to_string(&hits)?);
        return Ok(());
    }
    for h in hits {
        println!(
            "{}:{}-{}  score {:.2}",
            h.path,
            h.start_line + 1,
            h.end_line + 1,
            h.score
        );
    }
    Ok(())
}
