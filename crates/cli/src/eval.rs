//! `moat eval`: the evals every change is judged by, as tables or JSON.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use moat_context::{Budget, ContextMode, ContextStyle};
use moat_engine::{DeviceChoice, Engine, EngineOptions};
use moat_eval::holes::{self};
use moat_eval::{humaneval, repo, Completer};
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// HumanEval-FIM single-line exact match (first-line rule and our post-processing).
    HumanevalFim(HumanEvalArgs),
    /// Holes cut from a repository, completed in each context mode.
    Repo(RepoArgs),
}

#[derive(Args)]
pub struct HumanEvalArgs {
    /// The `.jsonl` or `.jsonl.gz` file of rows.
    #[arg(long)]
    data: PathBuf,
    /// Languages to run (py, java, js); repeat or comma-separate. Default: all.
    #[arg(long, value_delimiter = ',')]
    lang: Vec<String>,
    /// Rows per language, evenly spaced through the set.
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    common: Common,
}

/// What every eval takes.
#[derive(Args)]
pub struct Common {
    /// A built-in model name or a path to a GGUF file (default: the default model for the
    /// device).
    #[arg(long)]
    model: Option<String>,
    /// cpu, cuda[:N] or auto (a GPU when this build and the machine have one).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the scores as JSON.
    #[arg(long)]
    json: bool,
    /// Also print each case's outcome (JSON lines on stderr).
    #[arg(long)]
    verbose: bool,
    /// Decode without the first-line guard (a first line that repeats the one after the
    /// hole, or sits outside its block, is kept), to measure what the guard is worth.
    #[arg(long)]
    no_avoid: bool,
}

#[derive(Args)]
pub struct RepoArgs {
    /// The repository to cut holes from.
    dir: PathBuf,
    #[arg(long, default_value_t = 200)]
    holes: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// none, file, repo (comma-separated), or all.
    #[arg(long, default_value = "all")]
    context: String,
    /// Hole kinds, comma-separated, taken in turn: line, mid_line, block, cross_file (the
    /// rest of a line from the first use of a name another file defines, as CrossCodeEval
    /// selects holes). Default: 40% line, 30% mid-line, 30% block.
    #[arg(long)]
    kinds: Option<String>,
    /// Prompt budget in tokens.
    #[arg(long, default_value_t = Budget::default().total)]
    budget: usize,
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Most of the budget that repository context may take (0 to 1).
    #[arg(long, default_value_t = Budget::default().repo_share)]
    repo_share: f32,
    /// Most tokens the text after the cursor may take, as the server's `suffixTokens`.
    /// Default: what the server does on the chosen device (64 on a CPU; on a GPU the
    /// budget's usual share, which any larger number also gives).
    #[arg(long)]
    suffix_tokens: Option<usize>,
    /// How context is shown: comments (path comments in the prefix) or repo (the model's
    /// repository markup).
    #[arg(long, default_value = "repo")]
    style: String,
    /// Cut holes only from the files this adapter directory's tuning run held out.
    #[arg(long)]
    held_out: Option<PathBuf>,
    /// With --verbose, each outcome also carries its rendered prompt.
    #[arg(long)]
    prompts: bool,
    /// Assemble the prompts only and report retrieval (how often the repository context
    /// holds the name the answer starts with); the model writes nothing. Seconds, not an
    /// hour: for iterating on the context.
    #[arg(long)]
    retrieval_only: bool,
    /// Repo mode with the context chosen at the start of the line this many lines above
    /// each hole's line (0: its own line) and kept, as the language server on a CPU keeps
    /// it while a line is typed and new code written line after line (up to 7 lines
    /// there): what that costs. Without it, context is chosen at the cursor.
    #[arg(long)]
    stale_lines: Option<u32>,
    #[command(flatten)]
    common: Common,
}

fn load_engine(c: &Common) -> Result<Engine> {
    let device: DeviceChoice = c.device.parse()?;
    let path = crate::model::resolve(c.model.as_deref(), device.is_gpu())?;
    Engine::load(
        &path,
        &EngineOptions {
            device,
            ..Default::default()
        },
    )
    .with_context(|| format!("loading {}", path.display()))
}

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::HumanevalFim(a) => humaneval_fim(a),
        EvalCommand::Repo(a) => repo_eval(a),
    }
}

fn humaneval_fim(a: HumanEvalArgs) -> Result<()> {
    for l in &a.lang {
        if humaneval::lang(l).is_none() {
            bail!("unknown language `{l}` (py, java, js)");
        }
    }
    let set = humaneval::load(&a.data)?;
    let rows = humaneval::sample(&set, &a.lang, a.limit);
    let mut engine = load_engine(&a.common)?;
    let bar = crate::progress::bar(rows.len() as u64, "rows");
    let mut outcomes = Vec::new();
    let mut c = Completer {
        engine: &mut engine,
        max_tokens: 64,
        avoid_repeats: !a.common.no_avoid,
    };
    for row in &rows {
        let o = humaneval::run_row(&mut c, row)?;
        if a.common.verbose {
            eprintln!("{}", serde_json::to_string(&o)?);
        }
        outcomes.push(o);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let scores = humaneval::scores(&outcomes);
    let weighted = humaneval::weighted(&scores, &set);
    if a.common.json {
        let weighted = weighted.map(|(f, o)| json!({ "first_line_em": f, "post_em": o }));
        println!(
            "{}",
            json!({ "data": a.data.display().to_string(), "scores": scores, "weighted": weighted })
        );
    } else {
        println!(
            "{:<6} {:>5} {:>14} {:>10} {:>9} {:>9}",
            "lang", "rows", "first-line EM", "ours EM", "p50 ms", "p95 ms"
        );
        for (l, s) in &scores {
            println!(
                "{:<6} {:>5} {:>14.1} {:>10.1} {:>9.0} {:>9.0}",
                l, s.n, s.first_line_em, s.post_em, s.latency_p50_ms, s.latency_p95_ms
            );
        }
        if let Some((f, o)) = weighted {
            println!("{:<6} {:>5} {:>14.1} {:>10.1}", "wtd", "", f, o);
        }
    }
    Ok(())
}

fn repo_eval(a: RepoArgs) -> Result<()> {
    let modes: Vec<ContextMode> = match a.context.as_str() {
        "all" => ContextMode::ALL.to_vec(),
        list => list
            .split(',')
            .map(|m| {
                ContextMode::from_name(m.trim())
                    .with_context(|| format!("unknown context mode `{m}` (none, file, repo, all)"))
            })
            .collect::<Result<_>>()?,
    };
    let root = crate::index::repo_root(Some(&a.dir))?;
    let (mut index, stats) = crate::index::open(&root)?;
    if stats.files == 0 {
        bail!("{}: no source files to cut holes from", root.display());
    }
    let kinds = match &a.kinds {
        None => holes::MIX.to_vec(),
        Some(s) => s
            .split(',')
            .map(|k| {
                holes::HoleKind::from_name(k.trim()).with_context(|| {
                    format!("unknown hole kind {k:?} (line, mid_line, block, cross_file)")
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let paths: Vec<String> = match &a.held_out {
        Some(dir) => moat_tune::manifest::Manifest::read(dir)?.held_out_files,
        None => index.paths().map(String::from).collect(),
    };
    let holes = holes::sample_from(&index, &paths, a.holes, a.seed, &kinds);
    if holes.is_empty() {
        bail!("no place for a hole in the chosen files");
    }
    if a.stale_lines.is_some_and(|k| k > 1000) {
        bail!("--stale-lines must be at most 1000");
    }
    let mut engine = load_engine(&a.common)?;
    // As the server decides it: by where the model runs, not by the flag's spelling.
    let on_gpu = a.common.device.parse::<DeviceChoice>()?.is_gpu();
    let suffix_tokens = a
        .suffix_tokens
        .or((!on_gpu).then_some(moat_context::CPU_SUFFIX_TOKENS));
    let settings = repo::Settings {
        repo_name: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repo".into()),
        budget: {
            let b = Budget {
                total: a.budget,
                repo_share: a.repo_share.clamp(0.0, 1.0),
                ..Budget::default()
            };
            match suffix_tokens {
                Some(n) => b.suffix_capped(n),
                None => b,
            }
        },
        max_tokens: a.max_tokens,
        avoid_repeats: !a.common.no_avoid,
        style: ContextStyle::from_name(&a.style)
            .with_context(|| format!("unknown style `{}` (comments, repo)", a.style))?,
        keep_prompts: a.prompts,
        retrieval_only: a.retrieval_only,
        stale_lines: a.stale_lines,
    };
    let bar = crate::progress::bar((holes.len() * modes.len()) as u64, "completions");
    let verbose = a.common.verbose;
    let outcomes = repo::run(
        &mut engine,
        &mut index,
        &holes,
        &modes,
        &settings,
        &mut |o| {
            if verbose {
                if let Ok(s) = serde_json::to_string(o) {
                    eprintln!("{s}");
                }
            }
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    let scores = repo::scores(&outcomes);
    if a.common.json {
        println!(
            "{}",
            json!({
                "dir": root.display().to_string(),
                "holes": holes.len(),
                "seed": a.seed,
                "budget": a.budget,
                "suffix_tokens": suffix_tokens,
                "scores": scores,
            })
        );
    } else {
        println!(
            "{} ({} holes, seed {})",
            root.display(),
            holes.len(),
            a.seed
        );
        println!(
            "{:<6} {:<10} {:>5} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>7}",
            "mode", "holes", "n", "EM", "ES", "ID-EM", "tokens", "p50 ms", "p95 ms", "recall"
        );
        for (mode, by_kind) in &scores {
            for (kind, s) in by_kind {
                println!(
                    "{:<6} {:<10} {:>5} {:>7.1} {:>7.1} {:>7.1} {:>8.0} {:>8.0} {:>8.0} {:>7}",
                    mode,
                    kind,
                    s.n,
                    s.exact_match,
                    s.edit_similarity,
                    s.identifier_exact_match,
                    s.prompt_tokens_mean,
                    s.latency_p50_ms,
                    s.latency_p95_ms,
                    s.context_recall
                        .map_or_else(|| "-".to_string(), |r| format!("{r:.1}"))
                );
            }
        }
    }
    Ok(())
}
