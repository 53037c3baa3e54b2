//! The soak: an n-node loopback network (real `keynode` processes, simulated platform)
//! under mixed concurrent load (signing, decryption, permission changes, fresh evidence,
//! idle and slow connections) while nodes are killed with SIGKILL and restarted, one node's
//! clock runs ahead, and one node's disk is made full for a while. It prints what was
//! attempted, what succeeded, failures by reason, wrong results, latency per phase, state
//! lost and restarts survived; wrong results and lost state must be 0.
//!
//! `make test` runs a short one (`SOAK_SECONDS`, default 40, `SOAK_NODES`, default 4);
//! `make soak` runs 600 s with 7 nodes. The full-disk node runs in a mount namespace of its
//! own (`unshare`) with its state on a small tmpfs; where namespaces are not allowed, that
//! phase is skipped and the report says so.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keynet::network::{ClientError, Network, RefusalCode};
use keynet_conditions::Conditions;
use keynet_encryption::Header;
use keynet_eth::address_of;
use keynet_protocol::request::KeyRef;
use keynet_threshold::derive::derive_public_package;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

mod common;
use common::cluster::{Cluster, rt};
use common::percentiles;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What happened, by operation and phase.
#[derive(Default)]
struct Tally {
    attempted: BTreeMap<&'static str, u64>,
    succeeded: BTreeMap<&'static str, u64>,
    failed: BTreeMap<(&'static str, String), u64>,
    wrong: Vec<String>,
    latency: BTreeMap<(&'static str, &'static str), Vec<Duration>>,
}

struct Shared {
    tally: Mutex<Tally>,
    phase: Mutex<&'static str>,
    stop: AtomicBool,
}

impl Shared {
    fn phase(&self) -> &'static str {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn record(&self, op: &'static str, took: Duration, outcome: Result<(), String>) {
        let phase = self.phase();
        let mut t = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        *t.attempted.entry(op).or_default() += 1;
        match outcome {
            Ok(()) => {
                *t.succeeded.entry(op).or_default() += 1;
                t.latency.entry((op, phase)).or_default().push(took);
            }
            Err(reason) => *t.failed.entry((op, reason)).or_default() += 1,
        }
    }
    fn wrong(&self, what: String) {
        self.tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .wrong
            .push(what);
    }
}

/// A failure's reason, coarse enough to count.
fn reason(e: &ClientError) -> String {
    match e {
        ClientError::Refused { code, .. } => match code {
            RefusalCode::Node(c) => format!("refused: {c}"),
            other => format!("refused: {other}"),
        },
        ClientError::NotEnoughNodes { .. } => "not enough nodes".into(),
        ClientError::Inconsistent(_) => "keys disagree".into(),
        ClientError::BadShares(_) => "bad shares".into(),
        ClientError::Decrypt(_) => "decrypt".into(),
        other => other.to_string().chars().take(40).collect(),
    }
}

/// The state directory of the full-disk node, as keynode sees it inside its namespace.
struct SmallDisk {
    node: usize,
    state: PathBuf,
}

/// Starts node `i` in a mount namespace of its own whose state directory is a 32 MiB
/// tmpfs holding a copy of its state; `false` if namespaces are not allowed here.
fn start_on_small_disk(cluster: &mut Cluster, i: usize) -> bool {
    let state = cluster.path(&format!("node-{i}/state"));
    let probe = Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !probe {
        return false;
    }
    let script = "set -e; t=$(mktemp -d); mount -t tmpfs -o size=32m keynet-small \"$t\"; \
                  cp -a \"$1\"/. \"$t\"/; mount --bind \"$t\" \"$1\"; shift; exec \"$@\"";
    let log = std::fs::File::create(cluster.path(&format!("node-{i}.log")))
        .unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(&state)
        .arg(env!("CARGO_BIN_EXE_keynode"))
        .args(["run", "--config"])
        .arg(cluster.config(i))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    cluster.nodes[i] = Some(child);
    true
}

/// Fills (or empties) the small disk of `d`, seen through its process's root.
fn fill(cluster: &Cluster, d: &SmallDisk, full: bool) -> Option<()> {
    let pid = cluster.nodes[d.node].as_ref()?.id();
    let filler = PathBuf::from(format!("/proc/{pid}/root"))
        .join(d.state.strip_prefix("/").ok()?)
        .join("filler");
    if !full {
        return std::fs::remove_file(filler).ok();
    }
    let mut f = std::fs::File::create(&filler).ok()?;
    let block = vec![0u8; 64 << 10];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    Some(())
}

async fn idle_and_slow(to: Vec<SocketAddr>, shared: Arc<Shared>) {
    // Plain TCP is enough here: limits.rs covers TLS-level abuse; these hold slots.
    while !shared.stop.load(Ordering::Relaxed) {
        let mut held = Vec::new();
        for (k, a) in to.iter().enumerate().cycle().take(to.len() * 25) {
            if let Ok(mut s) = tokio::net::TcpStream::connect(a).await {
                if k % 3 == 0 {
                    let _ = s.write_all(b"\x16\x03\x01").await; // a TLS record, never finished
                }
                held.push(s);
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(held);
    }
}

#[test]
fn soak() {
    let seconds = env_or("SOAK_SECONDS", 40);
    let n = env_or("SOAK_NODES", 4) as usize;
    assert!(n >= 4, "SOAK_NODES must be at least 4");
    let mut cluster = Cluster::create(n, 3000, "");
    // Node n-1: the full-disk node; node n-2: a clock 20 s ahead; the others are killed.
    let fast = [
        (
            "LD_PRELOAD",
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        ),
        ("FAKETIME", "+20"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    assert!(
        std::path::Path::new(fast[0].1).is_file(),
        "libfaketime missing: guest-image/deps.sh installs it"
    );
    for i in 0..n - 2 {
        cluster.start_node(i);
    }
    cluster.start_node_with(n - 2, &fast);
    let small = start_on_small_disk(&mut cluster, n - 1).then(|| SmallDisk {
        node: n - 1,
        state: cluster.path(&format!("node-{}/state", n - 1)),
    });
    if small.is_none() {
        cluster.start_node(n - 1);
    }
    let killable: Vec<usize> = (0..n - 2).collect();
    let shared = Arc::new(Shared {
        tally: Mutex::new(Tally::default()),
        phase: Mutex::new("steady"),
        stop: AtomicBool::new(false),
    });
    let mut restarts = 0u32;
    let mut acknowledged: BTreeMap<(String, String), u64> = BTreeMap::new();
    rt().block_on(async {
        cluster.wait_dkg().await;
        let net = cluster.network();
        let user = cluster.user();
        let (root, _) = net.public_keys().await.unwrap_or_else(|e| panic!("{e}"));
        let bls = net.bls_public_key().await.unwrap_or_else(|e| panic!("{e}"));
        let cond = Conditions::parse(
            format!(
                r#"{{"version":1,"condition":{{"address_is":"{}"}}}}"#,
                address_of(user.verifying_key()).to_checksum()
            )
            .as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let plain = b"soaked".to_vec();
        let mut file = Vec::new();
        let digest: [u8; 32] = Sha256::digest(&plain).into();
        keynet_encryption::encrypt(&bls, &cond, &digest, &mut &plain[..], &mut file)
            .unwrap_or_else(|e| panic!("{e}"));
        let file = Arc::new(file);
        let addrs: Vec<SocketAddr> = (0..n)
            .filter_map(|i| cluster.endpoint(i).parse().ok())
            .collect();

        let mut load = JoinSet::new();
        // Signers, each with its own kept-alive client.
        for w in 0..2u8 {
            let (net, user, root, shared) = (
                cluster.network(),
                user.clone(),
                root.clone(),
                shared.clone(),
            );
            load.spawn(async move {
                let key = KeyRef::new(address_of(user.verifying_key()), format!("soak-{w}"))
                    .unwrap_or_else(|e| panic!("{e}"));
                let public =
                    derive_public_package(&root, &key.key_id()).unwrap_or_else(|e| panic!("{e}"));
                let pk = public
                    .verifying_key()
                    .serialize()
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut i = 0u64;
                while !shared.stop.load(Ordering::Relaxed) {
                    i += 1;
                    let msg: [u8; 32] = Sha256::digest(format!("{w}/{i}")).into();
                    let started = Instant::now();
                    let r = net.sign(&user, &key, msg, None).await;
                    let took = started.elapsed();
                    match r {
                        Ok(s) => {
                            let sig = hex::decode(&s.signature).unwrap_or_default();
                            if s.public_key != hex::encode(&pk)
                                || keynet_threshold::schnorr::verify(&pk, &msg, &sig).is_err()
                            {
                                shared.wrong(format!("signature {w}/{i} does not verify"));
                            }
                            shared.record("sign", took, Ok(()));
                        }
                        Err(e) => {
                            shared.record("sign", took, Err(reason(&e)));
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            });
        }
        // A decrypter.
        {
            let (net, user, file, plain, shared) = (
                cluster.network(),
                user.clone(),
                file.clone(),
                plain.clone(),
                shared.clone(),
            );
            load.spawn(async move {
                while !shared.stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let mut input = &file[..];
                    let r = async {
                        let header = Header::read(&mut input)?;
                        let mut out = Vec::new();
                        net.decrypt(&user, &header, &[], &mut input, &mut out)
                            .await?;
                        Ok::<_, ClientError>(out)
                    }
                    .await;
                    let took = started.elapsed();
                    match r {
                        Ok(out) => {
                            if out != plain {
                                shared.wrong("a decryption gave other bytes".into());
                            }
                            shared.record("decrypt", took, Ok(()));
                        }
                        Err(e) => {
                            shared.record("decrypt", took, Err(reason(&e)));
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            });
        }
        // Permission changes by an owner of their own (a user's unexpired authorisations
        // are capped per node), over 16 keys with growing sequence numbers; each node's
        // highest acknowledged number per key is remembered.
        let owner =
            k256::ecdsa::SigningKey::from_slice(&[77; 32]).unwrap_or_else(|e| panic!("{e}"));
        let acks: Arc<Mutex<BTreeMap<(String, String), u64>>> = Arc::default();
        {
            let (net, shared, acks, user) = (
                cluster.network(),
                shared.clone(),
                acks.clone(),
                owner.clone(),
            );
            load.spawn(async move {
                let mut i = 0u64;
                while !shared.stop.load(Ordering::Relaxed) {
                    let (name, seq) = (format!("perm-{}", i % 16), i / 16 + 1);
                    i += 1;
                    let started = Instant::now();
                    let r = net.set_permissions(&user, &name, vec![], seq).await;
                    let took = started.elapsed();
                    match r {
                        Ok(answers) => {
                            let mut kept = 0;
                            let mut why = None;
                            for (e, a) in &answers {
                                match a {
                                    Ok(()) => {
                                        kept += 1;
                                        let mut acks =
                                            acks.lock().unwrap_or_else(|p| p.into_inner());
                                        let at = acks.entry((e.clone(), name.clone())).or_default();
                                        *at = (*at).max(seq);
                                    }
                                    Err(m) => {
                                        why.get_or_insert_with(|| {
                                            m.split(':').take(2).collect::<Vec<_>>().join(":")
                                        });
                                    }
                                }
                            }
                            let outcome = if kept > 0 {
                                Ok(())
                            } else {
                                Err(format!("no node kept it ({})", why.unwrap_or_default()))
                            };
                            shared.record("permissions", took, outcome);
                        }
                        Err(e) => shared.record("permissions", took, Err(reason(&e))),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        // Fresh evidence: a new client verifying every node.
        {
            let (shared, dir) = (shared.clone(), cluster.path("network.toml"));
            load.spawn(async move {
                while !shared.stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let Ok(f) = keynet::network::NetworkFile::load(&dir) else {
                        continue;
                    };
                    let Ok(net) = Network::open(&f) else { continue };
                    let st = net.status().await;
                    let took = started.elapsed();
                    let verified = st.iter().filter(|s| s.verified).count();
                    let outcome = if verified > 0 {
                        Ok(())
                    } else {
                        Err("no node verified".to_owned())
                    };
                    shared.record("attest", took, outcome);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            });
        }
        load.spawn(idle_and_slow(addrs, shared.clone()));

        // The faults, in turns until the time is up.
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut turn = 0usize;
        let mut disk_full = false;
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_secs(5)).await;
            turn += 1;
            if turn % 2 == 1 {
                let victim = killable[(turn / 2) % killable.len()];
                *shared.phase.lock().unwrap_or_else(|p| p.into_inner()) = "node killed";
                cluster.stop_node(victim); // SIGKILL
                tokio::time::sleep(Duration::from_secs(3)).await;
                cluster.start_node(victim);
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let st = cluster.network().status().await;
                    if st[victim].error.is_none() {
                        restarts += 1;
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "node {victim} did not come back: {:?}\n{}",
                        st[victim],
                        cluster.log(victim)
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                *shared.phase.lock().unwrap_or_else(|p| p.into_inner()) = "steady";
            } else if let Some(d) = &small {
                disk_full = !disk_full;
                let done = fill(&cluster, d, disk_full).is_some();
                *shared.phase.lock().unwrap_or_else(|p| p.into_inner()) = if disk_full && done {
                    "disk full"
                } else {
                    "steady"
                };
            }
        }
        if let Some(d) = &small {
            fill(&cluster, d, false);
        }
        shared.stop.store(true, Ordering::Relaxed);
        // The full-disk node seals its replay horizon again within a second of room.
        tokio::time::sleep(Duration::from_secs(3)).await;
        load.abort_all();
        while load.join_next().await.is_some() {}
        acknowledged = acks.lock().unwrap_or_else(|p| p.into_inner()).clone();

        // Lost state: every node serves the keys it began with, and every permission change
        // a node acknowledged is still in force there (the same change again is stale).
        let (after, statuses) = cluster
            .network()
            .public_keys()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut lost = Vec::new();
        if after != root {
            lost.push("the group key changed".to_owned());
        }
        for s in cluster.network().status().await {
            if s.group_key.as_deref() != statuses.first().and_then(|f| f.group_key.as_deref()) {
                lost.push(format!("{} serves {:?}", s.endpoint, s.group_key));
            }
        }
        let net = cluster.network();
        let mut checked = 0;
        let keys: std::collections::BTreeSet<&String> =
            acknowledged.keys().map(|(_, k)| k).collect();
        for name in keys {
            // The highest number any node acknowledged, sent again: every node that
            // acknowledged it must answer that it holds it already (or a later one).
            let top = acknowledged
                .iter()
                .filter(|((_, k), _)| k == name)
                .map(|(_, s)| *s)
                .max()
                .unwrap_or(1);
            let answers = net
                .set_permissions(&owner, name, vec![], top)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            for (e, a) in answers {
                let Some(seq) = acknowledged.get(&(e.clone(), name.clone())) else {
                    continue;
                };
                checked += 1;
                let holds = match &a {
                    Err(m) => m.contains("stale_seq"),
                    // Accepted as new: it held less than `top`, which is only right if it
                    // never acknowledged `top` itself.
                    Ok(()) => *seq < top,
                };
                if !holds {
                    lost.push(format!("{e} forgot {name} seq {seq} (answered {a:?})"));
                }
            }
        }

        let t = shared.tally.lock().unwrap_or_else(|p| p.into_inner());
        println!("\nsoak: {n} nodes, {seconds} s, {restarts} restarts survived (SIGKILL)");
        println!(
            "full disk: {}; clock 20 s ahead: node {}",
            if small.is_some() {
                format!("node {n} (32 MiB tmpfs, filled and emptied in turns)")
            } else {
                "SKIPPED (no mount namespaces here)".into()
            },
            n - 1
        );
        println!("{:<12} {:>9} {:>9}", "operation", "attempted", "succeeded");
        for (op, a) in &t.attempted {
            println!("{op:<12} {a:>9} {:>9}", t.succeeded.get(op).unwrap_or(&0));
        }
        println!("failed, by reason:");
        for ((op, why), c) in &t.failed {
            println!("  {op:<12} {c:>6}  {why}");
        }
        println!("latency p50 / p99, ms, by phase:");
        for ((op, phase), v) in &t.latency {
            let (p50, p99) = percentiles(v.clone());
            println!(
                "  {op:<12} {phase:<12} {p50:>6} / {p99:>6}  ({} ops)",
                v.len()
            );
        }
        println!("wrong results: {}", t.wrong.len());
        println!(
            "state lost: {} (group keys on every node; {checked} (node, key) permission \
             states checked against the highest change each acknowledged)",
            lost.len()
        );
        assert!(t.wrong.is_empty(), "wrong results: {:?}", t.wrong);
        assert!(lost.is_empty(), "lost: {lost:?}");
        for op in ["sign", "decrypt", "permissions", "attest"] {
            assert!(
                t.succeeded.get(op).copied().unwrap_or(0) > 0,
                "no {op} succeeded"
            );
        }
        assert!(restarts > 0);
    });
}
