//! The data dir: where the shards' journals live (`shard-N/` each), held by one process at a
//! time.
//!
//! Why a lock: two processes appending to the same journals would interleave their records
//! and each recover the other's incidents. The lock is an `flock` on `DIR/lock`, which the
//! kernel releases when the holder dies however it dies (a `kill -9` leaves no stale lock to
//! clean up); the file holds the holder's pid so the refusal can name it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// `--data-dir` when none is given: relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "cpra-data";
/// `--data-dir` value that runs without persistence.
pub const NO_DATA_DIR: &str = "none";
/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "lock";

/// The name of shard `n`'s directory.
pub fn shard_dir_name(shard: usize) -> String {
    format!("shard-{shard}")
}

/// An open, locked data dir. The lock is held as long as this value lives.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates `path` if missing, takes its lock, and creates a directory for each of
    /// `shards` shards. The error is a sentence for the terminal.
    pub fn open(path: &Path, shards: usize) -> Result<DataDir, String> {
        let shown = path.display();
        fs::create_dir_all(path)
            .map_err(|e| format!("cannot create the data dir {shown}: {e} (or pass --data-dir)"))?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        // SAFETY: flock on a descriptor this function owns (`lock` outlives the call); it
        // reads no memory.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(format!("cannot lock {}: {err}", lock_path.display()));
            }
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            let holder = match holder.trim().parse::<u32>() {
                Ok(pid) => format!("process {pid}"),
                Err(_) => "another process".to_owned(),
            };
            return Err(format!(
                "the data dir {shown} is in use by {holder} (it holds {}): stop that process, \
                 or give this one another --data-dir",
                lock_path.display()
            ));
        }
        let write_pid = |lock: &mut File| -> io::Result<()> {
            lock.set_len(0)?;
            lock.rewind()?;
            writeln!(lock, "{}", std::process::id())?;
            lock.sync_data()
        };
        write_pid(&mut lock).map_err(|e| format!("cannot write {}: {e}", lock_path.display()))?;
        for shard in 0..shards {
            let dir = path.join(shard_dir_name(shard));
            fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        Ok(DataDir { path: path.to_owned(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shard `n`'s directory.
    pub fn shard_dir(&self, shard: usize) -> PathBuf {
        self.path.join(shard_dir_name(shard))
    }

    /// Every shard directory present, in shard order, including those of shards the process
    /// no longer runs (a smaller `--shards` than last time): recovery reads them all.
    pub fn existing_shard_dirs(&self) -> io::Result<Vec<(usize, PathBuf)>> {
        let mut dirs = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(n) = name.to_str().and_then(|n| n.strip_prefix("shard-")) else { continue };
            if let Ok(n) = n.parse::<usize>() {
                dirs.push((n, entry.path()));
            }
        }
        dirs.sort_unstable();
        Ok(dirs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_is_created_with_shard_dirs_and_locked_with_the_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nested/cpra-data");
        let dir = DataDir::open(&path, 3).unwrap();
        let shards: Vec<usize> = dir.existing_shard_dirs().unwrap().iter().map(|d| d.0).collect();
        assert_eq!(shards, [0, 1, 2]);
        let pid = fs::read_to_string(path.join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());

        // flock locks are per open file: a second open in this process is refused too.
        let refused = DataDir::open(&path, 1).unwrap_err();
        assert!(
            refused.contains(&format!("in use by process {}", std::process::id())),
            "{refused}"
        );
        assert!(refused.contains("--data-dir"), "{refused}");

        drop(dir);
        let again = DataDir::open(&path, 1).unwrap();
        assert_eq!(again.existing_shard_dirs().unwrap().len(), 3, "old shard dirs are kept");
    }
}
