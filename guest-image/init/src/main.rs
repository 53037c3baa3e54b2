//! keynet-init: PID 1 of the Keynet guest initramfs (AMD SEV-SNP confidential VM).
//!
//! Boot: kernel filesystems, kernel modules, configfs, host input from fw_cfg, network,
//! then keynode under supervision until shutdown, then power off. PID 1 must never panic
//! or exit (the kernel would panic), so every failure is logged and boot carries on, and a
//! panic that slips through is caught and turned into a power-off.

mod cmdline;
mod hostinput;
mod log;
mod modules;
mod mounts;
mod net;
mod netconfig;
mod network;
mod power_button;
mod shutdown;
mod signals;
mod spawn;
mod supervise;
mod system;

use std::panic;

use crate::log::{log, one_line};

fn main() {
    // Running this on a workstation by mistake would mount over /proc and power it off.
    if std::process::id() != 1 {
        log!("not running as PID 1; refusing to start");
        std::process::exit(1);
    }
    panic::set_hook(Box::new(|info| {
        log!("panic: {}", one_line(&info.to_string()))
    }));
    if panic::catch_unwind(boot).is_err() {
        log!("internal error; powering off");
    }
    shutdown::emergency()
}

/// The whole life of the system; only returns by unwinding from a panic.
fn boot() {
    // First, before any thread or child exists, so all of them inherit the mask and no
    // signal is lost before the signalfd reads it.
    signals::block();
    let signals = signals::Signals::open();

    mounts::mount_early();
    system::disable_ctrl_alt_del();
    system::set_hostname();
    system::raise_open_files();

    modules::load_all();
    mounts::mount_configfs();
    power_button::start();

    hostinput::copy_all();
    network::setup();
    system::write_etc_hosts();

    let simulated = cmdline::simulated_allowed(&cmdline::read());
    if simulated {
        log!("simulated platform ALLOWED by the measured command line (test images only)");
    }

    let stop = supervise::run(&signals, simulated);
    shutdown::run(&signals, &stop.reason, stop.keynode)
}
