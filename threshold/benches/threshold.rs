//! DKG and signing figures, in one process (no network, no TLS): DKG time for n = 4, 7, 10
//! and t-of-n signing latency p50/p99 and throughput, all nodes' work done by this thread
//! (commitments, shares, aggregation with cheater detection and the RFC 9591 check).
//! The end-to-end figures over attested TLS come with the node integration.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keynet_threshold::aggregate::aggregate;
use keynet_threshold::bls_dkg;
use keynet_threshold::dkg::{default_threshold, run_local};
use keynet_threshold::signing::{Event, Signer, VerifiedRequest};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "{:>3} {:>3} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "n", "t", "BLS DKG", "FROST DKG", "sign p50", "sign p99", "signings/s"
    );
    for n in [4u16, 7, 10] {
        let t = default_threshold(n);
        let start = Instant::now();
        bls_dkg::run_local(n, t)?;
        let bls = start.elapsed();
        let start = Instant::now();
        let keys = run_local(n, t)?;
        let dkg = start.elapsed();
        let public = keys[0].1.clone();
        let mut signers: BTreeMap<u16, Signer> = keys
            .iter()
            .enumerate()
            .map(|(i, (k, _))| {
                let p = u16::try_from(i + 1).unwrap_or(0);
                (p, Signer::new(p, n, k.clone(), Duration::from_secs(5)))
            })
            .collect();
        let participants: Vec<u16> = (1..=t).collect();
        let rounds = 200u32;
        let mut lat = Vec::new();
        let all = Instant::now();
        for r in 0..rounds {
            let s = Instant::now();
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&r.to_be_bytes());
            let req = VerifiedRequest {
                id,
                message: [7; 32],
                participants: participants.clone(),
            };
            let mut queue = Vec::new();
            let now = Instant::now();
            for p in &participants {
                if let Some(sg) = signers.get_mut(p) {
                    queue.extend(sg.begin(req.clone(), now)?.into_iter().map(|e| (*p, e)));
                }
            }
            let mut shares = BTreeMap::new();
            while let Some((from, e)) = queue.pop() {
                match e {
                    Event::Commitments {
                        id,
                        to,
                        commitments,
                    } => {
                        // Every participant has begun: pushes alone complete the exchange,
                        // and the answers (`mine`) are not needed.
                        if let Some(sg) = signers.get_mut(&to) {
                            queue.extend(
                                sg.on_commitments(from, id, *commitments)
                                    .events
                                    .into_iter()
                                    .map(|x| (to, x)),
                            );
                        }
                    }
                    Event::Share { share, package, .. } => {
                        shares.insert(from, (share, *package));
                    }
                    other => return Err(format!("{other:?}").into()),
                }
            }
            aggregate(&public, &shares)?;
            lat.push(s.elapsed());
        }
        let total = all.elapsed();
        lat.sort();
        println!(
            "{n:>3} {t:>3} {:>8.1}ms {:>8.1}ms {:>8.2}ms {:>8.2}ms {:>12.0}",
            bls.as_secs_f64() * 1e3,
            dkg.as_secs_f64() * 1e3,
            pct(&lat, 0.5).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
            f64::from(rounds) / total.as_secs_f64()
        );
    }
    Ok(())
}
