//! Temp files for bodies that do not fit their memory buffers, as
//! nginx's `ngx_create_temp_file`: named by a counter the worker threads
//! share (`0000000001`, ...) under the configured directory and its
//! hashed levels, created with `O_EXCL`, and unlinked at once unless the
//! file must outlive its request (`client_body_in_file_only`).
//!
//! Writes and reads are plain blocking calls on the worker thread, as
//! nginx's are without `aio threads`: they go to the page cache, and a
//! body bigger than the memory buffer is the exception.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::sync::atomic::{AtomicU32, Ordering};

use rginx_core::model::TempPath;

/// The last temp file number used (nginx's `ngx_temp_number`, shared by
/// its workers; the first file is `0000000001`).
static LAST_NUMBER: AtomicU32 = AtomicU32::new(0);

/// What becomes of a temp file when its request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Unlinked as soon as it is open: nothing is left behind, even if
    /// the process dies.
    Anonymous,
    /// Kept under its name until the request ends, then removed.
    Clean,
    /// Kept.
    Persistent,
}

/// A temp file failure as nginx logs it (`open() "PATH" failed (13:
/// Permission denied)`).
#[derive(Debug)]
pub struct TempError {
    /// The call that failed, with its file.
    pub call: String,
    /// Why.
    pub error: io::Error,
}

impl std::fmt::Display for TempError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed ({})",
            self.call,
            crate::process::os_error(&self.error)
        )
    }
}

impl std::error::Error for TempError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// How much of a temp file one read takes (a write upstream, a frame to
/// the client).
pub const READ_PIECE: usize = 32 * 1024;

/// An open temp file and how much was written to it.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    /// Its name (also for an anonymous one: nginx's log line names it).
    pub path: String,
    lifetime: Lifetime,
    /// Bytes written.
    pub len: u64,
}

impl TempFile {
    /// A new file under `path` (its level directories are created as
    /// needed, as `ngx_create_full_path` does).
    pub fn create(path: &TempPath, lifetime: Lifetime) -> Result<TempFile, TempError> {
        let mut n = LAST_NUMBER.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let mut created_dirs = false;
        loop {
            let name = path.file_name(n);
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&name);
            match opened {
                Ok(file) => {
                    if lifetime == Lifetime::Anonymous {
                        // the open descriptor keeps the data
                        let _ = std::fs::remove_file(&name);
                    }
                    return Ok(TempFile {
                        file,
                        path: name,
                        lifetime,
                        len: 0,
                    });
                }
                // a name taken (a kept file of an earlier run): nginx
                // jumps by a random number and tries again
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    n = n.wrapping_add(collision_step());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && !created_dirs => {
                    created_dirs = true;
                    if let Some(parent) = std::path::Path::new(&name).parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                }
                Err(error) => {
                    return Err(TempError {
                        call: format!("open() \"{name}\""),
                        error,
                    })
                }
            }
        }
    }

    /// Appends `data`.
    pub fn append(&mut self, data: &[u8]) -> Result<(), TempError> {
        self.file.write_all(data).map_err(|error| TempError {
            call: format!("write() \"{}\"", self.path),
            error,
        })?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Reads into `buf` from `offset`: how many bytes came.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, TempError> {
        self.file.read_at(buf, offset).map_err(|error| TempError {
            call: format!("pread() \"{}\"", self.path),
            error,
        })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.lifetime == Lifetime::Clean {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// nginx's `ngx_random_number` step after a collision: different per
/// process and start.
fn collision_step() -> u32 {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    (millis << 16).wrapping_add(std::process::id()) | 1
}

/// Creates the temp directories at start, as nginx's `ngx_create_paths`
/// does (mode 0700), and gives them to the workers' user when running as
/// root: what failed, in nginx's words, for each that could not be made.
pub fn create_dirs(paths: &[&TempPath], owner: Option<(u32, u32)>) -> Vec<String> {
    use std::os::unix::fs::DirBuilderExt as _;
    let mut failures = Vec::new();
    for path in paths {
        let dir = std::path::Path::new(&path.dir);
        if !dir.is_dir() {
            if let Err(e) = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
            {
                failures.push(format!(
                    "mkdir() \"{}\" failed ({})",
                    path.dir,
                    crate::process::os_error(&e)
                ));
                continue;
            }
        }
        if let Some((uid, gid)) = owner {
            if let Err(e) = std::os::unix::fs::chown(dir, Some(uid), Some(gid)) {
                failures.push(format!(
                    "chown(\"{}\", {uid}) failed ({})",
                    path.dir,
                    crate::process::os_error(&e)
                ));
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_numbered_made_in_their_levels_and_cleaned() {
        let dir = std::env::temp_dir().join(format!("rginx-spool-{}", std::process::id()));
        let path = TempPath {
            dir: dir.display().to_string(),
            levels: vec![1],
        };
        let mut kept = TempFile::create(&path, Lifetime::Clean).expect("create");
        kept.append(b"hello").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(kept.read_at(&mut buf, 1).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        let name = kept.path.clone();
        assert!(std::path::Path::new(&name).exists());
        let digits = name.rsplit('/').next().unwrap();
        assert_eq!(digits.len(), 10);
        assert!(name.ends_with(&format!("/{}/{digits}", &digits[9..])));
        drop(kept);
        assert!(!std::path::Path::new(&name).exists());
        let anonymous = TempFile::create(&path, Lifetime::Anonymous).expect("create");
        assert!(!std::path::Path::new(&anonymous.path).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
