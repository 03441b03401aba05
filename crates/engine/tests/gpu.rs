//! The same model code on an NVIDIA GPU (candle's CUDA backend) as on the CPU. These tests
//! compile everywhere; without the `cuda` feature or without a CUDA device they say so and
//! pass, because there is nothing to compare. `benches/gpu/run.sh` runs them on a GPU
//! machine with the feature on, where a missing device is an error (`MOAT_REQUIRE_GPU=1`).

use candle_core::quantized::GgmlDType;
use moat_engine::tiny::{write_tiny_model, TinySpec};
use moat_engine::{CancelFlag, DeviceChoice, Engine, EngineOptions, Flow, GenerateParams};

/// The GPU engine options, or `None` (with the reason on stderr) where there is no GPU.
fn gpu() -> Option<EngineOptions> {
    match DeviceChoice::Cuda(0).open() {
        Ok(_) => Some(EngineOptions {
            device: DeviceChoice::Cuda(0),
            ..Default::default()
        }),
        Err(e) => {
            assert!(
                std::env::var_os("MOAT_REQUIRE_GPU").is_none(),
                "MOAT_REQUIRE_GPU is set but the GPU cannot be opened: {e}"
            );
            eprintln!("skipped: the GPU cannot be opened here: {e}");
            None
        }
    }
}

fn greedy(e: &mut Engine, prompt: &[u32], n: usize) -> Vec<u32> {
    let p = GenerateParams {
        max_tokens: n,
        ignore_eos: true,
        ..Default::default()
    };
    e.generate(prompt, &p, &CancelFlag::new(), &mut |_| Flow::Continue)
        .unwrap()
        .tokens
}

#[test]
fn gpu_logits_and_greedy_tokens_match_the_cpu() {
    let Some(opts) = gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (arch, dtype) in [
        ("qwen2", GgmlDType::Q8_0),
        ("qwen2", GgmlDType::Q5_0),
        ("llama", GgmlDType::Q8_0),
    ] {
        let path = dir.path().join(format!("{arch}-{dtype:?}.gguf"));
        let spec = TinySpec {
            architecture: arch.into(),
            dtype,
            ..Default::default()
        };
        write_tiny_model(&path, &spec).unwrap();
        let mut cpu = Engine::load(&path, &EngineOptions::default()).unwrap();
        let mut gpu = Engine::load(&path, &opts).unwrap();
        let prompt: Vec<u32> = (0..310).map(|i| (i * 13 % 260) as u32).collect();
        for len in [300, 301, 7] {
            let a = cpu.logits(&prompt[..len]).unwrap();
            let b = gpu.logits(&prompt[..len]).unwrap();
            let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
            let diff = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                diff < 0.05 * scale,
                "{arch} {dtype:?} len {len}: GPU logits differ by {diff} of {scale}"
            );
        }
        // Random weights amplify rounding, so greedy runs may part where two logits are
        // close: each token the GPU picks must be, on the CPU after the same tokens, within
        // the logits' tolerance of the best.
        gpu.clear_cache();
        let picked = greedy(&mut gpu, &prompt[..40], 8);
        for i in 0..picked.len() {
            let mut seq = prompt[..40].to_vec();
            seq.extend_from_slice(&picked[..i]);
            let a = cpu.logits(&seq).unwrap();
            let best = a.iter().fold(f32::MIN, |m, x| m.max(*x));
            let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
            let got = a[picked[i] as usize];
            assert!(
                best - got < 0.05 * scale,
                "{arch} {dtype:?} step {i}: the GPU picked a token {} below the CPU's best",
                best - got
            );
        }
    }
}

#[test]
fn gpu_engine_reuses_its_cache_like_the_cpu() {
    let Some(opts) = gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_model(&path, &TinySpec::default()).unwrap();
    let mut gpu = Engine::load(&path, &opts).unwrap();
    let prompt: Vec<u32> = (0..120).map(|i| (i * 7 % 200) as u32).collect();
    let cold = gpu.logits(&prompt).unwrap();
    let mut edited = prompt.clone();
    edited[110] = 3;
    gpu.logits(&edited).unwrap();
    // Back to the first prompt: only its tail is recomputed, and the result is the same.
    let warm = gpu.logits(&prompt).unwrap();
    let diff = cold
        .iter()
        .zip(&warm)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-3, "cache reuse changed the logits by {diff}");
}
