//! The training forward pass on the tiny model: it matches the engine, its gradients match
//! finite differences, the gradient guard catches a cut graph, and resuming reproduces an
//! uninterrupted run.

use candle_core::{DType, Device, Tensor};
use moat_engine::tiny::{write_tiny_model, TinySpec};
use moat_engine::{Engine, EngineOptions};
use moat_tune::train::{check_gradients, train, Sample, Split, TrainConfig};
use moat_tune::{LoadOptions, Lora, LoraConfig, Ops, TrainModel};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

fn tiny() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_model(&path, &TinySpec::default()).unwrap();
    (dir, path)
}

fn lora_for(model: &TrainModel, config: LoraConfig, seed: u64) -> Lora {
    Lora::new(
        config,
        model.cfg.n_layer,
        &|l, t| model.dims(l, t),
        seed,
        &model.device,
        model.dtype,
    )
    .unwrap()
}

/// Gives every `B` random values, so that every gradient is non-trivial.
fn randomise_b(lora: &Lora) {
    let mut map = HashMap::new();
    for (name, v) in lora.vars() {
        let t = if name.ends_with("lora_b") {
            Tensor::randn(0f64, 0.2, v.dims(), &Device::Cpu).unwrap()
        } else {
            v.as_tensor().to_dtype(DType::F64).unwrap().copy().unwrap()
        };
        map.insert(name, t);
    }
    lora.assign(&map, std::path::Path::new("test")).unwrap();
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn forward_matches_the_engine() {
    let (_d, path) = tiny();
    let model = TrainModel::load(&path, &Device::Cpu, &LoadOptions::default()).unwrap();
    let tokens = model
        .tokenizer
        .encode("def fib(n):\n    return fib(n - 1) + fib(n - 2)\n")
        .unwrap();
    let engine_logits = |own_kernels| {
        let opts = EngineOptions {
            own_kernels,
            ..EngineOptions::default()
        };
        Engine::load(&path, &opts).unwrap().logits(&tokens).unwrap()
    };
    let (own, candle) = (engine_logits(true), engine_logits(false));
    let max_err = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    // The engine's two kernel sets round activations differently; the training forward may
    // differ from the engine by no more than they differ from each other.
    let tolerance = 2.0 * max_err(&own, &candle) + 1e-3;
    let mut ours = Vec::new();
    for ops in [Ops::Fused, Ops::Differentiable] {
        let lora = lora_for(&model, LoraConfig::default(), 1);
        let got = model.last_logits(&tokens, Some(&lora), ops).unwrap();
        let err = max_err(&own, &got);
        eprintln!("{ops:?}: max error {err}, tolerance {tolerance}");
        assert!(
            err <= tolerance,
            "{ops:?}: max error {err}, tolerance {tolerance}"
        );
        assert_eq!(argmax(&own), argmax(&got));
        ours.push(got);
    }
    // Fused and composed ops compute the same function.
    assert!(
        max_err(&ours[0], &ours[1]) < 1e-3,
        "{}",
        max_err(&ours[0], &ours[1])
    );
}

#[test]
fn gradients_match_finite_differences_in_f64() {
    let (_d, path) = tiny();
    let opts = LoadOptions {
        dense: Some(DType::F64),
        ..LoadOptions::default()
    };
    let model = TrainModel::load(&path, &Device::Cpu, &opts).unwrap();
    let config = LoraConfig {
        rank: 2,
        dropout: 0.0,
        ..LoraConfig::default()
    };
    let lora = lora_for(&model, config, 3);
    randomise_b(&lora);
    let tokens = model.tokenizer.encode("def fib(n): return n").unwrap();
    let from = tokens.len() / 2;
    let loss = model
        .loss(&tokens, from, Some(&lora), Ops::Differentiable, None)
        .unwrap();
    let grads = check_gradients(&lora, &loss.backward().unwrap()).unwrap();
    let vars = lora.vars();
    let mut worst = 0f64;
    let mut checked = 0;
    // A few entries of every tensor of layer 0 and of the last layer's down projection.
    for (i, (name, var)) in vars.iter().enumerate() {
        if !(name.starts_with("blk.0.") || name.contains("ffn_down")) {
            continue;
        }
        let flat = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let g = grads[i].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for &j in &[0, flat.len() / 3, flat.len() - 1] {
            let eps = 1e-6;
            let at = |delta: f64| {
                let mut v = flat.clone();
                v[j] += delta;
                var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                scalar(
                    &model
                        .loss(&tokens, from, Some(&lora), Ops::Differentiable, None)
                        .unwrap(),
                )
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            at(0.0);
            let rel = (numeric - g[j]).abs() / (numeric.abs() + g[j].abs()).max(1e-8);
            assert!(
                rel < 1e-5 || (numeric - g[j]).abs() < 1e-9,
                "{name}[{j}]: analytic {} numeric {numeric}",
                g[j]
            );
            worst = worst.max(rel);
            checked += 1;
        }
    }
    assert!(checked >= 30, "checked {checked} entries");
    eprintln!("worst relative error over {checked} entries: {worst:.2e}");
}

#[test]
fn gradient_guard_catches_fused_ops() {
    let (_d, path) = tiny();
    let model = TrainModel::load(&path, &Device::Cpu, &LoadOptions::default()).unwrap();
    let lora = lora_for(&model, LoraConfig::default(), 1);
    let tokens = model.tokenizer.encode("def fib(n): return n").unwrap();
    // The composed ops reach every adapter, with the quantized base as stored.
    let loss = model
        .loss(&tokens, 4, Some(&lora), Ops::Differentiable, Some(7))
        .unwrap();
    let grads = check_gradients(&lora, &loss.backward().unwrap()).unwrap();
    assert_eq!(grads.len(), lora.vars().len());
    // candle's fused kernels cut the graph without an error; the guard must say so.
    let loss = model
        .loss(&tokens, 4, Some(&lora), Ops::Fused, Some(7))
        .unwrap();
    let err = check_gradients(&lora, &loss.backward().unwrap()).unwrap_err();
    assert!(err.to_string().contains("received no gradient"), "{err}");
    // After one update B is no longer zero, and then A must get a gradient too.
    randomise_b(&lora);
    let loss = model
        .loss(&tokens, 4, Some(&lora), Ops::Differentiable, None)
        .unwrap();
    let grads = check_gradients(&lora, &loss.backward().unwrap()).unwrap();
    let a = grads[0].abs().unwrap().max_all().unwrap();
    assert!(scalar(&a) > 0.0);
}

fn samples(model: &TrainModel) -> Vec<Sample> {
    [
        "def fib(n):\n    return n",
        "print(self)\n",
        "if n else fib(n)",
    ]
    .iter()
    .map(|s| {
        let tokens = model.tokenizer.encode(s).unwrap();
        Sample {
            target_from: tokens.len() / 2,
            tokens,
        }
    })
    .collect()
}

#[test]
fn resuming_gives_the_same_adapter_as_an_uninterrupted_run() {
    let (_d, path) = tiny();
    let model = TrainModel::load(&path, &Device::Cpu, &LoadOptions::default()).unwrap();
    let data = samples(&model);
    let cfg = TrainConfig {
        steps: 6,
        accumulate: 2,
        lr: 1e-2,
        warmup: 2,
        eval_every: 2,
        patience: 0,
        checkpoint_every: 1,
        ..TrainConfig::default()
    };
    let run = |stop_at: Option<usize>, dir: &std::path::Path| {
        let lora = lora_for(&model, LoraConfig::default(), 5);
        let stop = AtomicBool::new(false);
        let out = train(
            &model,
            &lora,
            Split {
                train: &data,
                held_out: &data[..1],
            },
            &cfg,
            Some(dir),
            &stop,
            &mut |p| {
                if Some(p.step) == stop_at {
                    stop.store(true, Ordering::Relaxed);
                }
            },
        )
        .unwrap();
        (lora.tensors().unwrap(), out)
    };
    let whole = tempfile::tempdir().unwrap();
    let (want, out) = run(None, whole.path());
    assert_eq!(out.history.step, 6);
    assert!(out.resumed_from.is_none());
    let split = tempfile::tempdir().unwrap();
    let (_, first) = run(Some(3), split.path());
    assert_eq!(first.history.step, 3);
    let (got, second) = run(None, split.path());
    assert_eq!(second.resumed_from, Some(3));
    assert_eq!(second.history.losses, out.history.losses);
    for (name, t) in &want {
        let a = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = got[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b, "{name}");
    }
    // Training moved the adapter and lowered the loss on what it saw.
    let first_loss = out.history.losses[0].1;
    let last_loss = out.history.losses.last().unwrap().1;
    assert!(last_loss < first_loss, "{first_loss} -> {last_loss}");
}
