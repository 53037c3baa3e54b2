//! Console logging. PID 1's stdin, stdout and stderr are /dev/console, so a line on stderr
//! reaches the serial console the host (and the tests) read.

use std::fmt;
use std::io::{self, Write};

use nix::errno::Errno;

/// Every line starts with this, so the host can tell init's lines from the kernel's.
pub const PREFIX: &str = "keynet-init: ";

/// Writes one prefixed line. Errors are ignored: the console is the only place to report
/// them, and PID 1 must carry on regardless.
pub fn line(args: fmt::Arguments<'_>) {
    let mut text = String::with_capacity(128);
    text.push_str(PREFIX);
    // Writing into a String fails only if a Display impl reports an error; keep what we have.
    let _ = fmt::write(&mut text, args);
    text.push('\n');
    // One write per line so the power-button thread cannot interleave mid-line.
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// `log!("...")`: a `format!`-style line on the console, prefixed with `keynet-init: `.
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}
pub(crate) use log;

/// An I/O error as `ENAME: description`, the same form nix's `Errno` displays.
pub fn io_error(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => Errno::from_raw(code).to_string(),
        None => one_line(&error.to_string()),
    }
}

/// Text from outside (host config errors, panic messages) on a single console line, with
/// control characters replaced so it cannot forge or garble other lines.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_line_breaks_and_controls() {
        assert_eq!(one_line("a\nb\r\tc\u{1b}[2Jd"), "a b  c?[2Jd");
    }

    #[test]
    fn io_error_uses_errno_names() {
        let error = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_error(&error), "ENOENT: No such file or directory");
    }
}
