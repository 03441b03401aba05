//! Engine behaviour on tiny random-weight models that the tests write themselves.

use candle_core::quantized::GgmlDType;
use moat_engine::tiny::{write_tiny_model, TinySpec};
use moat_engine::{
    CancelFlag, Engine, EngineError, EngineOptions, FimPrompt, Flow, GenerateParams, StopReason,
};
use std::path::PathBuf;

fn tiny(dir: &tempfile::TempDir, spec: TinySpec) -> PathBuf {
    let path = dir
        .path()
        .join(format!("{}-{:?}.gguf", spec.architecture, spec.dtype));
    write_tiny_model(&path, &spec).unwrap();
    path
}

fn load(path: &std::path::Path) -> Engine {
    Engine::load(path, &EngineOptions::default()).unwrap()
}

/// The largest elementwise difference of two logit vectors.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0f32, |m, x| m.max(x.abs()))
}

fn params(n: usize) -> GenerateParams {
    GenerateParams {
        max_tokens: n,
        ..Default::default()
    }
}

fn run(e: &mut Engine, prompt: &[u32], n: usize) -> Vec<u32> {
    e.generate(prompt, &params(n), &CancelFlag::new(), &mut |_| {
        Flow::Continue
    })
    .unwrap()
    .tokens
}

#[test]
fn loads_both_architectures() {
    let dir = tempfile::tempdir().unwrap();
    for arch in ["qwen2", "llama"] {
        let e = load(&tiny(
            &dir,
            TinySpec {
                architecture: arch.into(),
                ..Default::default()
            },
        ));
        assert_eq!(e.info().architecture, arch);
        assert_eq!(e.info().layers, 2);
        assert_eq!(e.fim_format(), moat_engine::FimFormat::Qwen);
    }
}

#[test]
fn fim_prompt_has_markup_in_order_and_escapes_user_text() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(&tiny(&dir, TinySpec::default()));
    let tok = e.tokenizer();
    let id = |s: &str| tok.token_id(s).unwrap();
    let p = FimPrompt {
        prefix: "def f():\n    x = '<|endoftext|>'".into(),
        suffix: "\n".into(),
        ..Default::default()
    };
    let ids = e.render_fim(&p).unwrap();
    assert_eq!(ids[0], id("<|fim_prefix|>"));
    assert_eq!(*ids.last().unwrap(), id("<|fim_middle|>"));
    let specials: Vec<u32> = ids.iter().copied().filter(|i| tok.is_special(*i)).collect();
    // The `<|endoftext|>` inside the code is text, not a control token.
    assert_eq!(
        specials,
        vec![
            id("<|fim_prefix|>"),
            id("<|fim_suffix|>"),
            id("<|fim_middle|>")
        ]
    );
    let text = tok.decode(&ids).unwrap();
    assert!(text.contains("'<|endoftext|>'"), "{text}");

    // The repository form puts context files first, then the current file's infilling.
    let p = FimPrompt {
        repo_name: Some("acme".into()),
        path: Some("src/a.py".into()),
        context: vec![moat_engine::ContextFile {
            path: "src/b.py".into(),
            content: "def fib(n): pass".into(),
        }],
        ..p
    };
    let ids = e.render_fim(&p).unwrap();
    assert_eq!(ids[0], id("<|repo_name|>"));
    assert_eq!(ids.iter().filter(|i| **i == id("<|file_sep|>")).count(), 2);
    let text = tok.decode(&ids).unwrap();
    assert!(
        text.starts_with("acme\nsrc/b.py\ndef fib(n): pass\nsrc/a.py\n"),
        "{text:?}"
    );
}

#[test]
fn kv_reuse_gives_exactly_the_tokens_of_a_cold_run() {
    let dir = tempfile::tempdir().unwrap();
    for arch in ["qwen2", "llama"] {
        let path = tiny(
            &dir,
            TinySpec {
                architecture: arch.into(),
                ..Default::default()
            },
        );
        let mut warm = load(&path);
        let tok_a: Vec<u32> = (0..300).map(|i| (i * 7 % 250) as u32).collect();
        let mut tok_b = tok_a[..280].to_vec();
        tok_b.extend((0..25).map(|i| (i * 11 % 250) as u32));
        // Warm the cache on A, then ask for B, which shares 280 tokens with it.
        run(&mut warm, &tok_a, 8);
        let g = warm
            .generate(&tok_b, &params(16), &CancelFlag::new(), &mut |_| {
                Flow::Continue
            })
            .unwrap();
        assert_eq!(g.timings.cached_tokens, 280);
        let mut cold = load(&path);
        assert_eq!(g.tokens, run(&mut cold, &tok_b, 16), "{arch}");
        // Logits, not just the argmax, agree.
        let lw = warm.logits(&tok_a).unwrap();
        let lc = load(&path).logits(&tok_a).unwrap();
        let max_diff = max_diff(&lw, &lc);
        assert!(max_diff < 1e-4, "{arch}: logits differ by {max_diff}");
    }
}

#[test]
fn snapshot_and_restore_return_to_the_saved_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny(&dir, TinySpec::default());
    let mut e = load(&path);
    let prompt: Vec<u32> = (10..60).collect();
    let first = run(&mut e, &prompt, 10);
    let snap = e.snapshot().unwrap();
    let cached = e.cached_tokens().to_vec();
    let other: Vec<u32> = (100..180).collect();
    run(&mut e, &other, 10);
    e.restore(&snap).unwrap();
    assert_eq!(e.cached_tokens(), &cached[..]);
    let again = e
        .generate(&prompt, &params(10), &CancelFlag::new(), &mut |_| {
            Flow::Continue
        })
        .unwrap();
    assert_eq!(again.timings.cached_tokens, prompt.len() - 1);
    assert_eq!(again.tokens, first);
}

#[test]
fn stops_at_stop_strings_and_max_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = load(&tiny(&dir, TinySpec::default()));
    let prompt: Vec<u32> = (20..40).collect();
    let g = e
        .generate(&prompt, &params(24), &CancelFlag::new(), &mut |_| {
            Flow::Continue
        })
        .unwrap();
    assert!(g.tokens.len() <= 24);
    if g.stop == StopReason::MaxTokens {
        assert_eq!(g.tokens.len(), 24);
    }
    let text = g.text.clone();
    assert!(
        text.chars().count() > 4,
        "tiny model produced too little text: {text:?}"
    );
    // Stop at a string that occurs in the middle of that output.
    let chars: Vec<char> = text.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let p = GenerateParams {
        stop_strings: vec![stop.clone()],
        ..params(24)
    };
    let g2 = e
        .generate(&prompt, &p, &CancelFlag::new(), &mut |_| Flow::Continue)
        .unwrap();
    assert_eq!(g2.stop, StopReason::StopString);
    assert_eq!(g2.text, text[..text.find(&stop).unwrap()]);
    // A callback can end generation too.
    let g3 = e
        .generate(&prompt, &params(24), &CancelFlag::new(), &mut |t| {
            if t.chars().count() >= 3 {
                Flow::StopAt(0)
            } else {
                Flow::Continue
            }
        })
        .unwrap();
    assert_eq!(g3.stop, StopReason::Complete);
    assert_eq!(g3.text, "");
}

#[test]
fn cancellation_is_honoured_within_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = load(&tiny(&dir, TinySpec::default()));
    let prompt: Vec<u32> = (20..40).collect();
    let cancel = CancelFlag::new();
    let mut at_cancel: Option<String> = None;
    let g = e
        .generate(&prompt, &params(200), &cancel, &mut |text| {
            if at_cancel.is_none() {
                at_cancel = Some(text.to_string());
                cancel.cancel();
            }
            Flow::Continue
        })
        .unwrap();
    assert_eq!(g.stop, StopReason::Cancelled);
    // Not one more token was decoded after the flag was raised.
    assert_eq!(Some(g.text.clone()), at_cancel);
    assert!(g.tokens.len() < 200);
    // A request cancelled before it starts does no work at all.
    let g = e
        .generate(
            &(50..90).collect::<Vec<u32>>(),
            &params(10),
            &cancel,
            &mut |_| Flow::Continue,
        )
        .unwrap();
    assert_eq!(g.stop, StopReason::Cancelled);
    assert!(g.tokens.is_empty());
    // And the cache is still usable afterwards.
    assert_eq!(
        run(&mut e, &prompt, 5),
        run(&mut load(&tiny(&dir, TinySpec::default())), &prompt, 5)
    );
}

#[test]
fn prompt_longer_than_the_context_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny(&dir, TinySpec::default());
    let mut e = Engine::load(
        &path,
        &EngineOptions {
            context_size: 64,
            ..Default::default()
        },
    )
    .unwrap();
    let err = e
        .generate(
            &(0..100).collect::<Vec<u32>>(),
            &params(4),
            &CancelFlag::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::ContextOverflow { .. }), "{err}");
    assert!(err.to_string().contains("context holds 64"), "{err}");
}

#[test]
fn bad_model_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = tiny(&dir, TinySpec::default());
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = Engine::load(&truncated, &EngineOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, EngineError::CorruptGguf { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");

    let header_only = dir.path().join("header.gguf");
    std::fs::write(&header_only, &bytes[..40]).unwrap();
    let err = Engine::load(&header_only, &EngineOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, EngineError::CorruptGguf { .. }), "{err}");

    let not_gguf = dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, b"def f(): pass\n").unwrap();
    let err = Engine::load(&not_gguf, &EngineOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, EngineError::NotGguf { .. }), "{err}");

    let missing = dir.path().join("missing.gguf");
    let err = Engine::load(&missing, &EngineOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, EngineError::Io { .. }), "{err}");

    let mamba = tiny(
        &dir,
        TinySpec {
            architecture: "mamba".into(),
            ..Default::default()
        },
    );
    let err = Engine::load(&mamba, &EngineOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, EngineError::UnsupportedArchitecture(ref a) if a == "mamba"),
        "{err}"
    );
}

#[test]
fn prepared_model_is_fast_and_predicts_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    // Q5_0 is kept where our kernels run it fast; Q4_0 never is.
    let q5 = tiny(
        &dir,
        TinySpec {
            dtype: GgmlDType::Q5_0,
            ..Default::default()
        },
    );
    let kept = moat_engine::prepare::prepare(&q5, &dir.path().join("q5.gguf")).unwrap();
    let want = if moat_engine::qmat::QMat::fast_q5_0() {
        0
    } else {
        2 * 7 + 1
    };
    assert_eq!(kept.requantized, want);
    let src = tiny(
        &dir,
        TinySpec {
            dtype: GgmlDType::Q4_0,
            ..Default::default()
        },
    );
    let dst = dir.path().join("prepared.gguf");
    let report = moat_engine::prepare::prepare(&src, &dst).unwrap();
    assert_eq!(report.requantized, 2 * 7 + 1);
    assert!(moat_engine::prepare::is_prepared(&dst).unwrap());
    assert!(!moat_engine::prepare::is_prepared(&src).unwrap());
    let prompt: Vec<u32> = (30..70).collect();
    let a = load(&src).logits(&prompt).unwrap();
    let b = load(&dst).logits(&prompt).unwrap();
    let scale = max_abs(&a);
    let diff = max_diff(&a, &b);
    assert!(
        diff < 0.05 * scale,
        "prepared logits drift {diff} (scale {scale})"
    );
}

#[test]
fn complete_trims_and_reports_timings() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = load(&tiny(&dir, TinySpec::default()));
    let p = FimPrompt {
        prefix: "x = fib(".into(),
        suffix: ")\n".into(),
        ..Default::default()
    };
    let g = e
        .complete(&p, &params(16), &CancelFlag::new(), &mut |_| {})
        .unwrap();
    // A mid-line hole never yields more than one line.
    assert!(!g.text.contains('\n'), "{:?}", g.text);
    assert_eq!(g.timings.prompt_tokens, e.render_fim(&p).unwrap().len());
    assert!(g.timings.generated_tokens >= 1);
}

#[test]
fn own_kernels_predict_like_candle_kernels() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in [GgmlDType::Q5_0, GgmlDType::Q8_0] {
        let path = tiny(
            &dir,
            TinySpec {
                dtype,
                ..Default::default()
            },
        );
        let candle = EngineOptions {
            own_kernels: false,
            ..Default::default()
        };
        let mut reference = Engine::load(&path, &candle).unwrap();
        let mut fast = load(&path);
        // Long enough for several prefill chunks and tiles of rows; then single steps.
        let prompt: Vec<u32> = (0..310).map(|i| (i * 13 % 260) as u32).collect();
        for len in [300, 301, 302, 7] {
            let a = reference.logits(&prompt[..len]).unwrap();
            let b = fast.logits(&prompt[..len]).unwrap();
            let scale = max_abs(&a);
            let diff = max_diff(&a, &b);
            // Random weights amplify rounding more than trained ones; the real model's test
            // checks 32 greedy steps for identical tokens.
            assert!(
                diff < 0.05 * scale,
                "{dtype:?} len {len}: logits differ by {diff} of {scale}"
            );
        }
    }
}

/// An adapter with random `A` and `B` on every projection of every block.
fn random_adapter(path: &std::path::Path, scale: f64) -> moat_engine::Adapter {
    use candle_core::{Device, Tensor};
    let mut f = moat_engine::gguf::GgufFile::open(path).unwrap();
    let mut adapter = moat_engine::Adapter::new("random");
    for layer in 0..2 {
        for name in moat_engine::adapter::PROJECTIONS {
            let w = f
                .tensor(&format!("blk.{layer}.{name}.weight"), &Device::Cpu)
                .unwrap();
            let (out, inp) = w.shape().dims2().unwrap();
            let a = Tensor::randn(0f32, 0.5, (4, inp), &Device::Cpu).unwrap();
            let b = Tensor::randn(0f32, 0.5, (out, 4), &Device::Cpu).unwrap();
            adapter
                .insert(
                    layer,
                    name,
                    moat_engine::LowRank::new(&a, &b, scale).unwrap(),
                )
                .unwrap();
        }
    }
    adapter
}

#[test]
fn unmerged_adapter_matches_merged_weights_and_switches_off_exactly() {
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};
    let dir = tempfile::tempdir().unwrap();
    let base = tiny(
        &dir,
        TinySpec {
            dtype: GgmlDType::F32,
            ..TinySpec::default()
        },
    );
    let mut e = load(&base);
    let prompt: Vec<u32> = (5..40).collect();
    let plain = e.logits(&prompt).unwrap();

    // All-zero updates change nothing at all.
    let mut zero = moat_engine::Adapter::new("zero");
    let z = |r, c| Tensor::zeros((r, c), candle_core::DType::F32, &Device::Cpu).unwrap();
    zero.insert(
        0,
        "attn_q",
        moat_engine::LowRank::new(&z(2, 64), &z(64, 2), 2.0).unwrap(),
    )
    .unwrap();
    e.set_adapter(Some(&zero)).unwrap();
    assert_eq!(e.adapter(), Some("zero"));
    assert_eq!(e.logits(&prompt).unwrap(), plain);

    // A real adapter equals the same update merged into the weights.
    let adapter = random_adapter(&base, 0.5);
    e.set_adapter(Some(&adapter)).unwrap();
    assert!(
        e.cached_tokens().is_empty(),
        "the old keys and values are dropped"
    );
    let unmerged = e.logits(&prompt).unwrap();
    let mut f = moat_engine::gguf::GgufFile::open(&base).unwrap();
    let names: Vec<String> = f.content.tensor_infos.keys().cloned().collect();
    let mut tensors = Vec::new();
    for name in names {
        let q = f.tensor(&name, &Device::Cpu).unwrap();
        let mut w = q.dequantize(&Device::Cpu).unwrap();
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() == 4 && parts[3] == "weight" {
            let layer: usize = parts[1].parse().unwrap();
            if let Some(d) = adapter.delta(layer, parts[2]).unwrap() {
                w = (w + d).unwrap();
            }
        }
        tensors.push((name, QTensor::quantize(&w, GgmlDType::F32).unwrap()));
    }
    let merged_path = dir.path().join("merged.gguf");
    moat_engine::gguf::write_derived(&f.content, &tensors, "test.merged", "yes", &merged_path)
        .unwrap();
    let merged = load(&merged_path).logits(&prompt).unwrap();
    let diff = max_diff(&unmerged, &merged);
    assert!(
        diff < 1e-3 * max_abs(&merged).max(1.0),
        "unmerged and merged differ by {diff}"
    );
    assert!(
        max_diff(&unmerged, &plain) > 1e-2,
        "the adapter changes the model"
    );

    // Off again: exactly the base model.
    e.set_adapter(None).unwrap();
    assert_eq!(e.adapter(), None);
    assert_eq!(e.logits(&prompt).unwrap(), plain);
}

#[test]
fn an_adapter_for_another_model_is_refused_and_changes_nothing() {
    use candle_core::{Device, Tensor};
    let dir = tempfile::tempdir().unwrap();
    let base = tiny(&dir, TinySpec::default());
    let mut e = load(&base);
    let prompt: Vec<u32> = (5..30).collect();
    let good = random_adapter(&base, 1.0);
    e.set_adapter(Some(&good)).unwrap();
    let with_good = e.logits(&prompt).unwrap();

    let m = |r, c| Tensor::ones((r, c), candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut wide = moat_engine::Adapter::new("wide");
    wide.insert(
        1,
        "ffn_down",
        moat_engine::LowRank::new(&m(2, 999), &m(64, 2), 1.0).unwrap(),
    )
    .unwrap();
    let err = e.set_adapter(Some(&wide)).unwrap_err().to_string();
    assert!(
        err.contains("blk.1.ffn_down") && err.contains("another model"),
        "{err}"
    );
    let mut deep = moat_engine::Adapter::new("deep");
    deep.insert(
        7,
        "attn_q",
        moat_engine::LowRank::new(&m(2, 64), &m(64, 2), 1.0).unwrap(),
    )
    .unwrap();
    let err = e.set_adapter(Some(&deep)).unwrap_err().to_string();
    assert!(err.contains("block 7") && err.contains("2 blocks"), "{err}");
    assert_eq!(e.adapter(), Some("random"));
    assert_eq!(
        e.logits(&prompt).unwrap(),
        with_good,
        "the good adapter stays"
    );

    // Shapes that cannot be an update, and names that are not projections.
    assert!(moat_engine::LowRank::new(&m(2, 64), &m(64, 3), 1.0).is_err());
    let err = moat_engine::Adapter::new("x")
        .insert(
            0,
            "token_embd",
            moat_engine::LowRank::new(&m(2, 64), &m(64, 2), 1.0).unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown projection"), "{err}");
}

#[test]
fn a_shaped_random_model_has_the_shape_it_was_given() {
    use moat_engine::tiny::Shape;
    let dir = tempfile::tempdir().unwrap();
    // Small enough for a test, but with fillers in the vocabulary, grouped heads and an
    // untied output matrix, as the 7B shape has.
    let shape = Shape {
        embd: 96,
        heads: 6,
        kv_heads: 2,
        ff: 160,
        layers: 3,
        vocab: 1000,
        tied: false,
    };
    let path = tiny(
        &dir,
        TinySpec {
            shape,
            ..Default::default()
        },
    );
    let mut e = load(&path);
    let c = e.config().clone();
    assert_eq!(
        (
            c.n_embd,
            c.n_head,
            c.n_kv_head,
            c.n_ff,
            c.n_layer,
            c.head_dim
        ),
        (96, 6, 2, 160, 3, 16)
    );
    assert_eq!(e.logits(&[1, 2, 3]).unwrap().len(), 1000);
    // The specials stay last, after the fillers: end-of-text is the first of them.
    let tok = e.tokenizer();
    assert_eq!(tok.vocab_size(), 1000);
    assert_eq!(tok.token_id("<|endoftext|>"), Some(991));
    assert_eq!(tok.eos(), Some(991));
    assert!(tok.is_special(991) && !tok.is_special(990));
    // The published shapes are consistent: heads divide the width, groups divide heads.
    for (name, s) in Shape::NAMED {
        assert!(s.embd % s.heads == 0 && s.heads % s.kv_heads == 0, "{name}");
        assert_eq!(Shape::named(name), Some(s));
    }
    assert_eq!(Shape::named("no-such-model"), None);
}

/// A prompt whose greedy generation writes a finished line, and that line.
fn a_written_line(e: &mut Engine) -> (Vec<u32>, String) {
    for i in 0..200 {
        let prompt = e.tokenizer().encode(&format!("x{i} = ")).unwrap();
        let text = e
            .generate(&prompt, &params(64), &CancelFlag::new(), &mut |_| {
                Flow::Continue
            })
            .unwrap()
            .text;
        let guard = |line: &str| moat_engine::AvoidLine::after("", line).unwrap();
        let Some(line) = text.split('\n').find(|l| !l.trim().is_empty()) else {
            continue;
        };
        if matches!(
            guard(line).verdict(&text, false),
            moat_engine::repeat::Verdict::Refused(_)
        ) {
            return (prompt, line.trim_end().to_string());
        }
    }
    panic!("no prompt made the tiny model write a line");
}

#[test]
fn a_first_line_that_repeats_the_avoided_one_is_written_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = load(&tiny(&dir, TinySpec::default()));
    let (prompt, line) = a_written_line(&mut e);
    let plain = e
        .generate(&prompt, &params(64), &CancelFlag::new(), &mut |_| {
            Flow::Continue
        })
        .unwrap();
    let avoid = moat_engine::AvoidLine::after("", &line).unwrap();
    let guarded = e
        .generate(
            &prompt,
            &GenerateParams {
                avoid: Some(avoid.clone()),
                ..params(64)
            },
            &CancelFlag::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap();
    assert_ne!(guarded.text, plain.text);
    assert!(
        !matches!(
            avoid.verdict(&guarded.text, guarded.stop == StopReason::EndOfText),
            moat_engine::repeat::Verdict::Refused(_)
        ),
        "{line:?} written again: {:?}",
        guarded.text
    );
    // The same tokens up to where the avoided line began: only that step chose otherwise.
    let start = plain.text.find(line.trim_start()).unwrap();
    assert!(guarded
        .text
        .starts_with(&plain.text[..start.min(plain.text.len())]));

    // A line the model does not write changes nothing.
    let other = GenerateParams {
        avoid: moat_engine::AvoidLine::after("", &format!("{line} and more")),
        ..params(64)
    };
    let same = e
        .generate(&prompt, &other, &CancelFlag::new(), &mut |_| Flow::Continue)
        .unwrap();
    assert_eq!(same.tokens, plain.tokens);
}
