//! The orderly end: stop keynode, then everything else, sync, power off. PID 1 never
//! returns from here.

use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::reboot::{RebootMode, reboot};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, sync};

use crate::log::log;
use crate::signals::{Signals, reap_all};

/// How long keynode gets to finish after SIGTERM.
const KEYNODE_GRACE: Duration = Duration::from_secs(10);
/// How long the other processes get after SIGTERM, and anything after SIGKILL.
const OTHERS_GRACE: Duration = Duration::from_secs(2);
const KILL_WAIT: Duration = Duration::from_secs(1);

/// Stops keynode (if running) and every other process, then powers off.
pub fn run(signals: &Signals, reason: &str, keynode: Option<Pid>) -> ! {
    log!("shutdown requested ({reason})");
    if let Some(pid) = keynode {
        log!("stopping keynode");
        signal(pid, Signal::SIGTERM);
        if wait_for(signals, Some(pid), KEYNODE_GRACE) {
            log!("keynode stopped");
        } else {
            log!("keynode did not stop in 10 s; killing");
            signal(pid, Signal::SIGKILL);
            wait_for(signals, Some(pid), KILL_WAIT);
        }
    }
    stop_everything_else(signals);
    power_off()
}

/// SIGTERM, then SIGKILL, to every process but init (kill(-1) as PID 1).
fn stop_everything_else(signals: &Signals) {
    let all = Pid::from_raw(-1);
    signal(all, Signal::SIGTERM);
    wait_for(signals, None, OTHERS_GRACE);
    signal(all, Signal::SIGKILL);
    wait_for(signals, None, KILL_WAIT);
}

/// Last resort after an internal error: no signalfd to rely on, so just signal, pause, kill.
pub fn emergency() -> ! {
    let all = Pid::from_raw(-1);
    signal(all, Signal::SIGTERM);
    thread::sleep(KILL_WAIT);
    signal(all, Signal::SIGKILL);
    reap_all();
    power_off()
}

/// Syncs and powers off; if the kernel refuses, sleeps forever (exiting would panic it).
pub fn power_off() -> ! {
    sync();
    log!("powering off");
    // reboot only ever returns an error (on success the machine is gone).
    let Err(error) = reboot(RebootMode::RB_POWER_OFF);
    log!("power off failed: {error}");
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

/// Sends a signal; ESRCH (already gone, or no other processes) is expected.
fn signal(pid: Pid, signal: Signal) {
    match kill(pid, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => log!("kill {pid} {}: {error}", signal.as_str()),
    }
}

/// Reaps children until `target` has been reaped (or, with no target, until none are
/// left), or the time is up. Returns whether that happened. Other signals are ignored:
/// shutdown is already under way.
fn wait_for(signals: &Signals, target: Option<Pid>, limit: Duration) -> bool {
    let deadline = Instant::now().checked_add(limit);
    loop {
        let reaped = reap_all();
        let done = match target {
            Some(pid) => reaped.none_left || reaped.statuses.iter().any(|s| s.pid() == Some(pid)),
            None => reaped.none_left,
        };
        if done {
            return true;
        }
        let remaining = deadline.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        });
        if remaining.is_zero() {
            return false;
        }
        // Any signal (SIGCHLD in particular) wakes this up to reap again.
        signals.wait(Some(remaining));
    }
}
