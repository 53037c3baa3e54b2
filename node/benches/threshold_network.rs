//! End-to-end threshold signing on loopback: `keynode` processes (release build, simulated
//! platform) with mutual attested TLS between them, and the client library doing what
//! `keynet sign` does (authorisation, a request to t nodes, aggregation with cheater
//! detection, RFC 9591 verification).
//!
//! For n = 4, 7 and 10 (t = ceil(2n/3)) it prints: DKG time (FROST and BLS together, as the
//! slowest node measured it, from its start to its sealed keys), signing latency p50/p99
//! over sequential signings, and signings per second with several in flight.
//!
//! `cargo bench -p keynode --bench threshold_network` (`KEYNET_BENCH_SIGNINGS=N` sets the
//! number of sequential signings, default 300; throughput runs 4x that).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k256::ecdsa::SigningKey;
use keynet::network::{Network, NetworkFile};
use keynet_protocol::registry::address_of;
use keynet_protocol::request::KeyRef;

struct Cluster {
    _dir: tempfile::TempDir,
    network_file: PathBuf,
    user_key: PathBuf,
    children: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_base(n: u16) -> Result<u16> {
    for _ in 0..200 {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let base = l.local_addr()?.port();
        drop(l);
        if base < 60_000
            && (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return Ok(base);
        }
    }
    bail!("no free ports")
}

fn start(n: usize) -> Result<Cluster> {
    let dir = tempfile::tempdir()?;
    let net = keynode::devnet::create(n, dir.path(), free_base(n as u16)?, 2048, None)?;
    let mut children = Vec::new();
    for c in &net.configs {
        children.push(
            Command::new(env!("CARGO_BIN_EXE_keynode"))
                .args(["run", "--config"])
                .arg(c)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting keynode")?,
        );
    }
    Ok(Cluster {
        _dir: dir,
        network_file: net.client_config,
        user_key: net.user_key,
        children,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Row {
    n: usize,
    t: usize,
    dkg_ms: u64,
    p50: f64,
    p99: f64,
    per_second: f64,
}

async fn measure(n: usize, signings: usize) -> Result<Row> {
    let cluster = start(n)?;
    let net = Network::open(&NetworkFile::load(&cluster.network_file)?)?;
    // Wait for every node's DKG, then read how long it took at each.
    let deadline = Instant::now() + Duration::from_secs(180);
    let dkg_ms = loop {
        let st = net.status().await;
        if st.iter().all(|s| s.error.is_none()) {
            let mut worst = 0u64;
            for p in 1..=n as u16 {
                let (_, body) = net
                    .request(p, "POST", "/v1/handshake", b"{}".to_vec())
                    .await
                    .map_err(anyhow::Error::msg)?;
                let v: serde_json::Value = serde_json::from_slice(&body)?;
                worst = worst.max(v["dkg"]["millis"].as_u64().unwrap_or(0));
            }
            break worst;
        }
        if Instant::now() > deadline {
            bail!("n={n}: DKG did not finish: {st:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = std::fs::read_to_string(&cluster.user_key)?;
    let user = SigningKey::from_slice(&hex::decode(text.trim())?)?;
    let key = KeyRef {
        owner: address_of(user.verifying_key()),
        name: "bench".into(),
    };
    let t = net.threshold();
    // Warm: connections open and verified, public keys fetched.
    net.sign(&user, &key, [0; 32], None).await?;
    let mut lat = Vec::with_capacity(signings);
    for i in 0..signings {
        let mut msg = [0u8; 32];
        msg[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let t0 = Instant::now();
        net.sign(&user, &key, msg, None).await?;
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    // Throughput: 8 signings in flight.
    let net = Arc::new(net);
    let total = signings * 4;
    let in_flight = 8;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..in_flight {
        let net = net.clone();
        let user = user.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..total).step_by(in_flight) {
                let mut msg = [1u8; 32];
                msg[..8].copy_from_slice(&(i as u64).to_be_bytes());
                net.sign(&user, &key, msg, None).await?;
            }
            Ok::<(), keynet::network::ClientError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let per_second = total as f64 / t0.elapsed().as_secs_f64();
    Ok(Row {
        n,
        t,
        dkg_ms,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        per_second,
    })
}

fn main() -> Result<()> {
    let signings: usize = std::env::var("KEYNET_BENCH_SIGNINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Runtime::new()?;
    println!(
        "keynet threshold signing, end to end on loopback ({} cores; nodes are processes, \
         simulated platform, mutual attested TLS)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{signings} sequential signings for latency, {} with 8 in flight for throughput",
        signings * 4
    );
    println!(
        "{:>3} {:>3} {:>10} {:>12} {:>12} {:>12}",
        "n", "t", "DKG ms", "sign p50 ms", "sign p99 ms", "signings/s"
    );
    for n in [4, 7, 10] {
        let r = rt.block_on(measure(n, signings))?;
        println!(
            "{:>3} {:>3} {:>10} {:>12.2} {:>12.2} {:>12.0}",
            r.n, r.t, r.dkg_ms, r.p50, r.p99, r.per_second
        );
    }
    Ok(())
}
