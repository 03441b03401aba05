//! `moat report`: acceptance, retention and latency from the telemetry store(s).

use anyhow::{Context, Result};
use clap::Args;
use moat_telemetry::{committed, now_ms, parse_time, Dimension, Format, Loaded, Store};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ReportArgs {
    /// Start: a span back from now (30d, 12h, 45m) or a UTC date (YYYY-MM-DD).
    #[arg(long, default_value = "30d")]
    since: String,
    /// End (exclusive), in the same forms; default: now.
    #[arg(long)]
    until: Option<String>,
    /// One row per user, language, editor, model, repo or day.
    #[arg(long)]
    by: Option<String>,
    /// table, json, csv or html (one self-contained page with charts).
    #[arg(long, default_value = "table")]
    format: String,
    /// Write the report here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Telemetry databases to merge (one per developer makes a team report); default: this
    /// machine's.
    #[arg(long = "db")]
    dbs: Vec<PathBuf>,
    /// Git repositories whose commits give the share of committed lines written by moat
    /// (repeat for several); without it the share is not computed.
    #[arg(long = "git")]
    repos: Vec<PathBuf>,
    /// The salt the servers were given (`telemetrySalt`) when users are recorded as hashes:
    /// commit authors and lines are hashed the same way to be matched.
    #[arg(long)]
    salt: Option<String>,
}

/// Where the server records telemetry.
pub fn default_db() -> PathBuf {
    moat_models::Store::from_env().root().join("telemetry.db")
}

pub fn run(args: ReportArgs) -> Result<()> {
    let now = now_ms();
    let since = parse_time(&args.since, now)?;
    let until = match &args.until {
        Some(u) => parse_time(u, now)?,
        None => now + 1,
    };
    let by = args.by.as_deref().map(Dimension::from_name).transpose()?;
    let format = Format::from_name(&args.format)?;
    let dbs = if args.dbs.is_empty() {
        vec![default_db()]
    } else {
        args.dbs.clone()
    };
    let mut data = Loaded::default();
    for db in &dbs {
        let store = Store::open_read_only(db)?;
        data.extend(store.load(since, until)?);
    }
    let committed =
        if args.repos.is_empty() {
            None
        } else {
            let mut commits = Vec::new();
            for dir in &args.repos {
                let (_, found) = moat_telemetry::git::commits(
                    dir,
                    since,
                    until,
                    args.salt.as_deref(),
                    &|p: &str| {
                        moat_index::Lang::from_path(Path::new(p)).map(|l| l.name().to_string())
                    },
                )?;
                commits.extend(found);
            }
            let lines = committed::attribute(&commits, &data.completions, &data.inserted);
            if !commits.is_empty() && lines.is_empty() {
                eprintln!(
                "moat report: no commit author in the range is a moat user of these databases{}",
                if args.salt.is_none() { " (if users are hashed, pass --salt)" } else { "" }
            );
            }
            Some(lines)
        };
    let text = moat_telemetry::render(&data, since, until, by, committed.as_ref(), format);
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    // The process ends next: freeing a million records one by one would only delay it.
    std::mem::forget(data);
    Ok(())
}
