//! The tokenizer, built from the GGUF metadata so that a model file is self-contained.

use crate::error::{EngineError, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use std::collections::HashSet;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Control and user-defined tokens: the model's own markup, never produced from user text.
    special_ids: HashSet<u32>,
    eos: Option<u32>,
}

impl Tokenizer {
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_gguf(ct)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        // User code that contains `<|endoftext|>` or `<|fim_middle|>` must reach the model as
        // plain text; markup is only ever inserted by id.
        inner.set_encode_special_tokens(true);
        let mut special_ids = HashSet::new();
        if let Some(Value::Array(types)) = ct.metadata.get("tokenizer.ggml.token_type") {
            for (id, ty) in types.iter().enumerate() {
                let ty = match ty {
                    Value::I32(t) => *t as i64,
                    Value::U32(t) => *t as i64,
                    _ => 1,
                };
                // llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined,
                // 5 unused, 6 byte.
                if (2..=5).contains(&ty) {
                    special_ids.insert(id as u32);
                }
            }
        }
        let eos = match ct.metadata.get("tokenizer.ggml.eos_token_id") {
            Some(Value::U32(id)) => Some(*id),
            Some(Value::I32(id)) => Some(*id as u32),
            _ => None,
        };
        if let Some(eos) = eos {
            special_ids.insert(eos);
        }
        Ok(Self {
            inner,
            special_ids,
            eos,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a vocabulary entry spelled exactly `token` (e.g. `<|fim_prefix|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    /// Encodes user text. Special-token spellings inside it are encoded as ordinary text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn count(&self, text: &str) -> Result<usize> {
        Ok(self.encode(text)?.len())
    }

    /// Decodes ids to text, leaving out the model's markup tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let ids: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|i| !self.is_special(*i))
            .collect();
        self.inner
            .decode(&ids, false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }
}
