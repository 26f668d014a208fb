//! Opening a manifest: a file (or any reader), gzipped or not, YAML or JSON. Compression is
//! detected by the gzip magic bytes and the format by the extension (`.json`, `.yaml`, `.yml`,
//! before any `.gz`) or else by the first non-blank byte (`{`/`[` means JSON).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use crate::limits::READ_BUFFER_BYTES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

pub fn format_from_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".json") {
        Some(Format::Json)
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        Some(Format::Yaml)
    } else {
        None
    }
}

/// Open a path: a reader of the decompressed bytes and the format.
pub fn open(path: &Path) -> std::io::Result<(Box<dyn Read>, Format)> {
    open_counting(path, None)
}

/// `open`, adding the file's bytes as they are read (compressed bytes, for a `.gz`) to
/// `counter`, so a caller can show how far through the file a load is.
pub fn open_counting(
    path: &Path,
    counter: Option<Arc<AtomicU64>>,
) -> std::io::Result<(Box<dyn Read>, Format)> {
    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    let reader: Box<dyn Read> = match counter {
        Some(count) => Box::new(Counting { inner: file, count }),
        None => Box::new(file),
    };
    open_reader(reader, format_from_name(path))
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Wrap any reader: decompress if gzipped, sniff the format if not given.
pub fn open_reader(
    reader: Box<dyn Read>,
    format: Option<Format>,
) -> std::io::Result<(Box<dyn Read>, Format)> {
    let mut buffered = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let head = buffered.fill_buf()?;
    let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    let mut inner: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    let format = match format {
        Some(f) => f,
        None => {
            let head = inner.fill_buf()?;
            match head.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') | Some(b'[') => Format::Json,
                _ => Format::Yaml,
            }
        }
    };
    Ok((Box::new(inner), format))
}
