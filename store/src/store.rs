//! A directory of sealed files, written atomically and durably.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::format::{SealError, SealingKey, seal, unseal};

/// Prefix of temporary files; never a valid name.
const TMP_PREFIX: &str = ".tmp-";

/// A store error, naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is refused.
    #[error("{path}: {source}")]
    Sealed {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: SealError,
    },
    /// Names are `[A-Za-z0-9_-]{1,64}` and not temporary names.
    #[error("'{0}' is not a valid state file name")]
    Name(String),
}

/// A directory of sealed files.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    key: SealingKey,
    counter: AtomicU64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(TMP_PREFIX)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Name(name.to_owned()))
    }
}

impl Store {
    /// Opens (creating, mode 0700) the directory; removes temporary files a crash left.
    pub fn open(dir: impl Into<PathBuf>, key: SealingKey) -> Result<Store, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        }
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let p = entry.path();
                fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        Ok(Store {
            dir,
            key,
            counter: AtomicU64::new(0),
        })
    }

    /// The names present, sorted (whether each unseals is not checked here).
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            if let Some(name) = entry.file_name().to_str()
                && check_name(name).is_ok()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Reads and unseals `name`; `None` if it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        check_name(name)?;
        let path = self.dir.join(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        unseal(&self.key, name, &bytes)
            .map(Some)
            .map_err(|source| StoreError::Sealed { path, source })
    }

    /// Seals and writes `name`: temporary file, fsync, rename over the old one, fsync of
    /// the directory. Readers (and a restart after a crash) see the old or the new value.
    pub fn write(&self, name: &str, plaintext: &[u8]) -> Result<(), StoreError> {
        check_name(name)?;
        let path = self.dir.join(name);
        let sealed = seal(&self.key, name, plaintext).map_err(|source| StoreError::Sealed {
            path: path.clone(),
            source,
        })?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{name}-{}-{n}", std::process::id()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(&sealed).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            fs::rename(&tmp, &path).map_err(io(&path))?;
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Removes `name` durably (fsync of the directory); absent is not an error.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path)(e)),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
