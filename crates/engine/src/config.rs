//! Architecture hyper-parameters read from GGUF metadata.

use crate::error::{EngineError, Result};
use candle_core::quantized::gguf_file::{Content, Value};

/// How rotary embeddings pair up the dimensions of a head. llama.cpp's converter permutes llama's
/// q/k weights so that llama uses interleaved pairs, while qwen2 keeps the halves layout (NeoX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    Interleaved,
    Halves,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub architecture: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub rope_theta: f32,
    pub rope_style: RopeStyle,
    pub rms_eps: f64,
    pub context_length: usize,
}

fn get<'a>(ct: &'a Content, key: &str) -> Result<&'a Value> {
    ct.metadata
        .get(key)
        .ok_or_else(|| EngineError::MissingMetadata(key.to_string()))
}

fn get_usize(ct: &Content, key: &str) -> Result<usize> {
    let v = get(ct, key)?;
    let n = match v {
        Value::U8(x) => *x as u64,
        Value::U16(x) => *x as u64,
        Value::U32(x) => *x as u64,
        Value::U64(x) => *x,
        Value::I32(x) if *x >= 0 => *x as u64,
        Value::I64(x) if *x >= 0 => *x as u64,
        _ => {
            return Err(EngineError::MissingMetadata(format!(
                "{key} (as an integer)"
            )))
        }
    };
    Ok(n as usize)
}

fn get_f64(ct: &Content, key: &str) -> Option<f64> {
    match ct.metadata.get(key)? {
        Value::F32(x) => Some(*x as f64),
        Value::F64(x) => Some(*x),
        _ => None,
    }
}

impl ModelConfig {
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        let architecture = get(ct, "general.architecture")?
            .to_string()
            .map_err(|_| EngineError::MissingMetadata("general.architecture".into()))?
            .clone();
        let rope_style = match architecture.as_str() {
            "qwen2" => RopeStyle::Halves,
            "llama" => RopeStyle::Interleaved,
            other => return Err(EngineError::UnsupportedArchitecture(other.to_string())),
        };
        let a = architecture.as_str();
        let n_embd = get_usize(ct, &format!("{a}.embedding_length"))?;
        let n_head = get_usize(ct, &format!("{a}.attention.head_count"))?;
        let n_kv_head = get_usize(ct, &format!("{a}.attention.head_count_kv")).unwrap_or(n_head);
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 || n_embd % n_head != 0 {
            return Err(EngineError::MissingMetadata(format!(
                "consistent head counts (embedding {n_embd}, heads {n_head}, kv heads {n_kv_head})"
            )));
        }
        let head_dim =
            get_usize(ct, &format!("{a}.rope.dimension_count")).unwrap_or(n_embd / n_head);
        let default_theta = if a == "qwen2" { 1_000_000.0 } else { 10_000.0 };
        Ok(Self {
            n_layer: get_usize(ct, &format!("{a}.block_count"))?,
            n_ff: get_usize(ct, &format!("{a}.feed_forward_length"))?,
            context_length: get_usize(ct, &format!("{a}.context_length")).unwrap_or(4096),
            rope_theta: get_f64(ct, &format!("{a}.rope.freq_base")).unwrap_or(default_theta) as f32,
            rms_eps: get_f64(ct, &format!("{a}.attention.layer_norm_rms_epsilon")).unwrap_or(1e-6),
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            rope_style,
            architecture,
        })
    }
}
