//! Shared by the integration tests.

// Not every test binary uses every helper.
#[allow(dead_code)]
pub mod cluster;
#[allow(dead_code)]
pub mod flood;

/// A base port with `n` free ports after it, below the kernel's ephemeral range (32768 and
/// up by default): the tests that open thousands of client connections take ephemeral
/// ports, and a node must not find its port taken by one of them.
pub fn free_ports(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 20)
        ^ CALLS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut x = seed | 1;
    for _ in 0..500 {
        // xorshift: a spread of candidates in 10000..32000
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let base = 10_000 + (x % 22_000) as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free ports")
}

/// The p50 and p99 of `samples` (nearest rank), milliseconds.
#[allow(dead_code)]
pub fn percentiles(mut samples: Vec<std::time::Duration>) -> (u128, u128) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_millis()
    };
    (at(0.5), at(0.99))
}
