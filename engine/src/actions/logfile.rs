//! The `log` notifier's files: one JSON line per alert appended to `file`, parent directories
//! created, mode 0600 (alerts name hosts and incidents: not for every local user), one handle
//! per path shared by the shard's monitors, a bounded number open.
//!
//! Writes are plain `std::fs` appends on the shard thread: one line of a few hundred bytes
//! into the page cache, once per alert (not per check), which costs microseconds; glommio's
//! DMA files would need aligned buffers for no gain here.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The open log files of one shard.
pub struct LogFiles {
    max_open: usize,
    /// Path to (file, last use tick).
    files: HashMap<PathBuf, (File, u64)>,
    tick: u64,
}

impl LogFiles {
    pub fn new(max_open: usize) -> LogFiles {
        assert!(max_open > 0);
        LogFiles { max_open, files: HashMap::new(), tick: 0 }
    }

    pub fn open(&self) -> usize {
        self.files.len()
    }

    /// Appends `line` and a newline to `path`, opening (and creating) it if needed.
    pub fn append(&mut self, path: &Path, line: &str) -> io::Result<()> {
        debug_assert!(!line.contains('\n'));
        self.tick += 1;
        let tick = self.tick;
        if !self.files.contains_key(path) {
            if self.files.len() >= self.max_open {
                let oldest = self.files.iter().min_by_key(|(_, (_, t))| *t).map(|(p, _)| p.clone());
                if let Some(p) = oldest {
                    self.files.remove(&p);
                }
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
            self.files.insert(path.to_owned(), (file, tick));
        }
        debug_assert!(self.files.len() <= self.max_open);
        let entry = self.files.get_mut(path).expect("inserted above");
        entry.1 = tick;
        // One write call per line, so lines from two shards appending to the same file (O_APPEND)
        // never interleave.
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let result = entry.0.write_all(&buf);
        if result.is_err() {
            // A broken handle (file system full, removed mount) is reopened next time.
            self.files.remove(path);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn creates_parents_with_mode_0600_and_appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/alerts.log");
        let mut files = LogFiles::new(2);
        files.append(&path, "{\"x\":1}").unwrap();
        files.append(&path, "{\"x\":2}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"x\":1}\n{\"x\":2}\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn open_files_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = LogFiles::new(2);
        for i in 0..5 {
            files.append(&dir.path().join(format!("{i}.log")), "l").unwrap();
            assert!(files.open() <= 2);
        }
        // A closed file is reopened and appended to, not truncated.
        files.append(&dir.path().join("0.log"), "m").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("0.log")).unwrap(), "l\nm\n");
    }
}
