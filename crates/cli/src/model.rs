use crate::progress::Bars;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use moat_models::{Manifest, ModelState, Store};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Built-in models and whether they are in the cache.
    List,
    /// Download, verify and prepare a model (default: the default model on a CPU).
    Fetch { name: Option<String> },
    /// Re-check the checksums of a fetched model.
    Verify { name: Option<String> },
    /// Print the path of a fetched model's prepared file.
    Path { name: Option<String> },
}

/// A named built-in model, or the default for where it runs.
fn manifest(name: Option<&str>, gpu: bool) -> Result<Manifest> {
    Ok(match name {
        Some(n) => moat_models::find(n)?,
        None => moat_models::default_model_for(gpu),
    })
}

/// `adapter:NAME`: the merged model of a tuned adapter, only if it beat the base model on its
/// held-out files (its `merged.gguf` path can still be given directly to force it).
fn adapter_model(spec: &str) -> Option<std::result::Result<PathBuf, String>> {
    let name = spec.strip_prefix("adapter:")?;
    let dir = crate::tune::adapters_dir().join(name);
    let check = || {
        let m = moat_tune::manifest::Manifest::read(&dir)
            .map_err(|e| format!("adapter {name}: {e}"))?;
        if !m.results.as_ref().is_some_and(|r| r.better) {
            return Err(format!(
                "adapter {name} did not beat the base model on its held-out files; give the path {} to use it anyway",
                dir.join("merged.gguf").display()
            ));
        }
        let merged = dir.join("merged.gguf");
        if !merged.is_file() {
            return Err(format!(
                "adapter {name} is not merged yet: run `moat tune merge {name}`"
            ));
        }
        Ok(merged)
    };
    Some(check())
}

/// A model given as a name (fetched and prepared on first use), as a path to any GGUF, or
/// as `adapter:NAME`; none: the default model for a GPU (`gpu`) or a CPU.
pub fn resolve(model: Option<&str>, gpu: bool) -> Result<PathBuf> {
    if let Some(r) = model.and_then(adapter_model) {
        return r.map_err(anyhow::Error::msg);
    }
    if let Some(m) = model {
        let p = PathBuf::from(m);
        if p.is_file() {
            return Ok(p);
        }
        if m.ends_with(".gguf") || m.contains('/') {
            bail!("model file {m} does not exist");
        }
    }
    let m = manifest(model, gpu)?;
    let store = Store::from_env();
    if let ModelState::Ready(_) = store.state(&m) {
        return Ok(store.prepared_path(&m));
    }
    eprintln!(
        "moat: first use of {}: fetching it into {}",
        m.name,
        store.root().display()
    );
    store
        .fetch(&m, &Bars::new())
        .with_context(|| format!("fetching model {}", m.name))
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    let store = Store::from_env();
    match cmd {
        ModelCommand::List => {
            println!("{:<32} {:>9} {:<10} description", "name", "size", "state");
            for m in moat_models::builtin() {
                let state = match store.state(&m) {
                    ModelState::Missing => "-",
                    ModelState::Raw => "raw",
                    ModelState::Ready(_) => "ready",
                };
                let name = match (m.default, m.default_gpu) {
                    (true, _) => format!("{} *", m.name),
                    (_, true) => format!("{} +", m.name),
                    _ => m.name.clone(),
                };
                println!(
                    "{:<32} {:>7}MB {:<10} {}",
                    name,
                    m.file.size / 1_000_000,
                    state,
                    m.description
                );
            }
            println!(
                "(* default on a CPU, + default on a GPU; cache: {})",
                store.root().display()
            );
            let adapters = crate::tune::list_adapters();
            if !adapters.is_empty() {
                println!("\nadapters (`moat tune`; serve one merged with --model adapter:NAME, or unmerged with the `adapter` setting or --adapter NAME):");
                for a in adapters {
                    println!("{a}");
                }
            }
        }
        ModelCommand::Fetch { name } => {
            let m = manifest(name.as_deref(), false)?;
            let path = store.fetch(&m, &Bars::new())?;
            println!("{}", path.display());
        }
        ModelCommand::Verify { name } => {
            let m = manifest(name.as_deref(), false)?;
            let r = store.verify(&m, &Bars::new())?;
            let word = |x: Option<bool>| match x {
                Some(true) => "ok",
                Some(false) => "CORRUPT",
                None => "absent",
            };
            println!(
                "{}: source {} ({}), prepared {}",
                m.name,
                word(r.raw_ok),
                m.file.sha256,
                word(r.prepared_ok)
            );
            if r.raw_ok == Some(false) || r.prepared_ok == Some(false) {
                bail!(
                    "{} failed verification: delete it with `rm {}*` and fetch again",
                    m.name,
                    store.raw_path(&m).with_extension("").display()
                );
            }
            if r.raw_ok.is_none() && r.prepared_ok.is_none() {
                bail!("{} is not fetched", m.name);
            }
        }
        ModelCommand::Path { name } => {
            let m = manifest(name.as_deref(), false)?;
            println!("{}", store.ready_path(&m)?.display());
        }
    }
    Ok(())
}

/// The model file for the language server: a path, or a built-in model already fetched.
/// Never downloads (the server opens no connection); says how to fetch instead.
pub fn locate_offline(model: Option<&str>, gpu: bool) -> std::result::Result<PathBuf, String> {
    if let Some(r) = model.and_then(adapter_model) {
        return r;
    }
    if let Some(m) = model {
        let p = PathBuf::from(m);
        if p.is_file() {
            return Ok(p);
        }
        if m.ends_with(".gguf") || m.contains('/') {
            return Err(format!("model file {m} does not exist"));
        }
    }
    let m = manifest(model, gpu).map_err(|e| format!("{e:#}"))?;
    let store = Store::from_env();
    match store.state(&m) {
        ModelState::Ready(_) => Ok(store.prepared_path(&m)),
        _ => Err(format!(
            "model {} is not in {}; run `moat model fetch {}` first",
            m.name,
            store.root().display(),
            m.name
        )),
    }
}
