//! The ACPI power button (QEMU `system_powerdown`, a cloud "stop"): a thread reads its
//! evdev node and turns a press into SIGPWR for PID 1, which the main loop handles as an
//! orderly shutdown.

use std::fs::{self, File};
use std::io::Read;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::log::{io_error, log};

/// Size of `struct input_event` on x86_64: struct timeval (16) + type, code (2 each) + value (4).
pub const EVENT_SIZE: usize = 24;
const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;
/// A key press (0 is release, 2 autorepeat).
const KEY_PRESSED: i32 = 1;

/// The device scan is retried for a while: the button and evdev modules were loaded just
/// before, and devtmpfs creates the node asynchronously.
const FIND_ATTEMPTS: u32 = 20;
const FIND_INTERVAL: Duration = Duration::from_millis(100);

/// One input event without its timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

impl InputEvent {
    /// Parses a little-endian x86_64 `struct input_event` record.
    pub fn parse(record: &[u8; EVENT_SIZE]) -> Self {
        Self {
            kind: u16::from_le_bytes([record[16], record[17]]),
            code: u16::from_le_bytes([record[18], record[19]]),
            value: i32::from_le_bytes([record[20], record[21], record[22], record[23]]),
        }
    }

    pub fn is_power_press(self) -> bool {
        self.kind == EV_KEY && self.code == KEY_POWER && self.value == KEY_PRESSED
    }
}

/// Whether an input device name (sysfs `device/name`) is a power button.
pub fn is_power_button(name: &str) -> bool {
    name.contains("Power Button")
}

/// Whether a /sys/class/input entry is an evdev node (`event<N>`).
pub fn is_event_node(entry: &str) -> bool {
    entry
        .strip_prefix("event")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Starts the watcher thread. It inherits the main thread's blocked signals.
pub fn start() {
    let spawned = thread::Builder::new()
        .name("power-button".to_owned())
        .spawn(watch);
    if let Err(error) = spawned {
        log!("power button: cannot start a thread: {}", io_error(&error));
    }
}

fn watch() {
    let Some((path, mut device)) = find() else {
        log!("no ACPI power button found");
        return;
    };
    log!("power button: {path}");
    let mut record = [0u8; EVENT_SIZE];
    loop {
        if let Err(error) = device.read_exact(&mut record) {
            log!("power button: read {path}: {}", io_error(&error));
            return;
        }
        if InputEvent::parse(&record).is_power_press() {
            log!("power button pressed");
            if let Err(error) = kill(Pid::from_raw(1), Signal::SIGPWR) {
                log!("power button: signal init: {error}");
            }
        }
    }
}

/// The first power button's evdev node, opened read-only.
fn find() -> Option<(String, File)> {
    for attempt in 0..FIND_ATTEMPTS {
        if attempt > 0 {
            thread::sleep(FIND_INTERVAL);
        }
        for node in power_button_nodes() {
            let path = format!("/dev/input/{node}");
            if let Ok(file) = File::open(&path) {
                return Some((path, file));
            }
        }
    }
    None
}

/// `event<N>` entries whose device is named like a power button, in name order.
fn power_button_nodes() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/class/input") else {
        return Vec::new();
    };
    let mut nodes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|entry| is_event_node(entry))
        .filter(|entry| {
            fs::read_to_string(format!("/sys/class/input/{entry}/device/name"))
                .is_ok_and(|name| is_power_button(name.trim()))
        })
        .collect();
    nodes.sort();
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u16, code: u16, value: i32) -> [u8; EVENT_SIZE] {
        let mut record = [0u8; EVENT_SIZE];
        // A non-zero timestamp, which parsing must skip.
        record[..8].copy_from_slice(&1_700_000_000u64.to_le_bytes());
        record[8..16].copy_from_slice(&123_456u64.to_le_bytes());
        record[16..18].copy_from_slice(&kind.to_le_bytes());
        record[18..20].copy_from_slice(&code.to_le_bytes());
        record[20..24].copy_from_slice(&value.to_le_bytes());
        record
    }

    #[test]
    fn parses_a_crafted_record() {
        let raw: [u8; EVENT_SIZE] = [
            0x00, 0xf1, 0x53, 0x65, 0, 0, 0, 0, // tv_sec
            0x40, 0xe2, 0x01, 0, 0, 0, 0, 0, // tv_usec
            0x01, 0x00, // type EV_KEY
            0x74, 0x00, // code 116 KEY_POWER
            0x01, 0x00, 0x00, 0x00, // value 1
        ];
        let event = InputEvent::parse(&raw);
        assert_eq!(
            event,
            InputEvent {
                kind: 1,
                code: 116,
                value: 1
            }
        );
        assert!(event.is_power_press());
        let negative = InputEvent::parse(&record(3, 0x10, -2));
        assert_eq!(negative.value, -2);
        assert_eq!(negative.kind, 3);
        assert_eq!(negative.code, 0x10);
    }

    #[test]
    fn only_a_power_key_press_counts() {
        assert!(InputEvent::parse(&record(EV_KEY, KEY_POWER, 1)).is_power_press());
        assert!(!InputEvent::parse(&record(EV_KEY, KEY_POWER, 0)).is_power_press());
        assert!(!InputEvent::parse(&record(EV_KEY, KEY_POWER, 2)).is_power_press());
        assert!(!InputEvent::parse(&record(EV_KEY, 115, 1)).is_power_press());
        assert!(!InputEvent::parse(&record(0, KEY_POWER, 1)).is_power_press());
        assert!(!InputEvent::parse(&record(0x1_01, KEY_POWER, 1)).is_power_press());
    }

    #[test]
    fn device_names_and_nodes() {
        assert!(is_power_button("Power Button"));
        assert!(!is_power_button("Sleep Button"));
        assert!(!is_power_button("AT Translated Set 2 keyboard"));
        assert!(is_event_node("event0"));
        assert!(is_event_node("event12"));
        assert!(!is_event_node("event"));
        assert!(!is_event_node("input3"));
        assert!(!is_event_node("event1a"));
    }
}
