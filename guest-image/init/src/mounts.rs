//! The kernel filesystems PID 1 mounts before anything else, and configfs once its module
//! is loaded.

use std::fs::DirBuilder;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

use crate::log::{io_error, log};

/// One early mount: source, target, filesystem type, flags, options.
struct Early {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

/// Mounts /proc, /sys, /dev, /run and /tmp. Failures are logged; boot carries on.
pub fn mount_early() {
    let secure = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let table = [
        Early {
            source: "proc",
            target: "/proc",
            fstype: "proc",
            flags: secure,
            data: None,
        },
        Early {
            source: "sysfs",
            target: "/sys",
            fstype: "sysfs",
            flags: secure,
            data: None,
        },
        Early {
            source: "devtmpfs",
            target: "/dev",
            fstype: "devtmpfs",
            flags: MsFlags::MS_NOSUID,
            data: Some("mode=0755"),
        },
        Early {
            source: "tmpfs",
            target: "/run",
            fstype: "tmpfs",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some("mode=0755"),
        },
        Early {
            source: "tmpfs",
            target: "/tmp",
            fstype: "tmpfs",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some("mode=1777"),
        },
    ];
    let mut mounted = Vec::new();
    for entry in &table {
        // The initramfs is a writable rootfs, so a missing mount point can simply be made.
        if let Err(error) = DirBuilder::new().mode(0o755).create(entry.target)
            && error.kind() != ErrorKind::AlreadyExists
        {
            log!("mkdir {}: {}", entry.target, io_error(&error));
        }
        match mount(
            Some(entry.source),
            entry.target,
            Some(entry.fstype),
            entry.flags,
            entry.data,
        ) {
            // EBUSY: already mounted (e.g. by the kernel), which is what we wanted.
            Ok(()) | Err(Errno::EBUSY) => mounted.push(entry.target),
            Err(error) => log!("mount {}: {error}", entry.target),
        }
    }
    log!("mounted {}", mounted.join(" "));
}

/// Mounts configfs (configfs-tsm lives there). Its mount point appears when the configfs
/// module registers, so it is not created here.
pub fn mount_configfs() {
    match mount(
        Some("configfs"),
        "/sys/kernel/config",
        Some("configfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        Ok(()) | Err(Errno::EBUSY) => log!("mounted /sys/kernel/config"),
        Err(error) => log!("mount configfs: {error}"),
    }
}
