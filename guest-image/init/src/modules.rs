//! Kernel modules from the image's list, in the order given (already dependency-sorted).

use std::fs::{self, File};
use std::path::Path;

use nix::errno::Errno;
use nix::kmod::{ModuleInitFlags, finit_module};

use crate::log::{io_error, log};

/// The list the image builder writes: one absolute module path per line.
pub const ORDER_FILE: &str = "/etc/keynet/modules.order";

/// MODULE_INIT_COMPRESSED_FILE (Linux 5.17+): the kernel decompresses the .ko.xz itself.
/// nix 0.29 does not name this flag.
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

/// The module paths in a modules.order text: trimmed lines, without blanks and `#` comments.
pub fn parse_order(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// The module's name for logs: the file name without `.ko` and a compression suffix.
pub fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))
        .unwrap_or(file)
}

/// Loads every module in the list. Failures are logged and never fatal: a missing driver
/// shows up later as the thing it drives being absent.
pub fn load_all() {
    let text = match fs::read_to_string(ORDER_FILE) {
        Ok(text) => text,
        Err(error) => {
            log!("modules: read {ORDER_FILE}: {}", io_error(&error));
            return;
        }
    };
    let (mut loaded, mut failed) = (0usize, 0usize);
    for path in parse_order(&text) {
        let name = module_name(path);
        match load(path) {
            Ok(()) => {
                loaded += 1;
                log!("module {name}: loaded");
            }
            Err(reason) => {
                failed += 1;
                log!("module {name}: {reason}");
            }
        }
    }
    log!("modules: {loaded} loaded, {failed} failed");
}

/// Loads one module file; an already-loaded (or built-in) module counts as loaded.
fn load(path: &str) -> Result<(), String> {
    if !Path::new(path).is_absolute() {
        return Err("not an absolute path".to_owned());
    }
    let file = File::open(path).map_err(|error| io_error(&error))?;
    let flags = ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE);
    match finit_module(&file, c"", flags) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_skips_blanks_and_comments() {
        let text = "# generated\n\n/lib/modules/x/kernel/fs/configfs/configfs.ko.xz\n   \n  # indented comment\n\t/lib/modules/x/kernel/drivers/virtio/virtio.ko.xz  \n";
        assert_eq!(
            parse_order(text),
            [
                "/lib/modules/x/kernel/fs/configfs/configfs.ko.xz",
                "/lib/modules/x/kernel/drivers/virtio/virtio.ko.xz",
            ]
        );
        assert!(parse_order("").is_empty());
        assert!(parse_order("# only\n#comments\n").is_empty());
    }

    #[test]
    fn names_drop_directory_and_suffix() {
        assert_eq!(
            module_name(
                "/lib/modules/6.12.117+deb12-cloud-amd64/kernel/fs/configfs/configfs.ko.xz"
            ),
            "configfs"
        );
        assert_eq!(module_name("/lib/modules/x/qemu_fw_cfg.ko"), "qemu_fw_cfg");
        assert_eq!(module_name("/lib/modules/x/sev-guest.ko.zst"), "sev-guest");
        assert_eq!(module_name("evdev.ko.xz"), "evdev");
        assert_eq!(module_name("/odd/name.bin"), "name.bin");
    }

    #[test]
    fn relative_paths_are_refused() {
        assert_eq!(
            load("kernel/fs/configfs.ko.xz"),
            Err("not an absolute path".to_owned())
        );
    }
}
