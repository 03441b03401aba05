//! End to end on the tiny model: tuning on a repository teaches it the repository's own
//! identifier, the merged GGUF behaves like base + adapter in the engine, and the adapter
//! refuses a base model it was not trained on.

use candle_core::Device;
use moat_engine::tiny::{write_tiny_model, TinySpec};
use moat_engine::{CancelFlag, Engine, EngineOptions, FimPrompt, GenerateParams};
use moat_tune::data::DataOptions;
use moat_tune::lora::LoraConfig;
use moat_tune::merge::merge;
use moat_tune::pipeline::{load_adapter, prepare, train_and_save, TuneOptions};
use moat_tune::samples::SampleOptions;
use moat_tune::{serving_adapter, LoadOptions, Ops, TrainConfig, TrainModel};
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn repo(root: &Path) {
    for i in 0..24 {
        let text = format!(
            "def handler_{i}(event):\n    total = zorblax(event, {i})\n    return total\n\n\ndef check_{i}(event):\n    return zorblax(event, {})\n",
            i + 1
        );
        std::fs::write(root.join(format!("mod_{i:02}.py")), text).unwrap();
    }
}

fn complete(engine: &mut Engine, prefix: &str, suffix: &str) -> String {
    let p = FimPrompt {
        prefix: prefix.into(),
        suffix: suffix.into(),
        ..FimPrompt::default()
    };
    let params = GenerateParams {
        max_tokens: 16,
        ..GenerateParams::default()
    };
    engine
        .complete(&p, &params, &CancelFlag::new(), &mut |_| {})
        .unwrap()
        .text
}

#[test]
fn tuning_teaches_the_repository_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("tiny.gguf");
    write_tiny_model(&base, &TinySpec::default()).unwrap();
    let src = dir.path().join("repo");
    std::fs::create_dir(&src).unwrap();
    repo(&src);
    let out = dir.path().join("adapter");
    let opts = TuneOptions {
        repo: src.clone(),
        base: base.clone(),
        out: out.clone(),
        name: "repo".into(),
        data: DataOptions::default(),
        // Judged below with plain fill-in-the-middle prompts, so trained on them.
        samples: SampleOptions {
            context: moat_context::ContextMode::File,
            seq: 128,
            per_kb: 40.0,
            ..SampleOptions::default()
        },
        lora: LoraConfig {
            rank: 16,
            alpha: 32.0,
            dropout: 0.0,
            ..LoraConfig::default()
        },
        train: TrainConfig {
            // 600 steps learnt the identifier with one kernel's rounding and not with
            // another's (AMX: "zotalax("); 900 learn it with each (AMX, VNNI, AVX2).
            steps: 900,
            accumulate: 1,
            lr: 5e-3,
            warmup: 10,
            eval_every: 50,
            patience: 0,
            checkpoint_every: 100,
            ..TrainConfig::default()
        },
        max_held_out_samples: 16,
    };
    let model = TrainModel::load(&base, &Device::Cpu, &LoadOptions::default()).unwrap();
    let data = prepare(&model, &opts).unwrap();
    assert_eq!(data.corpus.held_out.len(), 3);
    let (lora, manifest) =
        train_and_save(&model, &data, &opts, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let r = manifest.results.as_ref().unwrap();
    assert!(
        r.better && r.held_out_loss_after < 0.5 * r.held_out_loss_before,
        "{} -> {}",
        r.held_out_loss_before,
        r.held_out_loss_after
    );

    // A cursor in a file that was held out of training.
    let held = &data.corpus.held_out[0].text;
    // At the start of the line that calls the repository's own function.
    let cut = held.find("total = zorblax").unwrap();
    let (prefix, suffix) = (&held[..cut], &held[held[cut..].find('\n').unwrap() + cut..]);
    let mut before = Engine::load(&base, &EngineOptions::default()).unwrap();
    let b = complete(&mut before, prefix, suffix);
    assert!(!b.contains("zorblax"), "the base model already knew: {b:?}");

    let merged = dir.path().join("merged.gguf");
    merge(&base, &lora, "repo", &merged).unwrap();
    let mut after = Engine::load(&merged, &EngineOptions::default()).unwrap();
    let a = complete(&mut after, prefix, suffix);
    assert!(a.contains("zorblax("), "after tuning: {a:?}");

    // The merged file computes what base + adapter compute, far closer than the base does.
    let tokens = after
        .render_fim(&FimPrompt {
            prefix: prefix.into(),
            suffix: suffix.into(),
            ..FimPrompt::default()
        })
        .unwrap();
    let merged_logits = after.logits(&tokens).unwrap();
    let base_logits = before.logits(&tokens).unwrap();
    let unmerged = model.last_logits(&tokens, Some(&lora), Ops::Fused).unwrap();
    let dist = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let (m, b) = (
        dist(&merged_logits, &unmerged),
        dist(&base_logits, &unmerged),
    );
    assert!(
        m < 0.25 * b,
        "merged is {m} from base + adapter, the base {b}"
    );

    // Served unmerged, on the base model already loaded: the same answer, and logits as
    // close to base + adapter as the merged file's; switched off, the base model again.
    let (served, _) = serving_adapter(&out, &base, false).unwrap();
    before.set_adapter(Some(&served)).unwrap();
    assert_eq!(complete(&mut before, prefix, suffix), a);
    let hot = before.logits(&tokens).unwrap();
    assert!(
        dist(&hot, &unmerged) < 0.25 * b,
        "unmerged is {} from base + adapter, the base {b}",
        dist(&hot, &unmerged)
    );
    before.set_adapter(None).unwrap();
    let off = dist(&before.logits(&tokens).unwrap(), &base_logits);
    assert!(off < 1e-3, "switched off, the base model differs by {off}");

    // The adapter loads back for its own base and refuses another.
    let (again, _) = load_adapter(&model, &base, &out).unwrap();
    assert_eq!(again.parameter_count(), lora.parameter_count());
    let other = dir.path().join("other.gguf");
    write_tiny_model(
        &other,
        &TinySpec {
            seed: 7,
            ..TinySpec::default()
        },
    )
    .unwrap();
    let err = load_adapter(&model, &other, &out).err().unwrap();
    assert!(err.to_string().contains("different base model"), "{err}");
    let err = serving_adapter(&out, &other, true).err().unwrap();
    assert!(err.to_string().contains("different base model"), "{err}");
}
