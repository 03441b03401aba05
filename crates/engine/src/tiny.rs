//! Tiny random-weight models written as real GGUF files, for tests here and in other crates.
//! They exercise every code path of loading, tokenizing and generation in milliseconds.

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
}

impl Default for TinySpec {
    fn default() -> Self {
        Self {
            architecture: "qwen2".into(),
            dtype: GgmlDType::Q8_0,
            seed: 42,
        }
    }
}

pub const N_EMBD: usize = 64;
const N_HEAD: usize = 4;
const N_KV_HEAD: usize = 2;
const N_FF: usize = 128;
const N_LAYER: usize = 2;

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

fn random(rng: &mut StdRng, shape: &[usize], scale: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.gen_range(-scale..scale)).collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// Writes a tiny model to `path`.
pub fn write_tiny_model(path: &Path, spec: &TinySpec) -> Result<()> {
    let (tokens, merges) = vocabulary();
    let vocab = tokens.len();
    let n_special = SPECIALS.len();
    let arch = spec.architecture.as_str();
    let head_dim = N_EMBD / N_HEAD;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, t: Tensor, dtype: GgmlDType| -> Result<()> {
        tensors.push((name, QTensor::quantize(&t, dtype)?));
        Ok(())
    };
    add(
        "token_embd.weight".into(),
        random(&mut rng, &[vocab, N_EMBD], 1.0)?,
        spec.dtype,
    )?;
    for i in 0..N_LAYER {
        let p = format!("blk.{i}");
        let ones = Tensor::ones(N_EMBD, candle_core::DType::F32, &Device::Cpu)?;
        add(
            format!("{p}.attn_norm.weight"),
            ones.clone(),
            GgmlDType::F32,
        )?;
        add(format!("{p}.ffn_norm.weight"), ones, GgmlDType::F32)?;
        let kv = N_KV_HEAD * head_dim;
        for (name, out, inp) in [
            ("attn_q", N_EMBD, N_EMBD),
            ("attn_k", kv, N_EMBD),
            ("attn_v", kv, N_EMBD),
            ("attn_output", N_EMBD, N_EMBD),
            ("ffn_gate", N_FF, N_EMBD),
            ("ffn_up", N_FF, N_EMBD),
            ("ffn_down", N_EMBD, N_FF),
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
    let ones = Tensor::ones(N_EMBD, candle_core::DType::F32, &Device::Cpu)?;
    add("output_norm.weight".into(), ones, GgmlDType::F32)?;
    if arch != "qwen2" {
        add(
            "output.weight".into(),
            random(&mut rng, &[vocab, N_EMBD], 1.0)?,
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
        (format!("{arch}.block_count"), u(N_LAYER as u32)),
        (format!("{arch}.context_length"), u(512)),
        (format!("{arch}.embedding_length"), u(N_EMBD as u32)),
        (format!("{arch}.feed_forward_length"), u(N_FF as u32)),
        (format!("{arch}.attention.head_count"), u(N_HEAD as u32)),
        (
            format!("{arch}.attention.head_count_kv"),
            u(N_KV_HEAD as u32),
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
