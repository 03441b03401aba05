//! The index on disk, so that a restart on an unchanged repository reads one file instead
//! of parsing every source file. The file is a cache: a missing, old-version or damaged one
//! is ignored (and rebuilt by the next refresh), never trusted.

use crate::error::{IndexError, Result};
use crate::index::{FileEntry, Index};
use crate::walk::WalkOptions;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MOATIDX\0";
/// Bump when `FileEntry` or the extraction queries change meaning (4: local kinds; 5: a
/// C++ `.h` is C++).
const VERSION: u32 = 5;

/// The body: the vocabulary and the files, each in separately encoded parts, so that a
/// restart decodes them on all cores.
#[derive(serde::Serialize, serde::Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    terms: &'a [u8],
    #[serde(borrow)]
    shards: Vec<&'a [u8]>,
}

/// Files per encoded part.
const SHARD: usize = 512;

struct Loaded {
    terms: Vec<String>,
    files: BTreeMap<String, FileEntry>,
}

/// Where the index of `root` is kept under `cache_dir` (one file per repository).
pub fn index_path(cache_dir: &Path, root: &Path) -> PathBuf {
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let base = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    cache_dir.join(format!("{base}-{name}.idx"))
}

/// Writes atomically (temporary file, then rename): a crash or a full disk leaves the
/// previous file intact.
pub fn save(index: &Index, path: &Path) -> Result<()> {
    let io = |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let encode_err = |e: postcard::Error| io(std::io::Error::other(e.to_string()));
    let terms = postcard::to_stdvec(index.vocabulary()).map_err(encode_err)?;
    let files: Vec<(&String, &FileEntry)> = index.entries().iter().collect();
    let shards = files
        .chunks(SHARD)
        .map(postcard::to_stdvec)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(encode_err)?;
    let body = postcard::to_stdvec(&Body {
        terms: &terms,
        shards: shards.iter().map(Vec::as_slice).collect(),
    })
    .map_err(encode_err)?;
    let checksum = Sha256::digest(&body);
    let tmp = path.with_extension("idx.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    let written = (|| {
        f.write_all(MAGIC)?;
        f.write_all(&VERSION.to_le_bytes())?;
        f.write_all(&checksum[..16])?;
        f.write_all(&body)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// The persisted index of `root`, or an empty one if there is none usable (the reason is
/// logged).
pub fn load(root: &Path, opts: WalkOptions, path: &Path) -> Result<Index> {
    let mut index = Index::new(root, opts)?;
    match read(path) {
        Ok(l) => index.restore(l.terms, l.files),
        Err(why) => tracing::info!("{}: not used ({why}); indexing afresh", path.display()),
    }
    Ok(index)
}

fn read(path: &Path) -> std::result::Result<Loaded, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() < 28 || &bytes[..8] != MAGIC {
        return Err("not an index file".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!("version {version}, this build reads {VERSION}"));
    }
    let body = &bytes[28..];
    // The checksum is computed beside the decoding; a mismatch discards what was decoded.
    let (sum, decoded) = rayon::join(|| Sha256::digest(body), || decode(body));
    if sum[..16] != bytes[12..28] {
        return Err("checksum mismatch".into());
    }
    decoded
}

fn decode(body: &[u8]) -> std::result::Result<Loaded, String> {
    let body: Body = postcard::from_bytes(body).map_err(|e| e.to_string())?;
    let (terms, shards) = rayon::join(
        || postcard::from_bytes::<Vec<String>>(body.terms),
        || {
            body.shards
                .par_iter()
                .map(|s| postcard::from_bytes::<Vec<(String, FileEntry)>>(s))
                .collect::<std::result::Result<Vec<_>, _>>()
        },
    );
    let terms = terms.map_err(|e| e.to_string())?;
    let files = shards
        .map_err(|e| e.to_string())?
        .into_iter()
        .flatten()
        .collect();
    Ok(Loaded { terms, files })
}
