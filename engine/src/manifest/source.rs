//! Opening a manifest: a file (or any reader), gzipped or not, YAML or JSON. Compression is
//! detected by the gzip magic bytes and the format by the extension (`.json`, `.yaml`, `.yml`,
//! before any `.gz`) or else by the first non-blank byte (`{`/`[` means JSON).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

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

/// Buffer for peeking at the first bytes and for reading through the decompressor.
const SOURCE_BUFFER_BYTES: usize = 256 << 10;

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
    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    open_reader(Box::new(file), format_from_name(path))
}

/// Wrap any reader: decompress if gzipped, sniff the format if not given.
pub fn open_reader(
    reader: Box<dyn Read>,
    format: Option<Format>,
) -> std::io::Result<(Box<dyn Read>, Format)> {
    let mut buffered = BufReader::with_capacity(SOURCE_BUFFER_BYTES, reader);
    let head = buffered.fill_buf()?;
    let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    let mut inner: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(SOURCE_BUFFER_BYTES, MultiGzDecoder::new(buffered)))
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
