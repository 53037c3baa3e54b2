//! End-to-end threshold operations on loopback: `keynode` processes (release build,
//! simulated platform) with mutual attested TLS between them, and the client library doing
//! what `keynet sign` does (authorisation, a request to t nodes, aggregation with cheater
//! detection, RFC 9591 verification) and what `keynet decrypt` does (authorisation and
//! conditions checked by t nodes, each BLS share verified, combined, verified, file opened).
//!
//! For n = 4, 7 and 10 (t = ceil(2n/3)) it prints: DKG time (FROST and BLS together, as the
//! slowest node measured it, from its start to its sealed keys), signing and decryption
//! latency p50/p99 over sequential operations, and operations per second with several in
//! flight.
//!
//! Then, for n = 4, signing latency while every node is flooded with permission writes from
//! fresh wallets (presigned at several rates, and signed on the fly as fast as eight
//! writers can), beside the quiet figure: a flood must not stall signing.
//!
//! `cargo bench -p keynode --bench threshold_network` (`KEYNET_BENCH_SIGNINGS=N` sets the
//! number of sequential signings, default 300; throughput runs 4x that, and each flood 3x;
//! `KEYNET_BENCH_PART=table` or `flood` runs one part only).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k256::ecdsa::SigningKey;
use keynet::network::{ClientError, Network, NetworkFile};
use keynet_conditions::Conditions;
use keynet_encryption::Header;
use keynet_eth::address_of;
use keynet_protocol::request::KeyRef;
use sha2::{Digest, Sha256};

#[path = "../tests/common/flood.rs"]
mod flood;
use flood::Flood;

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
    sign: Figures,
    decrypt: Figures,
}

/// Latency percentiles (ms) of sequential operations and the rate with 8 in flight.
struct Figures {
    p50: f64,
    p99: f64,
    per_second: f64,
}

type Op = Arc<
    dyn Fn(usize) -> Pin<Box<dyn Future<Output = Result<(), ClientError>> + Send>> + Send + Sync,
>;

/// `count` sequential calls of `op` for latency, then `4 * count` with 8 in flight.
async fn figures(op: Op, count: usize) -> Result<Figures> {
    op(usize::MAX).await?; // warm: connections verified, keys fetched
    let mut lat = Vec::with_capacity(count);
    for i in 0..count {
        let t0 = Instant::now();
        op(i).await?;
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let total = count * 4;
    let in_flight = 8;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..in_flight {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..total).step_by(in_flight) {
                op(count + i).await?;
            }
            Ok::<(), ClientError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(Figures {
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        per_second: total as f64 / t0.elapsed().as_secs_f64(),
    })
}

/// Waits for every node's DKG; returns how long it took at the slowest (ms).
async fn wait_dkg(net: &Network, n: usize) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
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
            return Ok(worst);
        }
        if Instant::now() > deadline {
            bail!("n={n}: DKG did not finish: {st:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn measure(n: usize, count: usize) -> Result<Row> {
    let cluster = start(n)?;
    let net = Network::open(&NetworkFile::load(&cluster.network_file)?)?;
    let dkg_ms = wait_dkg(&net, n).await?;
    let text = std::fs::read_to_string(&cluster.user_key)?;
    let user = SigningKey::from_slice(&hex::decode(text.trim())?)?;
    let key = KeyRef::new(address_of(user.verifying_key()), "bench")?;
    let t = net.threshold();
    let net = Arc::new(net);

    let sign: Op = {
        let (net, user) = (net.clone(), user.clone());
        Arc::new(move |i| {
            let (net, user, key) = (net.clone(), user.clone(), key.clone());
            Box::pin(async move {
                let mut msg = [0u8; 32];
                msg[..8].copy_from_slice(&(i as u64).to_be_bytes());
                net.sign(&user, &key, msg, None).await.map(|_| ())
            })
        })
    };
    let sign = figures(sign, count).await?;

    // A 1 KiB file for the user's address, decrypted end to end: header read, shares from
    // a threshold of nodes (each checks the authorisation and conditions), every share
    // verified, combined, verified, the data key opened and the file decrypted.
    let conditions = Conditions::parse(
        format!(
            r#"{{"version":1,"condition":{{"all":[{{"address_is":"{}"}},{{"time_before":{}}}]}}}}"#,
            address_of(user.verifying_key()).to_checksum(),
            253_402_300_000u64
        )
        .as_bytes(),
    )?;
    let plain = vec![7u8; 1024];
    let digest: [u8; 32] = Sha256::digest(&plain).into();
    let mut file = Vec::new();
    keynet_encryption::encrypt(
        &net.bls_public_key().await?,
        &conditions,
        &digest,
        &mut plain.as_slice(),
        &mut file,
    )?;
    let file = Arc::new(file);
    let decrypt: Op = Arc::new(move |_| {
        let (net, user, file) = (net.clone(), user.clone(), file.clone());
        Box::pin(async move {
            let mut input = file.as_slice();
            let header = Header::read(&mut input)?;
            let mut out = Vec::with_capacity(1024);
            net.decrypt(&user, &header, &[], &mut input, &mut out)
                .await
                .map(|_| ())
        })
    });
    let decrypt = figures(decrypt, count).await?;
    Ok(Row {
        n,
        t,
        dkg_ms,
        sign,
        decrypt,
    })
}

/// `count` sequential signings by `user` (a key of its own): latencies, sorted (ms).
async fn signings(net: &Network, user: &SigningKey, count: usize) -> Result<Vec<f64>> {
    let key = KeyRef::new(address_of(user.verifying_key()), "bench")?;
    net.sign(user, &key, [0xff; 32], None).await?; // warm
    let mut lat = Vec::with_capacity(count);
    for i in 0..count {
        let mut msg = [0u8; 32];
        msg[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let t0 = Instant::now();
        net.sign(user, &key, msg, None).await?;
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(lat)
}

/// Signing latency at n = 4, quiet and during floods of permission writes.
async fn under_flood(count: usize) -> Result<()> {
    let n = 4;
    let cluster = start(n)?;
    let file = NetworkFile::load(&cluster.network_file)?;
    let net = Network::open(&file)?;
    wait_dkg(&net, n).await?;
    let quiet = signings(&net, &SigningKey::random(&mut rand_core::OsRng), count).await?;
    let (q50, q99) = (percentile(&quiet, 0.5), percentile(&quiet, 0.99));
    println!();
    println!(
        "signing during a flood of permission writes from fresh wallets, n = 4 ({count} \
         signings each; every node takes {} writes a second, a burst of twice that, and \
         refuses the rest)",
        keynode::pkp::PkpLimits::default().per_second
    );
    println!(
        "{:<26} {:>9} {:>12} {:>9} {:>9} {:>11}",
        "flood", "writes/s", "accepted/s", "sign p50", "sign p99", "p99 / quiet"
    );
    println!(
        "{:<26} {:>9} {:>12} {:>9.2} {:>9.2} {:>11.2}",
        "none", 0, 0, q50, q99, 1.0
    );
    for f in [
        Flood::Presigned { per_second: 100 },
        Flood::Presigned { per_second: 500 },
        Flood::Presigned { per_second: 2000 },
        Flood::OnTheFly,
    ] {
        let nets = (0..8)
            .map(|_| Network::open(&file))
            .collect::<Result<Vec<_>, _>>()?;
        let running = flood::start(nets, n as u16, &net.registry().network_id, f, 30);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let lat = signings(&net, &SigningKey::random(&mut rand_core::OsRng), count).await?;
        let done = running.stop();
        let secs = done.took.as_secs_f64();
        let name = match f {
            Flood::Presigned { per_second } => format!("presigned, {per_second}/s asked"),
            Flood::OnTheFly => "signed on the fly, 8 fast".to_owned(),
        };
        println!(
            "{:<26} {:>9.0} {:>12.0} {:>9.2} {:>9.2} {:>11.2}",
            name,
            done.sent as f64 / secs,
            done.written as f64 / secs / n as f64,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 0.99) / q99
        );
    }
    // Quiet again: how far the quiet figure itself moves between runs on this machine.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = signings(&net, &SigningKey::random(&mut rand_core::OsRng), count).await?;
    println!(
        "{:<26} {:>9} {:>12} {:>9.2} {:>9.2} {:>11.2}",
        "none, again after",
        0,
        0,
        percentile(&again, 0.5),
        percentile(&again, 0.99),
        percentile(&again, 0.99) / q99
    );
    println!("(latencies in ms; writes/s as sent, each to every node; accepted/s per node)");
    Ok(())
}

fn main() -> Result<()> {
    let signings: usize = std::env::var("KEYNET_BENCH_SIGNINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Runtime::new()?;
    let part = std::env::var("KEYNET_BENCH_PART").unwrap_or_default();
    if part == "flood" {
        return rt.block_on(under_flood(signings * 3));
    }
    println!(
        "keynet threshold signing, end to end on loopback ({} cores; nodes are processes, \
         simulated platform, mutual attested TLS)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{signings} sequential operations of each kind for latency, {} with 8 in flight for \
         throughput; decryption is of a 1 KiB file, end to end",
        signings * 4
    );
    println!(
        "{:>3} {:>3} {:>8} {:>9} {:>9} {:>10} {:>10} {:>10} {:>12}",
        "n",
        "t",
        "DKG ms",
        "sign p50",
        "sign p99",
        "signings/s",
        "decr p50",
        "decr p99",
        "decryptions/s"
    );
    for n in [4, 7, 10] {
        let r = rt.block_on(measure(n, signings))?;
        println!(
            "{:>3} {:>3} {:>8} {:>9.2} {:>9.2} {:>10.0} {:>10.2} {:>10.2} {:>12.0}",
            r.n,
            r.t,
            r.dkg_ms,
            r.sign.p50,
            r.sign.p99,
            r.sign.per_second,
            r.decrypt.p50,
            r.decrypt.p99,
            r.decrypt.per_second
        );
    }
    println!("(latencies in ms)");
    if part == "table" {
        return Ok(());
    }
    rt.block_on(under_flood(signings * 3))
}
