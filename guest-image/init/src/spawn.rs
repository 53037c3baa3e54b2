//! Child processes start with an empty signal mask. Init blocks SIGCHLD, SIGTERM, ... for
//! its signalfd, a thread's mask survives fork and exec, and std's `Command` (as of Rust
//! 1.95, checked by the test in supervise.rs) does not reset it: keynode would otherwise
//! never see the SIGTERM of an orderly shutdown. The only way to run code between fork and
//! exec is `pre_exec`, which is unsafe, hence this module's allowance.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};

/// Makes `command`'s child clear its signal mask just before exec.
pub fn with_empty_signal_mask(command: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the forked child, where only async-signal-safe calls are
    // sound. It calls sigemptyset and sigprocmask (both async-signal-safe) on a sigset on
    // the stack, takes no locks, touches no shared state, and on failure builds an
    // io::Error from the errno value, which does not allocate.
    unsafe {
        command.pre_exec(|| {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(io::Error::from)
        })
    }
}
