//! The kernel command line. It is measured (part of the launch digest), so a flag on it is
//! a property of the image, not something the host can add later.

use std::fs;

use crate::log::{io_error, log};

/// The token that allows keynode's simulated SNP platform (test images only).
pub const SIMULATED_FLAG: &str = "keynet.simulated=1";

/// Whether the command line carries the simulated-platform flag as a whole token.
pub fn simulated_allowed(cmdline: &str) -> bool {
    cmdline
        .split_ascii_whitespace()
        .any(|token| token == SIMULATED_FLAG)
}

/// Reads /proc/cmdline; on failure logs it and returns an empty line (the safe default:
/// hardware only).
pub fn read() -> String {
    match fs::read_to_string("/proc/cmdline") {
        Ok(text) => text,
        Err(error) => {
            log!("read /proc/cmdline: {}", io_error(&error));
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_must_be_an_exact_token() {
        assert!(simulated_allowed("keynet.simulated=1"));
        assert!(simulated_allowed(
            "console=ttyS0 keynet.simulated=1 quiet\n"
        ));
        assert!(simulated_allowed("a\tkeynet.simulated=1"));
        assert!(!simulated_allowed("keynet.simulated=10"));
        assert!(!simulated_allowed("xkeynet.simulated=1"));
        assert!(!simulated_allowed("keynet.simulated=0"));
        assert!(!simulated_allowed("keynet.simulated"));
        assert!(!simulated_allowed("keynet.simulated=1x console=ttyS0"));
        assert!(!simulated_allowed(""));
    }
}
