//! `moat bench engine`: the engine's speed on real code, as figures to compare with peers.

use anyhow::{bail, Result};
use clap::Subcommand;
use moat_engine::{CancelFlag, DeviceChoice, Engine, EngineOptions, Flow, GenerateParams};
use serde_json::json;
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Load time, prefill and decode speed, completion latency (cold and warm cache), peak RSS.
    Engine(EngineArgs),
    /// Index build, parse-only limit, reload and one-file update latency on a repository.
    Index {
        dir: std::path::PathBuf,
        #[arg(long)]
        json: bool,
        /// How many one-file updates to time.
        #[arg(long, default_value_t = 200)]
        updates: usize,
        /// Also time each stage of indexing alone over the same files (read, hash, parse +
        /// tree walk, parse + extraction, chunks): where the time above parsing goes.
        #[arg(long)]
        phases: bool,
        /// Full index and parsing alone, alternated this many times: on a noisy machine
        /// the medians (and the median of each pair's ratio) are the figures to read.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// Completion latency through the protocol on a real file: cold, and while typing
    /// lines back at a steady rate; model calls the typing-through cache saved.
    Lsp(crate::bench_lsp::Args),
    /// How long `moat report` takes on a synthetic telemetry database.
    Report {
        /// Events in the database (shown, accepted, partially accepted, dismissed).
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct EngineArgs {
    #[arg(long)]
    pub model: Option<String>,
    /// Instead of a model: random weights with a real model's shape (qwen2.5-coder-0.5b,
    /// -1.5b or -7b), to measure speed where the weights are not at hand.
    #[arg(long, conflicts_with_all = ["model", "adapter", "dump_prompts"])]
    pub shape: Option<String>,
    /// Storage type of the random weights: q8_0, q5_0, q4_0, q4_k, q6_k or f16.
    #[arg(long, default_value = "q8_0", requires = "shape")]
    pub dtype: String,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Repetitions; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long)]
    pub json: bool,
    /// `moat` (our CPU kernels) or `candle` (candle's), to compare the two.
    #[arg(long, default_value = "moat")]
    pub kernels: String,
    /// Serve this tuned adapter unmerged (name or directory; its verdict is not checked),
    /// to measure what the low-rank updates cost.
    #[arg(long)]
    pub adapter: Option<String>,
    /// Write the benchmark's prompts (token ids, sizes, decode steps) as JSON to this
    /// file and stop: peers run the same tokens (`benches/peer/run.sh`).
    #[arg(long)]
    pub dump_prompts: Option<std::path::PathBuf>,
}

/// Real code to build prompts from: moat's own sources (any real code would do).
const CORPUS: [&str; 4] = [
    include_str!("../../engine/src/engine.rs"),
    include_str!("../../engine/src/decoder.rs"),
    include_str!("../../engine/src/trim.rs"),
    include_str!("../../models/src/store.rs"),
];

const PREFILL_SIZES: [usize; 3] = [256, 1024, 2048];
const DECODE_STEPS: usize = 32;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds this process has used, all threads, user and system (`None` off Linux).
/// On a shared machine whose other tenants slow the clock, CPU time varies less than wall
/// time does.
pub(crate) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // The kernel's clock tick is 100 Hz on every configuration Linux ships to userspace.
    Some(ticks / 100.0)
}

/// A random-weight model of a named shape, written to `dir`.
fn synthetic(dir: &std::path::Path, shape: &str, dtype: &str) -> Result<std::path::PathBuf> {
    use moat_engine::tiny::{dtype_named, write_tiny_model, Shape, TinySpec};
    let Some(shape_sizes) = Shape::named(shape) else {
        let names: Vec<&str> = Shape::NAMED.iter().map(|(n, _)| *n).collect();
        bail!("unknown --shape {shape}; known: {}", names.join(", "));
    };
    let Some(dtype) = dtype_named(dtype) else {
        bail!("--dtype takes q8_0, q5_0, q4_0, q4_k, q6_k or f16, not {dtype}");
    };
    let path = dir.join(format!("random-{shape}-{dtype:?}.gguf"));
    eprintln!("moat: writing random weights of shape {shape} ({dtype:?})");
    write_tiny_model(
        &path,
        &TinySpec {
            dtype,
            shape: shape_sizes,
            ..Default::default()
        },
    )?;
    Ok(path)
}

pub fn run(cmd: BenchCommand, threads: usize) -> Result<()> {
    let EngineArgs {
        model,
        shape,
        dtype,
        device,
        runs,
        json,
        kernels,
        adapter,
        dump_prompts: dump,
    } = match cmd {
        BenchCommand::Engine(a) => a,
        BenchCommand::Index {
            dir,
            json,
            updates,
            phases,
            runs,
        } => return crate::bench_index::run(&dir, json, updates, phases, runs),
        BenchCommand::Report { events, json } => return crate::bench_report::run(events, json),
        BenchCommand::Lsp(args) => return crate::bench_lsp::run(args, threads),
    };
    let shape = shape.map(|s| (s, dtype));
    let own_kernels = match kernels.as_str() {
        "moat" => true,
        "candle" => false,
        other => bail!("--kernels takes moat or candle, not {other}"),
    };
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let device: DeviceChoice = device.parse()?;
    let scratch = tempfile::tempdir()?;
    let path = match &shape {
        Some((name, dtype)) => synthetic(scratch.path(), name, dtype)?,
        None => crate::model::resolve(model.as_deref(), device.is_gpu())?,
    };
    let t = Instant::now();
    let mut engine = Engine::load(
        &path,
        &EngineOptions {
            device,
            own_kernels,
            ..Default::default()
        },
    )?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    if let Some(a) = &adapter {
        let a = crate::tune::load_for_serving(a, &path, true).map_err(anyhow::Error::msg)?;
        engine.set_adapter(Some(&a))?;
    }
    let mut tokens = Vec::new();
    while tokens.len() < 2100 {
        for text in CORPUS {
            tokens.extend(engine.tokenizer().encode(text)?);
        }
    }
    if let Some(file) = dump {
        let prompts = json!({
            "model": path.display().to_string(),
            "sizes": PREFILL_SIZES,
            "decode_steps": DECODE_STEPS,
            "tokens": &tokens[..*PREFILL_SIZES.iter().max().unwrap_or(&0)],
        });
        std::fs::write(&file, prompts.to_string())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        return Ok(());
    }
    let decode = GenerateParams {
        max_tokens: DECODE_STEPS,
        ignore_eos: true,
        ..Default::default()
    };
    let go = |e: &mut Engine, prompt: &[u32], p: &GenerateParams| {
        e.generate(prompt, p, &CancelFlag::new(), &mut |_| Flow::Continue)
    };
    let mut prefill: Vec<Vec<f64>> = vec![Vec::new(); PREFILL_SIZES.len()];
    let mut decode_rate: Vec<Vec<f64>> = vec![Vec::new(); PREFILL_SIZES.len()];
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    // One untimed pass first: the first product of each shape sets up thread pools and
    // scratch memory, which no later request pays again (the peer script warms up likewise).
    engine.logits(&tokens[..32])?;
    for run in 0..runs {
        for (i, &n) in PREFILL_SIZES.iter().enumerate() {
            engine.clear_cache();
            let t = Instant::now();
            engine.logits(&tokens[..n])?;
            prefill[i].push(n as f64 / t.elapsed().as_secs_f64());
            // Same prompt again: the cache holds it, so this measures decoding alone.
            let g = go(&mut engine, &tokens[..n], &decode)?;
            decode_rate[i].push(g.timings.generated_tokens as f64 / (g.timings.decode_ms / 1e3));
        }
        // A 1,500-token prompt and 24 new tokens; then the same prompt with its last 20
        // tokens changed, as when typing at the end of the prompt.
        let p = GenerateParams {
            max_tokens: 24,
            ..decode.clone()
        };
        engine.clear_cache();
        let g = go(&mut engine, &tokens[..1500], &p)?;
        cold.push(g.timings.prefill_ms + g.timings.decode_ms);
        let mut edited = tokens[..1480].to_vec();
        edited.extend_from_slice(&tokens[1600 + run..1620 + run]);
        let g = go(&mut engine, &edited, &p)?;
        warm.push(g.timings.prefill_ms + g.timings.decode_ms);
    }
    let info = engine.info();
    let pf: Vec<f64> = prefill.into_iter().map(median).collect();
    let dc: Vec<f64> = decode_rate.into_iter().map(median).collect();
    let (cold, warm) = (median(cold), median(warm));
    let rss = peak_rss_mb();
    if json {
        let by_size = |v: &[f64]| {
            PREFILL_SIZES
                .iter()
                .zip(v)
                .map(|(n, x)| (n.to_string(), json!((x * 10.0).round() / 10.0)))
                .collect::<serde_json::Map<_, _>>()
        };
        println!(
            "{}",
            json!({
                "model": path.display().to_string(),
                "adapter": engine.adapter(),
                "device": info.device,
                "kernels": kernels,
                "threads": info.threads,
                "runs": runs,
                "load_ms": load_ms.round(),
                "prefill_tok_s": by_size(&pf),
                "decode_tok_s": by_size(&dc),
                "latency_1500_plus_24_cold_ms": cold.round(),
                "latency_1500_plus_24_warm_ms": warm.round(),
                "peak_rss_mb": rss.map(f64::round),
            })
        );
    } else {
        println!("model      {}", path.display());
        if let Some(a) = engine.adapter() {
            println!("adapter    {a} (unmerged)");
        }
        println!(
            "device     {} ({} threads), medians of {runs} runs",
            info.device, info.threads
        );
        println!("load       {load_ms:.0} ms");
        for (i, n) in PREFILL_SIZES.iter().enumerate() {
            println!(
                "context {n:>4}: prefill {:>7.1} tok/s   decode {:>5.1} tok/s",
                pf[i], dc[i]
            );
        }
        println!("1500 prompt + 24 new tokens: cold {cold:.0} ms, warm (last 20 tokens changed) {warm:.0} ms");
        if let Some(r) = rss {
            println!("peak RSS   {r:.0} MB");
        }
    }
    Ok(())
}
