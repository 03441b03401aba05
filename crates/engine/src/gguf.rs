//! Opening a GGUF file with every failure turned into a clear [`EngineError`].

use crate::error::{EngineError, Result};
use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::k_quants::GgmlType;
use candle_core::quantized::{QStorage, QTensor, QuantizedType};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub(crate) const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// An open GGUF file: parsed header plus a reader positioned anywhere.
pub struct GgufFile {
    pub path: PathBuf,
    pub content: Content,
    pub reader: BufReader<File>,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let file_size = file.metadata().map_err(io)?.len();
        let mut reader = BufReader::new(file);
        let mut magic = [0u8; 4];
        if reader.read_exact(&mut magic).is_err() || magic != GGUF_MAGIC {
            return Err(EngineError::NotGguf {
                path: path.to_path_buf(),
            });
        }
        reader.seek(SeekFrom::Start(0)).map_err(io)?;
        let corrupt = |detail: String| EngineError::CorruptGguf {
            path: path.to_path_buf(),
            detail,
        };
        let content = Content::read(&mut reader).map_err(|e| corrupt(e.to_string()))?;
        // A download cut short keeps a valid header; check every tensor lies inside the file
        // now, rather than failing halfway through loading.
        for (name, info) in &content.tensor_infos {
            let elems = info.shape.elem_count();
            let block = info.ggml_dtype.block_size();
            if elems % block != 0 {
                return Err(corrupt(format!(
                    "tensor {name} has {elems} elements, not a multiple of its block size {block}"
                )));
            }
            let bytes = (elems / block * info.ggml_dtype.type_size()) as u64;
            let end = content
                .tensor_data_offset
                .saturating_add(info.offset)
                .saturating_add(bytes);
            if end > file_size {
                return Err(corrupt(format!(
                    "tensor {name} ends at byte {end} but the file has {file_size} bytes (incomplete download?)"
                )));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            content,
            reader,
        })
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    pub fn tensor(
        &mut self,
        name: &str,
        device: &candle_core::Device,
    ) -> Result<candle_core::quantized::QTensor> {
        if !self.has_tensor(name) {
            return Err(EngineError::MissingTensor(name.to_string()));
        }
        if device.is_cpu() {
            if let Some(t) = self.read_in_place(name)? {
                return Ok(t);
            }
        }
        self.content
            .tensor(&mut self.reader, name, device)
            .map_err(|e| EngineError::CorruptGguf {
                path: self.path.clone(),
                detail: format!("tensor {name}: {e}"),
            })
    }

    /// Reads a tensor's bytes straight into its typed blocks. candle's reader reads them into a
    /// temporary buffer and copies that, which for a moment doubles the largest tensor: the
    /// default model's 136 MB output matrix made loading the process's peak of memory.
    /// `None` for a type handled by candle's reader alone.
    fn read_in_place(&mut self, name: &str) -> Result<Option<QTensor>> {
        use candle_core::quantized::{k_quants as kq, GgmlDType as D};
        let info = &self.content.tensor_infos[name];
        let (shape, dtype) = (info.shape.clone(), info.ggml_dtype);
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        // `open` checked that the tensor is whole blocks and inside the file.
        let blocks = shape.elem_count() / dtype.block_size();
        let r = &mut self.reader;
        let storage = match dtype {
            D::F32 => read_blocks::<f32>(r, start, blocks, dtype),
            D::F16 => read_blocks::<half::f16>(r, start, blocks, dtype),
            D::Q4_0 => read_blocks::<kq::BlockQ4_0>(r, start, blocks, dtype),
            D::Q4_1 => read_blocks::<kq::BlockQ4_1>(r, start, blocks, dtype),
            D::Q5_0 => read_blocks::<kq::BlockQ5_0>(r, start, blocks, dtype),
            D::Q5_1 => read_blocks::<kq::BlockQ5_1>(r, start, blocks, dtype),
            D::Q8_0 => read_blocks::<kq::BlockQ8_0>(r, start, blocks, dtype),
            D::Q4K => read_blocks::<kq::BlockQ4K>(r, start, blocks, dtype),
            D::Q5K => read_blocks::<kq::BlockQ5K>(r, start, blocks, dtype),
            D::Q6K => read_blocks::<kq::BlockQ6K>(r, start, blocks, dtype),
            _ => return Ok(None),
        };
        let corrupt = |detail: String| EngineError::CorruptGguf {
            path: self.path.clone(),
            detail: format!("tensor {name}: {detail}"),
        };
        let Some(storage) = storage.map_err(|e| corrupt(e.to_string()))? else {
            return Ok(None);
        };
        QTensor::new(QStorage::Cpu(storage), shape)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }
}

/// `n` blocks of `T` read from `start`; `None` if `T` is not exactly the type's block size.
fn read_blocks<T: GgmlType + Send + Sync + 'static>(
    reader: &mut BufReader<File>,
    start: u64,
    n: usize,
    dtype: candle_core::quantized::GgmlDType,
) -> std::io::Result<Option<Box<dyn QuantizedType>>> {
    if std::mem::size_of::<T>() != dtype.type_size() {
        return Ok(None);
    }
    let mut v: Vec<T> = vec![T::zeros(); n];
    // Safety: ggml's block types are plain bytes, integers and halves without padding (their
    // size is the type size, checked above), so every byte pattern is a valid value.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>())
    };
    reader.seek(SeekFrom::Start(start))?;
    reader.read_exact(bytes)?;
    Ok(Some(Box::new(v)))
}

/// Writes `tensors` with the metadata of `src`, `key` set to `value`, to `dst`, synced to
/// disk (for files derived from another: a prepared model, a merged adapter).
pub fn write_derived(
    src: &Content,
    tensors: &[(String, QTensor)],
    key: &str,
    value: &str,
    dst: &Path,
) -> Result<()> {
    let mut keys: Vec<&String> = src.metadata.keys().collect();
    keys.sort();
    let marker = Value::String(value.to_string());
    let mut metadata: Vec<(&str, &Value)> = keys
        .iter()
        .filter(|k| k.as_str() != key)
        .map(|k| (k.as_str(), &src.metadata[*k]))
        .collect();
    metadata.push((key, &marker));
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let io = |source| EngineError::Io {
        path: dst.to_path_buf(),
        source,
    };
    let mut w = std::io::BufWriter::new(File::create(dst).map_err(io)?);
    gguf_file::write(&mut w, &metadata, &refs)?;
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}
