//! Files the host passes in through QEMU fw_cfg (`opt/keynet/<name>`), copied to
//! /run/keynet/host. They are untrusted: only their names and sizes are checked here;
//! keynode validates their contents.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::log::{io_error, log};

/// Where the qemu_fw_cfg driver exposes `opt/keynet/*`.
const SOURCE_DIR: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/keynet";
/// keynode's HOME; only root may read the host input below it.
const RUN_DIR: &str = "/run/keynet";
/// Where the copies go (keynode's `--config` is `config` here).
pub const HOST_DIR: &str = "/run/keynet/host";
/// Largest file accepted, so the host cannot fill the guest's memory.
pub const MAX_SIZE: u64 = 4 * 1024 * 1024;
/// Longest name accepted.
const MAX_NAME: usize = 64;

/// Whether a host file name is `[A-Za-z0-9._-]{1,64}` and not `.` or `..`, so it cannot
/// leave /run/keynet/host.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Copies every `opt/keynet/<name>/raw` to /run/keynet/host/<name>.
pub fn copy_all() {
    let entries = match fs::read_dir(SOURCE_DIR) {
        Ok(entries) => entries,
        Err(error) => {
            if error.kind() != ErrorKind::NotFound {
                log!("host input: read {SOURCE_DIR}: {}", io_error(&error));
            }
            log!("host input: none (no fw_cfg opt/keynet/*)");
            return;
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => match entry.file_name().into_string() {
                Ok(name) if valid_name(&name) => names.push(name),
                Ok(name) => log!("host input: skipping invalid name {:?}", name),
                Err(name) => log!("host input: skipping invalid name {:?}", name),
            },
            Err(error) => log!("host input: read {SOURCE_DIR}: {}", io_error(&error)),
        }
    }
    names.sort();
    if names.is_empty() {
        log!("host input: none (no fw_cfg opt/keynet/*)");
        return;
    }
    if let Err(error) = make_private_dir(RUN_DIR).and_then(|()| make_private_dir(HOST_DIR)) {
        log!("host input: create {HOST_DIR}: {}", io_error(&error));
        return;
    }
    for name in &names {
        match copy_one(name) {
            Ok(Some(size)) => log!("host input: {name} ({size} bytes)"),
            Ok(None) => {}
            Err(reason) => log!("host input: {name}: {reason}"),
        }
    }
}

/// Creates a root-only directory (or tightens an existing one).
fn make_private_dir(path: &str) -> std::io::Result<()> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            fs::set_permissions(path, Permissions::from_mode(0o700))
        }
        Err(error) => Err(error),
    }
}

/// Copies one entry; `Ok(None)` when the entry is a directory without `raw` (a nested
/// fw_cfg path), which is skipped with a log line.
fn copy_one(name: &str) -> Result<Option<u64>, String> {
    let source = Path::new(SOURCE_DIR).join(name).join("raw");
    let file = match File::open(&source) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            log!("host input: skipping {name}: no raw file");
            return Ok(None);
        }
        Err(error) => return Err(format!("read: {}", io_error(&error))),
    };
    // sysfs may not report the size, so read one byte past the limit to detect an
    // oversized file without holding more than that in memory.
    let mut data = Vec::new();
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(|error| format!("read: {}", io_error(&error)))?;
    let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
    if size > MAX_SIZE {
        return Err(format!("larger than {MAX_SIZE} bytes; refused"));
    }
    let target = Path::new(HOST_DIR).join(name);
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&target)
        .map_err(|error| format!("write: {}", io_error(&error)))?;
    out.write_all(&data)
        .and_then(|()| out.set_permissions(Permissions::from_mode(0o600)))
        .map_err(|error| format!("write: {}", io_error(&error)))?;
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_names() {
        assert!(valid_name("config"));
        assert!(valid_name("registry.json"));
        assert!(valid_name("manifest-v2_final.JSON"));
        assert!(valid_name(".hidden"));
        assert!(valid_name(&"a".repeat(64)));
    }

    #[test]
    fn refused_names() {
        assert!(!valid_name(""));
        assert!(!valid_name("."));
        assert!(!valid_name(".."));
        assert!(!valid_name(&"a".repeat(65)));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("../config"));
        assert!(!valid_name("con fig"));
        assert!(!valid_name("config\n"));
        assert!(!valid_name("café"));
    }
}
