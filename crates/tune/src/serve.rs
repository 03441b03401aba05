//! An adapter as the engine serves it unmerged: read from its directory after checking that
//! it belongs to the base model and that it beat the base on its held-out files.

use crate::error::{Result, TuneError};
use crate::manifest::{Manifest, ADAPTER_FILE};
use candle_core::Device;
use moat_engine::{Adapter, LowRank};
use std::path::Path;

/// The adapter in `dir` for `base`. A flagged adapter (one that did not beat the base model,
/// or whose training never finished) is refused unless `force`.
pub fn serving_adapter(dir: &Path, base: &Path, force: bool) -> Result<(Adapter, Manifest)> {
    let manifest = Manifest::read(dir)?;
    if !force {
        check_verdict(&manifest)?;
    }
    manifest.check_base(base)?;
    let path = dir.join(ADAPTER_FILE);
    let bad = |detail: String| TuneError::BadAdapter {
        path: path.clone(),
        detail,
    };
    let tensors =
        candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| bad(e.to_string()))?;
    let mut adapter = Adapter::new(manifest.name.clone());
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let Some(stem) = name.strip_suffix(".lora_a") else {
            if !name.ends_with(".lora_b") {
                return Err(bad(format!("unexpected tensor {name}")));
            }
            continue;
        };
        let (layer, projection) =
            parse_stem(stem).ok_or_else(|| bad(format!("unexpected tensor {name}")))?;
        let b = tensors
            .get(&format!("{stem}.lora_b"))
            .ok_or_else(|| bad(format!("{name} has no {stem}.lora_b")))?;
        let delta = LowRank::new(&tensors[name], b, manifest.lora.scale())?;
        adapter.insert(layer, projection, delta)?;
    }
    if adapter.is_empty() {
        return Err(bad("it holds no adapter tensors".into()));
    }
    Ok((adapter, manifest))
}

/// Fails for an adapter that is not known to help.
pub fn check_verdict(manifest: &Manifest) -> Result<()> {
    let Some(r) = &manifest.results else {
        return Err(TuneError::NotBetter {
            name: manifest.name.clone(),
            detail: "its training did not finish".into(),
        });
    };
    if r.better {
        return Ok(());
    }
    let detail = match (r.quality_before, r.quality_after) {
        (Some(b), Some(a)) => format!(
            "held-out exact match {:.1} → {:.1}, loss {:.3} → {:.3}",
            b.exact_match, a.exact_match, r.held_out_loss_before, r.held_out_loss_after
        ),
        _ => format!(
            "held-out loss {:.3} → {:.3}",
            r.held_out_loss_before, r.held_out_loss_after
        ),
    };
    Err(TuneError::NotBetter {
        name: manifest.name.clone(),
        detail,
    })
}

/// `blk.{layer}.{projection}`.
fn parse_stem(stem: &str) -> Option<(usize, &str)> {
    let rest = stem.strip_prefix("blk.")?;
    let (layer, projection) = rest.split_once('.')?;
    Some((layer.parse().ok()?, projection))
}

#[cfg(test)]
mod tests {
    use super::parse_stem;
    use crate::{Lora, Target};

    #[test]
    fn stems() {
        // The names training writes are the names serving reads.
        for t in Target::ALL {
            let name = Lora::name(3, t, 'a');
            let stem = name.strip_suffix(".lora_a").unwrap();
            assert_eq!(parse_stem(stem), Some((3, t.gguf_name())));
        }
        assert_eq!(parse_stem("blk.12.ffn_down"), Some((12, "ffn_down")));
        assert_eq!(parse_stem("blk.x.ffn_down"), None);
        assert_eq!(parse_stem("output"), None);
    }
}
