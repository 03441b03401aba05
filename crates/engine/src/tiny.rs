//! Tiny random-weight models written as real GGUF files, for tests here and in other crates.
//! They exercise every code path of loading, tokenizing and generation in milliseconds.
//! The same writer makes random-weight models with the shapes of real ones
//! ([`Shape::named`]), so that speed can be measured where the real weights are not
//! (a GPU machine that reaches no network, say): speed depends on the shapes, not the values.

use crate::error::{EngineError, Result};
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct TinySpec {
    /// "qwen2" (attention biases, tied output) or "llama" (no biases, own output matrix);
    /// anything else is written as given, to test rejection.
    pub architecture: String,
    /// Storage type of the weight matrices.
    pub dtype: GgmlDType,
    pub seed: u64,
    pub shape: Shape,
}

/// A model's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub embd: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ff: usize,
    pub layers: usize,
    /// Rows of the embedding table; the tokenizer's own tokens come first, then fillers.
    pub vocab: usize,
    /// The output projection is the embedding table (qwen2 architecture only).
    pub tied: bool,
}

impl Shape {
    /// The tests' model: every product takes microseconds.
    pub const TINY: Shape = Shape {
        embd: 64,
        heads: 4,
        kv_heads: 2,
        ff: 128,
        layers: 2,
        vocab: 0,
        tied: true,
    };

    /// The shapes of the Qwen2.5-Coder models (from their published configurations).
    pub const NAMED: [(&'static str, Shape); 3] = [
        (
            "qwen2.5-coder-0.5b",
            Shape {
                embd: 896,
                heads: 14,
                kv_heads: 2,
                ff: 4864,
                layers: 24,
                vocab: 151_936,
                tied: true,
            },
        ),
        (
            "qwen2.5-coder-1.5b",
            Shape {
                embd: 1536,
                heads: 12,
                kv_heads: 2,
                ff: 8960,
                layers: 28,
                vocab: 151_936,
                tied: true,
            },
        ),
        (
            "qwen2.5-coder-7b",
            Shape {
                embd: 3584,
                heads: 28,
                kv_heads: 4,
                ff: 18944,
                layers: 28,
                vocab: 152_064,
                tied: false,
            },
        ),
    ];

    pub fn named(name: &str) -> Option<Shape> {
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }
}

impl Default for TinySpec {
    fn default() -> Self {
        Self {
            architecture: "qwen2".into(),
            dtype: GgmlDType::Q8_0,
            seed: 42,
            shape: Shape::TINY,
        }
    }
}

/// The storage types a random model can be written in, by their llama.cpp names.
pub fn dtype_named(name: &str) -> Option<GgmlDType> {
    Some(match name {
        "q8_0" => GgmlDType::Q8_0,
        "q5_0" => GgmlDType::Q5_0,
        "q4_0" => GgmlDType::Q4_0,
        "q4_k" => GgmlDType::Q4K,
        "q6_k" => GgmlDType::Q6K,
        "f16" => GgmlDType::F16,
        _ => return None,
    })
}

pub const N_EMBD: usize = Shape::TINY.embd;

/// The markup tokens of the Qwen2.5-Coder vocabulary, appended after the ordinary tokens.
pub const SPECIALS: [&str; 9] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
];

/// GPT-2's byte-to-character table: every byte gets a printable character.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..=255u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut table = vec![' '; 256];
    for (b, c) in printable.iter().zip(chars) {
        table[*b as usize] = char::from_u32(c).expect("valid char");
    }
    table
}

/// Vocabulary: the 256 byte tokens, merges that build a few code words, then the specials.
fn vocabulary() -> (Vec<String>, Vec<String>) {
    let table = byte_chars();
    let mut tokens: Vec<String> = table.iter().map(|c| c.to_string()).collect();
    let mut merges = Vec::new();
    let enc =
        |s: &str| -> Vec<String> { s.bytes().map(|b| table[b as usize].to_string()).collect() };
    for word in [
        "def", "return", "fib", " n", "    ", "self", "print", " if", " else",
    ] {
        let parts = enc(word);
        let mut acc = parts[0].clone();
        for p in &parts[1..] {
            let merged = format!("{acc}{p}");
            if !tokens.contains(&merged) {
                merges.push(format!("{acc} {p}"));
                tokens.push(merged.clone());
            }
            acc = merged;
        }
    }
    tokens.extend(SPECIALS.iter().map(|s| s.to_string()));
    (tokens, merges)
}

/// Values drawn uniformly; a large tensor repeats a drawn block from a random start, because
/// drawing billions of values would take minutes and the values only need to look random
/// to the kernels.
fn random(rng: &mut StdRng, shape: &[usize], scale: f32) -> Result<Tensor> {
    const BLOCK: usize = 1 << 16;
    let n: usize = shape.iter().product();
    let data: Vec<f32> = if n <= BLOCK {
        (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
    } else {
        let block: Vec<f32> = (0..BLOCK + 1)
            .map(|_| rng.gen_range(-scale..scale))
            .collect();
        let start = rng.gen_range(0..BLOCK);
        (0..n).map(|i| block[(start + i * 7) % BLOCK]).collect()
    };
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// Writes a tiny model to `path`.
pub fn write_tiny_model(path: &Path, spec: &TinySpec) -> Result<()> {
    let (mut tokens, merges) = vocabulary();
    let n_special = SPECIALS.len();
    // Fillers before the specials, which stay last (the end-of-text id is the first of them).
    let fillers = spec.shape.vocab.saturating_sub(tokens.len());
    let at = tokens.len() - n_special;
    tokens.splice(at..at, (0..fillers).map(|i| format!("<moat_filler_{i}>")));
    let vocab = tokens.len();
    let arch = spec.architecture.as_str();
    let Shape {
        embd,
        heads,
        kv_heads,
        ff,
        layers,
        tied,
        ..
    } = spec.shape;
    let head_dim = embd / heads;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, t: Tensor, dtype: GgmlDType| -> Result<()> {
        tensors.push((name, QTensor::quantize(&t, dtype)?));
        Ok(())
    };
    add(
        "token_embd.weight".into(),
        random(&mut rng, &[vocab, embd], 1.0)?,
        spec.dtype,
    )?;
    for i in 0..layers {
        let p = format!("blk.{i}");
        let ones = Tensor::ones(embd, candle_core::DType::F32, &Device::Cpu)?;
        add(
            format!("{p}.attn_norm.weight"),
            ones.clone(),
            GgmlDType::F32,
        )?;
        add(format!("{p}.ffn_norm.weight"), ones, GgmlDType::F32)?;
        let kv = kv_heads * head_dim;
        for (name, out, inp) in [
            ("attn_q", embd, embd),
            ("attn_k", kv, embd),
            ("attn_v", kv, embd),
            ("attn_output", embd, embd),
            ("ffn_gate", ff, embd),
            ("ffn_up", ff, embd),
            ("ffn_down", embd, ff),
        ] {
            add(
                format!("{p}.{name}.weight"),
                random(&mut rng, &[out, inp], 0.3)?,
                spec.dtype,
            )?;
            if arch == "qwen2" && matches!(name, "attn_q" | "attn_k" | "attn_v") {
                add(
                    format!("{p}.{name}.bias"),
                    random(&mut rng, &[out], 0.1)?,
                    GgmlDType::F32,
                )?;
            }
        }
    }
    let ones = Tensor::ones(embd, candle_core::DType::F32, &Device::Cpu)?;
    add("output_norm.weight".into(), ones, GgmlDType::F32)?;
    if arch != "qwen2" || !tied {
        add(
            "output.weight".into(),
            random(&mut rng, &[vocab, embd], 1.0)?,
            spec.dtype,
        )?;
    }

    let s = |v: &str| Value::String(v.to_string());
    let u = Value::U32;
    let types: Vec<Value> = (0..vocab)
        .map(|i| Value::I32(if i >= vocab - n_special { 3 } else { 1 }))
        .collect();
    let eos = (vocab - n_special) as u32;
    let metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), s(arch)),
        ("general.name".into(), s("moat-tiny")),
        (format!("{arch}.block_count"), u(layers as u32)),
        (
            format!("{arch}.context_length"),
            u(if spec.shape == Shape::TINY {
                512
            } else {
                32768
            }),
        ),
        (format!("{arch}.embedding_length"), u(embd as u32)),
        (format!("{arch}.feed_forward_length"), u(ff as u32)),
        (format!("{arch}.attention.head_count"), u(heads as u32)),
        (
            format!("{arch}.attention.head_count_kv"),
            u(kv_heads as u32),
        ),
        (format!("{arch}.rope.freq_base"), Value::F32(10000.0)),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(1e-6),
        ),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("qwen2")),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.iter().map(|m| s(m)).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.eos_token_id".into(), u(eos)),
        ("tokenizer.ggml.bos_token_id".into(), u(eos)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
    ];
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    gguf_file::write(&mut f, &md, &ts)?;
    std::io::Write::flush(&mut f).map_err(io)?;
    Ok(())
}
