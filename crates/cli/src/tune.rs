//! `moat tune`: fine-tune the model on a repository (LoRA), judged on held-out files before
//! and after; `moat tune merge` writes base + adapter as one GGUF for the server.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use moat_context::{Budget, ContextMode, ContextStyle};
use moat_engine::{Engine, EngineOptions};
use moat_eval::{holes, repo};
use moat_tune::data::DataOptions;
use moat_tune::lora::{LoraConfig, Target};
use moat_tune::manifest::{Manifest, Quality};
use moat_tune::merge::merge;
use moat_tune::pipeline::{load_adapter, prepare, train_and_save, TuneOptions};
use moat_tune::samples::SampleOptions;
use moat_tune::{LoadOptions, TrainConfig, TrainModel};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TuneArgs {
    #[command(subcommand)]
    command: Option<TuneCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum TuneCommand {
    /// Write base model + adapter as one GGUF (refuses an adapter that did not beat the
    /// base model on its held-out files, unless --force).
    Merge(MergeArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The repository to learn from.
    #[arg(required = true)]
    repo: Option<PathBuf>,
    /// Base model: a built-in name or a GGUF path (default: the default model).
    #[arg(long)]
    model: Option<String>,
    /// Adapter name (default: the repository's directory name).
    #[arg(long)]
    name: Option<String>,
    /// Adapter directory (default: `<model cache>/adapters/<name>`). A checkpoint there is
    /// resumed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Optimizer updates.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Samples per update.
    #[arg(long, default_value_t = 4)]
    accumulate: usize,
    /// Tokens per sample.
    #[arg(long, default_value_t = 256)]
    seq: usize,
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    #[arg(long, default_value_t = 8)]
    rank: usize,
    #[arg(long, default_value_t = 16.0)]
    alpha: f64,
    #[arg(long, default_value_t = 0.05)]
    dropout: f32,
    /// Adapted projections (q,k,v,o,gate,up,down).
    #[arg(long, value_delimiter = ',', default_value = "q,k,v,o,gate,up,down")]
    targets: Vec<String>,
    /// Share of files held out for evaluation (at least 3 files).
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Weight up the N files git saw change most recently (uncommitted first).
    #[arg(long, default_value_t = 0)]
    recent: usize,
    /// How many times the samples a recent file gets.
    #[arg(long, default_value_t = 2.0)]
    recent_weight: f64,
    /// Training samples per 1,000 bytes of source.
    #[arg(long, default_value_t = 1.0)]
    per_kb: f64,
    /// Training samples at most (a large repository is thinned evenly).
    #[arg(long, default_value_t = 20_000)]
    max_samples: usize,
    /// What the prompts draw on, in training and in the held-out scores: `repo` (the
    /// server's default: repository context from the index, held-out files left out of it)
    /// or `file`. Match the server's `context` setting.
    #[arg(long, default_value = "repo")]
    context: String,
    /// Held-out samples for the held-out loss.
    #[arg(long, default_value_t = 32)]
    held_out_samples: usize,
    /// Held-out loss every this many updates.
    #[arg(long, default_value_t = 25)]
    eval_every: usize,
    /// Stop after this many evaluations without improvement (0: never).
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// Stop training (after a checkpoint) after this many minutes.
    #[arg(long)]
    time_limit: Option<f64>,
    /// Held-out completions scored before and after (exact match, edit similarity); 0 skips.
    #[arg(long, default_value_t = 40)]
    quality_holes: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// cpu, cuda[:N] or auto (a GPU when this build and the machine have one).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print the manifest as JSON at the end.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// Adapter directory or name (under `<model cache>/adapters`).
    adapter: String,
    /// The base model it was trained on (default: the file named in its manifest, else the
    /// default model on a CPU).
    #[arg(long)]
    model: Option<String>,
    /// Output GGUF (default: `merged.gguf` in the adapter directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Merge even an adapter flagged as not better than the base model.
    #[arg(long)]
    force: bool,
}

pub fn adapters_dir() -> PathBuf {
    moat_models::Store::from_env().root().join("adapters")
}

/// The server's adapter loader: an adapter by name (or directory), checked against `base`
/// and, unless forced, against its held-out verdict.
pub fn load_for_serving(
    name_or_dir: &str,
    base: &std::path::Path,
    force: bool,
) -> std::result::Result<moat_engine::Adapter, String> {
    let dir = adapter_dir(name_or_dir);
    if !dir.join(moat_tune::manifest::MANIFEST_FILE).exists() {
        return Err(format!(
            "no adapter `{name_or_dir}` (looked in {}; `moat model list` shows the adapters)",
            dir.display()
        ));
    }
    moat_tune::serving_adapter(&dir, base, force)
        .map(|(a, _)| a)
        .map_err(|e| e.to_string())
}

fn adapter_dir(name_or_dir: &str) -> PathBuf {
    let p = PathBuf::from(name_or_dir);
    if p.is_dir() {
        p
    } else {
        adapters_dir().join(name_or_dir)
    }
}

pub fn run(a: TuneArgs) -> Result<()> {
    match a.command {
        Some(TuneCommand::Merge(m)) => merge_cmd(m),
        None => tune(a.run),
    }
}

fn tune(a: RunArgs) -> Result<()> {
    let repo_dir = a
        .repo
        .clone()
        .context("which repository? `moat tune DIR`")?;
    let root = crate::index::repo_root(Some(&repo_dir))?;
    let name = a.name.clone().unwrap_or_else(|| {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repo".into())
    });
    let out = a.out.clone().unwrap_or_else(|| adapters_dir().join(&name));
    let context = match ContextMode::from_name(&a.context) {
        Some(m @ (ContextMode::File | ContextMode::Repo)) => m,
        _ => bail!("--context takes file or repo, not {}", a.context),
    };
    let choice: moat_engine::DeviceChoice = a.device.parse()?;
    let base = crate::model::resolve(a.model.as_deref(), choice.is_gpu())?;
    let targets = a
        .targets
        .iter()
        .map(|t| {
            Target::parse(t).with_context(|| format!("unknown target `{t}` (q,k,v,o,gate,up,down)"))
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = TuneOptions {
        repo: root.clone(),
        base: base.clone(),
        out: out.clone(),
        name: name.clone(),
        data: DataOptions {
            holdout: a.holdout,
            seed: a.seed,
            recent_files: a.recent,
            recent_weight: a.recent_weight,
            ..DataOptions::default()
        },
        samples: SampleOptions {
            context,
            seq: a.seq,
            per_kb: a.per_kb,
            max_samples: a.max_samples,
            seed: a.seed,
            ..SampleOptions::default()
        },
        lora: LoraConfig {
            rank: a.rank,
            alpha: a.alpha,
            dropout: a.dropout,
            targets,
        },
        train: TrainConfig {
            steps: a.steps,
            accumulate: a.accumulate,
            lr: a.lr,
            warmup: a.warmup,
            seed: a.seed,
            eval_every: a.eval_every,
            patience: a.patience,
            max_seconds: a.time_limit.map(|m| m * 60.0),
            ..TrainConfig::default()
        },
        max_held_out_samples: a.held_out_samples,
    };
    let device = choice.open()?;
    eprintln!("moat tune: base {} on {}", base.display(), choice.name());
    let model = TrainModel::load(&base, &device, &LoadOptions::default())
        .with_context(|| format!("loading {}", base.display()))?;
    let data = prepare(&model, &opts)?;
    let s = &data.corpus.summary;
    let skipped: Vec<String> = s.skipped.iter().map(|(r, n)| format!("{n} {r}")).collect();
    eprintln!(
        "data: {} training files ({} weighted as recent), {} held out ({} KB); skipped: {}",
        s.train_files,
        s.recent_weighted,
        s.held_out_files,
        s.bytes / 1000,
        if skipped.is_empty() {
            "none".into()
        } else {
            skipped.join(", ")
        }
    );
    eprintln!(
        "samples: {} training ({} tokens), {} held out, {} context; {} updates × {} samples of ≤ {} tokens",
        data.summary.train_samples,
        data.summary.train_sample_tokens,
        data.summary.held_out_samples,
        data.summary.context,
        a.steps,
        a.accumulate,
        a.seq
    );
    let bar = ProgressBar::new(a.steps as u64).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_prefix("training");
    if out.join("checkpoint.json").exists() {
        eprintln!("resuming from the checkpoint in {}", out.display());
    }
    let stop = AtomicBool::new(false);
    let mut last_eval = String::new();
    // Without a terminal the bar is hidden: a line per evaluation instead (logs, CI).
    let lines = !std::io::stderr().is_terminal();
    let (lora, mut manifest) = train_and_save(&model, &data, &opts, &stop, &mut |p| {
        if let Some(h) = p.held_out {
            last_eval = format!(" held-out {h:.3}");
            if lines {
                eprintln!(
                    "update {}/{}: loss {:.3}, held-out {h:.3}, {:.1} tokens/s",
                    p.step, p.steps, p.loss, p.tokens_per_s
                );
            }
        }
        bar.set_position(p.step as u64);
        bar.set_message(format!(
            "loss {:.3}{last_eval} lr {:.1e} {:.0} tok/s",
            p.loss, p.lr, p.tokens_per_s
        ));
    })?;
    bar.finish_and_clear();
    drop(model);
    if a.quality_holes > 0 {
        eprintln!(
            "scoring {} held-out completions with the base model, then with the adapter",
            a.quality_holes
        );
        let merged = out.join("merged.gguf");
        merge(&base, &lora, &name, &merged)?;
        let (mut index, _) = crate::index::open(&root)?;
        let holes = holes::sample_from(
            &index,
            &manifest.held_out_files,
            a.quality_holes,
            a.seed,
            &holes::MIX,
        );
        if holes.is_empty() {
            bail!("no place for a hole in the held-out files");
        }
        let before = quality(&base, &mut index, &holes, context, &root)?;
        let after = quality(&merged, &mut index, &holes, context, &root)?;
        if let Some(r) = manifest.results.as_mut() {
            r.quality_before = Some(before);
            r.quality_after = Some(after);
            r.better = r.better
                && after.exact_match >= before.exact_match
                && (after.exact_match > before.exact_match
                    || after.edit_similarity > before.edit_similarity);
        }
        manifest.write(&out)?;
    }
    print_summary(&manifest, &out);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    }
    Ok(())
}

/// Exact match and edit similarity of `model` on `holes`, prompted as the server prompts
/// (`mode`, the repository's name, the default budget).
fn quality(
    model: &Path,
    index: &mut moat_index::Index,
    holes: &[holes::Hole],
    mode: ContextMode,
    root: &Path,
) -> Result<Quality> {
    let mut engine = Engine::load(model, &EngineOptions::default())
        .with_context(|| format!("loading {}", model.display()))?;
    let max_tokens = 64;
    // The server's budget, or what the model's context holds (tiny test models hold less).
    let total = Budget::default()
        .total
        .min(engine.info().context_size.saturating_sub(max_tokens + 1));
    let settings = repo::Settings {
        repo_name: moat_tune::pipeline::repo_name(root),
        budget: Budget {
            total,
            ..Budget::default()
        },
        style: ContextStyle::default(),
        max_tokens,
        avoid_repeats: true,
        keep_prompts: false,
        retrieval_only: false,
        stale_lines: None,
    };
    let bar = crate::progress::bar(holes.len() as u64, "held-out completions");
    let outcomes = repo::run(&mut engine, index, holes, &[mode], &settings, &mut |_| {
        bar.inc(1)
    })?;
    bar.finish_and_clear();
    let n = outcomes.len().max(1) as f64;
    Ok(Quality {
        holes: outcomes.len(),
        exact_match: 100.0 * outcomes.iter().filter(|o| o.exact).count() as f64 / n,
        edit_similarity: 100.0 * outcomes.iter().map(|o| o.edit_similarity).sum::<f64>() / n,
    })
}

fn print_summary(m: &Manifest, out: &Path) {
    let Some(r) = &m.results else { return };
    println!("adapter {} in {}", m.name, out.display());
    println!(
        "trained {} updates, {} tokens in {:.0} s ({:.1} tokens/s), ended: {:?}",
        r.steps, r.tokens, r.seconds, r.tokens_per_s, r.ending
    );
    println!("{:<24} {:>10} {:>10}", "held-out", "before", "after");
    println!(
        "{:<24} {:>10.3} {:>10.3}",
        "loss", r.held_out_loss_before, r.held_out_loss_after
    );
    if let (Some(b), Some(a)) = (r.quality_before, r.quality_after) {
        println!(
            "{:<24} {:>10.1} {:>10.1}",
            format!("exact match ({} holes)", a.holes),
            b.exact_match,
            a.exact_match
        );
        println!(
            "{:<24} {:>10.1} {:>10.1}",
            "edit similarity", b.edit_similarity, a.edit_similarity
        );
    }
    if r.better {
        println!("verdict: better than the base model on held-out files");
    } else {
        println!(
            "verdict: NOT better than the base model; `moat tune merge` refuses it without --force"
        );
    }
}

fn merge_cmd(a: MergeArgs) -> Result<()> {
    let dir = adapter_dir(&a.adapter);
    let manifest = Manifest::read(&dir)?;
    // The file it was trained on, where it still is: the default model differs between a
    // GPU and a CPU, and a tuning run on a GPU trained the GPU's.
    let base = match a.model.as_deref() {
        None if Path::new(&manifest.base.file).is_file() => PathBuf::from(&manifest.base.file),
        model => crate::model::resolve(model, false)?,
    };
    if !manifest.results.as_ref().is_some_and(|r| r.better) && !a.force {
        bail!(
            "adapter {} did not beat the base model on its held-out files (see {}); use --force to merge it anyway",
            manifest.name,
            dir.join(moat_tune::manifest::MANIFEST_FILE).display()
        );
    }
    let model = TrainModel::load(
        &base,
        &moat_engine::DeviceChoice::Cpu.open()?,
        &LoadOptions::default(),
    )?;
    let (lora, manifest) = load_adapter(&model, &base, &dir)?;
    let out = a.out.unwrap_or_else(|| dir.join("merged.gguf"));
    merge(&base, &lora, &manifest.name, &out)?;
    println!("{}", out.display());
    Ok(())
}

/// Lines for `moat model list`: every adapter in the cache with its verdict.
pub fn list_adapters() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(adapters_dir()) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|d| match Manifest::read(d) {
            Ok(m) => {
                let r = m.results.as_ref();
                let loss = r.map_or("-".into(), |r| {
                    format!(
                        "{:.3} → {:.3}",
                        r.held_out_loss_before, r.held_out_loss_after
                    )
                });
                let em = r
                    .and_then(|r| Some((r.quality_before?, r.quality_after?)))
                    .map_or("-".into(), |(b, a)| {
                        format!("{:.1} → {:.1}", b.exact_match, a.exact_match)
                    });
                let verdict = if r.is_some_and(|r| r.better) {
                    "better"
                } else {
                    "FLAGGED"
                };
                let merged = if d.join("merged.gguf").exists() {
                    "merged"
                } else {
                    ""
                };
                format!(
                    "{:<24} base {:<28} loss {loss:<16} EM {em:<14} {verdict} {merged}",
                    m.name, m.base.file
                )
            }
            Err(e) => format!(
                "{:<24} unreadable: {e}",
                d.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        })
        .collect()
}
