//! Shared by the integration tests.

// Not every test binary uses every helper.
#[allow(dead_code)]
pub mod cluster;

/// A base port with `n` free ports after it.
pub fn free_ports(n: u16) -> u16 {
    for _ in 0..200 {
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(base) = l.local_addr().map(|a| a.port()) else {
            continue;
        };
        drop(l);
        if base > 60_000 {
            continue;
        }
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free ports")
}
