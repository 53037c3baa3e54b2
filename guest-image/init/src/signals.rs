//! Signals and child reaping. PID 1 blocks the signals it cares about and reads them from
//! a signalfd, so there are no async handlers; SIGCHLD triggers reaping of every child.

use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::log::log;

/// Children, shutdown requests (SIGTERM, SIGINT from Ctrl-Alt-Del, SIGPWR, SIGUSR2) and
/// signals only logged (SIGUSR1, SIGHUP).
pub const HANDLED: [Signal; 7] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGPWR,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGHUP,
];

/// The signals PID 1 handles. Blocked in the main thread before any thread or child exists,
/// so every thread inherits the mask and the signals stay pending for the signalfd.
/// (Blocked signals are queued even for init, which otherwise drops unhandled ones.)
pub fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for signal in HANDLED {
        set.add(signal);
    }
    set
}

/// Blocks the handled signals in the calling thread.
pub fn block() {
    if let Err(error) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&handled()), None) {
        log!("block signals: {error}");
    }
}

/// One signal read from the signalfd.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// None for a number nix does not know (not expected: only handled() is in the fd).
    pub signal: Option<Signal>,
    /// The sending process (1 when a thread of init sent it).
    pub sender: u32,
}

/// The source of signals for the main loop.
pub struct Signals {
    /// None if signalfd could not be created: then the loop degrades to polling for
    /// children every second, without shutdown signals.
    fd: Option<SignalFd>,
}

impl Signals {
    pub fn open() -> Self {
        match SignalFd::with_flags(&handled(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Self { fd: Some(fd) },
            Err(error) => {
                log!("signalfd: {error}; polling for children instead");
                Self { fd: None }
            }
        }
    }

    /// Waits up to `timeout` (forever if None) and returns the signals that arrived.
    pub fn wait(&self, timeout: Option<Duration>) -> Vec<Received> {
        let Some(fd) = &self.fd else {
            thread::sleep(
                timeout.map_or(Duration::from_secs(1), |t| t.min(Duration::from_secs(1))),
            );
            return vec![Received {
                signal: Some(Signal::SIGCHLD),
                sender: 0,
            }];
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout(timeout)) {
            Ok(0) => return Vec::new(),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => {
                log!("poll: {error}");
                // Avoid a busy loop if poll keeps failing.
                thread::sleep(Duration::from_millis(100));
            }
        }
        let mut received = Vec::new();
        loop {
            match fd.read_signal() {
                Ok(Some(info)) => received.push(Received {
                    signal: i32::try_from(info.ssi_signo)
                        .ok()
                        .and_then(|n| Signal::try_from(n).ok()),
                    sender: info.ssi_pid,
                }),
                Ok(None) => break,
                Err(Errno::EINTR) => {}
                Err(error) => {
                    log!("read signalfd: {error}");
                    break;
                }
            }
        }
        received
    }
}

/// The poll timeout for a wait: rounded up to whole milliseconds (so a timer does not
/// spin at 0 ms before it is due) and capped at 60 s (the caller loops anyway).
pub fn poll_timeout(timeout: Option<Duration>) -> PollTimeout {
    match timeout {
        None => PollTimeout::NONE,
        Some(timeout) => {
            let millis = timeout.as_nanos().div_ceil(1_000_000).min(60_000);
            PollTimeout::from(u16::try_from(millis).unwrap_or(60_000))
        }
    }
}

/// What one round of reaping found.
pub struct Reaped {
    pub statuses: Vec<WaitStatus>,
    /// waitpid said ECHILD: no children are left at all.
    pub none_left: bool,
}

/// Reaps every exited child (keynode and any orphan re-parented to init).
pub fn reap_all() -> Reaped {
    let mut statuses = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                return Reaped {
                    statuses,
                    none_left: false,
                };
            }
            Ok(status) => statuses.push(status),
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => {
                return Reaped {
                    statuses,
                    none_left: true,
                };
            }
            Err(error) => {
                log!("waitpid: {error}");
                return Reaped {
                    statuses,
                    none_left: false,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_set_is_complete() {
        let set = handled();
        for signal in HANDLED {
            assert!(set.contains(signal), "{signal} missing");
        }
        // Nothing else: SIGPIPE, SIGSEGV etc. keep their default handling.
        for signal in [Signal::SIGPIPE, Signal::SIGSEGV, Signal::SIGALRM] {
            assert!(!set.contains(signal), "{signal} blocked");
        }
        assert!(!set.contains(Signal::SIGKILL));
        assert!(!set.contains(Signal::SIGSEGV));
    }

    #[test]
    fn poll_timeouts_round_up_and_cap() {
        assert_eq!(poll_timeout(None), PollTimeout::NONE);
        assert_eq!(i32::from(poll_timeout(Some(Duration::ZERO))), 0);
        assert_eq!(i32::from(poll_timeout(Some(Duration::from_micros(1)))), 1);
        assert_eq!(
            i32::from(poll_timeout(Some(Duration::from_millis(1500)))),
            1500
        );
        assert_eq!(
            i32::from(poll_timeout(Some(Duration::from_secs(3600)))),
            60_000
        );
    }
}
