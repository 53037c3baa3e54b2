//! Small pieces of system identity and policy: Ctrl-Alt-Del, the hostname, /etc/hosts, the
//! open-file limit keynode inherits.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};

use nix::sys::reboot::set_cad_enabled;
use nix::sys::resource::{Resource, setrlimit};

use crate::log::{io_error, log};

/// The guest's hostname.
pub const HOSTNAME: &str = "keynet";

/// Makes Ctrl-Alt-Del send SIGINT to PID 1 instead of rebooting at once, so it goes
/// through the orderly shutdown.
pub fn disable_ctrl_alt_del() {
    if let Err(error) = set_cad_enabled(false) {
        log!("disable Ctrl-Alt-Del: {error}");
    }
}

/// Open files keynode may hold (soft and hard limit): one per client or peer connection
/// (keynode's connection table fits itself under this, less a reserve), plus its own files.
/// The kernel's default of 1,024 let a stranger exhaust it with idle connections.
pub const OPEN_FILES: u64 = 65_536;

/// Raises init's open-file limit to [`OPEN_FILES`]; keynode, started later, inherits it.
pub fn raise_open_files() {
    if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, OPEN_FILES, OPEN_FILES) {
        log!("raise the open-file limit to {OPEN_FILES}: {error}");
    }
}

/// Sets the hostname through procfs (same effect as sethostname(2), without another nix
/// feature or unsafe code).
pub fn set_hostname() {
    if let Err(error) = fs::write("/proc/sys/kernel/hostname", HOSTNAME) {
        log!("set hostname: {}", io_error(&error));
    }
}

/// Writes /etc/hosts so the hostname and localhost resolve without DNS. Best effort; an
/// existing file (from the image) is left alone.
pub fn write_etc_hosts() {
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open("/etc/hosts")
        .and_then(|mut file| {
            file.write_all(format!("127.0.0.1 localhost {HOSTNAME}\n").as_bytes())
        });
    match result {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
        Err(error) => log!("write /etc/hosts: {}", io_error(&error)),
    }
}
