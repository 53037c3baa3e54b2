//! Runs keynode and restarts it with exponential backoff, until a shutdown signal or a
//! permanent failure (exit 2: bad configuration, exit 3: no SEV-SNP platform).

use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use crate::log::{io_error, log};
use crate::signals::{Signals, reap_all};
use crate::spawn::with_empty_signal_mask;

/// The supervised program.
pub const KEYNODE: &str = "/bin/keynode";
/// keynode's configuration: the host's `config`, copied from fw_cfg.
const CONFIG: &str = "/run/keynet/host/config";
/// Exit code keynode uses for an invalid configuration.
const EXIT_CONFIG_INVALID: i32 = 2;
/// Exit code keynode uses when it refuses to serve without an SEV-SNP platform.
const EXIT_NO_SNP: i32 = 3;
/// Shutdown reason after a permanent failure.
const CANNOT_SERVE: &str = "keynode cannot serve";

/// Restart delays: 1, 2, 4, ... seconds, capped at 60; back to 1 after a run of at least
/// 60 s, so a long-healthy node that crashes once restarts quickly.
#[derive(Debug)]
pub struct Backoff {
    next: u64,
}

impl Backoff {
    pub const MAX_SECS: u64 = 60;
    pub const STABLE_RUN: Duration = Duration::from_secs(60);

    pub const fn new() -> Self {
        Self { next: 1 }
    }

    /// The delay before the next attempt, given how long the last run lasted (None if
    /// keynode could not be started at all).
    pub fn delay(&mut self, ran_for: Option<Duration>) -> u64 {
        if ran_for.is_some_and(|ran| ran >= Self::STABLE_RUN) {
            self.next = 1;
        }
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(Self::MAX_SECS);
        delay
    }
}

/// keynode's arguments. `--hardware-only` unless the measured command line allows the
/// simulated platform.
pub fn keynode_args(simulated: bool) -> Vec<&'static str> {
    let mut args = vec!["run", "--config", CONFIG];
    if !simulated {
        args.push("--hardware-only");
    }
    args
}

/// The console lines for keynode's end, and whether to restart it.
pub fn judge_exit(status: WaitStatus) -> (Vec<String>, bool) {
    match status {
        WaitStatus::Exited(_, code) => {
            let mut lines = vec![format!("keynode exited with status {code}")];
            match code {
                EXIT_NO_SNP => {
                    lines.push(
                        "keynode refuses to serve: no SEV-SNP platform (exit 3); not restarting"
                            .to_owned(),
                    );
                    (lines, false)
                }
                EXIT_CONFIG_INVALID => {
                    lines.push("keynode configuration invalid (exit 2); not restarting".to_owned());
                    (lines, false)
                }
                _ => (lines, true),
            }
        }
        WaitStatus::Signaled(_, signal, _) => (
            vec![format!("keynode killed by signal {}", signal.as_str())],
            true,
        ),
        other => (vec![format!("keynode ended: {other:?}")], true),
    }
}

/// Why supervision ended, and keynode's pid if it is still running.
pub struct Stop {
    pub reason: String,
    pub keynode: Option<Pid>,
}

/// The main loop: start keynode, reap children, restart on failure, return on shutdown.
pub fn run(signals: &Signals, simulated: bool) -> Stop {
    let mut backoff = Backoff::new();
    let mut attempt: u64 = 0;
    let mut running: Option<(Pid, Instant)> = None;
    let mut next_start: Option<Instant> = Some(Instant::now());
    loop {
        // Sleep until the restart is due, or indefinitely while keynode runs.
        let timeout = match (running, next_start) {
            (None, Some(at)) => Some(at.saturating_duration_since(Instant::now())),
            _ => None,
        };
        // Signals come first, so a shutdown requested during boot wins over a start.
        for received in signals.wait(timeout) {
            let reason = match received.signal {
                Some(Signal::SIGCHLD) => {
                    for status in reap_all().statuses {
                        let Some((pid, started)) = running else {
                            continue;
                        };
                        if status.pid() != Some(pid) {
                            continue;
                        }
                        running = None;
                        let (lines, restart) = judge_exit(status);
                        for line in lines {
                            log!("{line}");
                        }
                        if !restart {
                            return Stop {
                                reason: CANNOT_SERVE.to_owned(),
                                keynode: None,
                            };
                        }
                        next_start = Some(schedule_restart(&mut backoff, Some(started.elapsed())));
                    }
                    continue;
                }
                // Our power-button thread sends SIGPWR as PID 1 (its thread group).
                Some(Signal::SIGPWR) if received.sender == 1 => "power button",
                Some(
                    signal @ (Signal::SIGTERM | Signal::SIGINT | Signal::SIGPWR | Signal::SIGUSR2),
                ) => signal.as_str(),
                Some(signal) => {
                    log!("ignoring {}", signal.as_str());
                    continue;
                }
                None => {
                    log!("ignoring an unknown signal");
                    continue;
                }
            };
            return Stop {
                reason: reason.to_owned(),
                keynode: running.map(|(pid, _)| pid),
            };
        }
        if running.is_none() && next_start.is_some_and(|at| Instant::now() >= at) {
            attempt += 1;
            log!("starting keynode (attempt {attempt})");
            match spawn(simulated) {
                Ok(pid) => {
                    running = Some((pid, Instant::now()));
                    next_start = None;
                }
                Err(error) => {
                    log!("cannot start {KEYNODE}: {}", io_error(&error));
                    next_start = Some(schedule_restart(&mut backoff, None));
                }
            }
        }
    }
}

/// Logs the restart delay and returns when the restart is due.
fn schedule_restart(backoff: &mut Backoff, ran_for: Option<Duration>) -> Instant {
    let delay = backoff.delay(ran_for);
    log!("restarting keynode in {delay} s");
    let now = Instant::now();
    now.checked_add(Duration::from_secs(delay)).unwrap_or(now)
}

/// Starts keynode with a clean environment, stdin from /dev/null, the console as
/// stdout/stderr, and an empty signal mask (see spawn.rs).
fn spawn(simulated: bool) -> io::Result<Pid> {
    let mut command = Command::new(KEYNODE);
    let child = with_empty_signal_mask(&mut command)
        .args(keynode_args(simulated))
        .env_clear()
        .env("RUST_LOG", "info")
        .env("PATH", "/bin")
        .env("HOME", "/run/keynet")
        // The serial console is read by people and log collectors, not a terminal.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()?;
    // Dropping the Child neither kills nor waits for it: init reaps with waitpid(-1).
    i32::try_from(child.id())
        .map(Pid::from_raw)
        .map_err(|_| io::Error::other("child pid out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..9)
            .map(|_| backoff.delay(Some(Duration::from_secs(5))))
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // A run of 60 s or more resets to 1 s, then the sequence starts over.
        assert_eq!(backoff.delay(Some(Duration::from_secs(60))), 1);
        assert_eq!(backoff.delay(Some(Duration::from_secs(1))), 2);
        assert_eq!(backoff.delay(Some(Duration::from_secs(59))), 4);
        // Spawn failures (no run at all) keep growing the delay.
        assert_eq!(backoff.delay(None), 8);
        assert_eq!(backoff.delay(Some(Duration::from_secs(3600))), 1);
    }

    #[test]
    fn arguments_depend_on_the_simulated_flag() {
        assert_eq!(
            keynode_args(false),
            [
                "run",
                "--config",
                "/run/keynet/host/config",
                "--hardware-only"
            ]
        );
        assert_eq!(
            keynode_args(true),
            ["run", "--config", "/run/keynet/host/config"]
        );
    }

    #[test]
    fn exit_codes_2_and_3_are_permanent() {
        let pid = Pid::from_raw(42);
        let (lines, restart) = judge_exit(WaitStatus::Exited(pid, 3));
        assert!(!restart);
        assert_eq!(
            lines,
            [
                "keynode exited with status 3",
                "keynode refuses to serve: no SEV-SNP platform (exit 3); not restarting",
            ]
        );
        let (lines, restart) = judge_exit(WaitStatus::Exited(pid, 2));
        assert!(!restart);
        assert_eq!(
            lines,
            [
                "keynode exited with status 2",
                "keynode configuration invalid (exit 2); not restarting",
            ]
        );
    }

    #[test]
    fn other_ends_are_restarted() {
        let pid = Pid::from_raw(42);
        for code in [0, 1, 4, 101] {
            let (lines, restart) = judge_exit(WaitStatus::Exited(pid, code));
            assert!(restart, "exit {code}");
            assert_eq!(lines, [format!("keynode exited with status {code}")]);
        }
        let (lines, restart) = judge_exit(WaitStatus::Signaled(pid, Signal::SIGSEGV, true));
        assert!(restart);
        assert_eq!(lines, ["keynode killed by signal SIGSEGV"]);
    }

    /// keynode must not inherit init's blocked signals (nor SIGPIPE ignored by the Rust
    /// runtime); check with a thread that blocks what init blocks.
    #[test]
    fn child_starts_with_default_signals() {
        let result = std::thread::spawn(|| {
            crate::signals::block();
            let own = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
            let mut command = Command::new("cat");
            let child = with_empty_signal_mask(&mut command)
                .arg("/proc/self/status")
                .env_clear()
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .unwrap_or_default();
            (
                status_mask(&own, "SigBlk:"),
                status_mask(&child, "SigBlk:"),
                status_mask(&child, "SigIgn:"),
            )
        })
        .join();
        let Ok((own, child_blocked, child_ignored)) = result else {
            assert!(result.is_ok(), "test thread failed");
            return;
        };
        assert!(
            own.is_some_and(|mask| mask != 0),
            "the test thread should have signals blocked: {own:?}"
        );
        assert_eq!(child_blocked, Some(0), "the child inherited a signal mask");
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        assert!(
            child_ignored.is_some_and(|mask| mask & sigpipe == 0),
            "the child ignores SIGPIPE: {child_ignored:?}"
        );
    }

    fn status_mask(status: &str, field: &str) -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(field))?;
        u64::from_str_radix(line.trim_start_matches(field).trim(), 16).ok()
    }
}
