//! Printing a verdict: a short table for people, or JSON.

use anyhow::Result;
use attestation_verifier::verdict::{Status, Verdict};

pub fn print_verdict(v: &Verdict, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
        return Ok(());
    }
    let product = v.product.map(|p| p.name()).unwrap_or("unknown product");
    let version = v.report["version"].as_u64().unwrap_or(0);
    println!(
        "{}  {product}, report v{version}{}",
        if v.accepted { "ACCEPTED" } else { "REJECTED" },
        if v.simulated {
            ", SIMULATED PLATFORM (not AMD hardware)"
        } else {
            ""
        }
    );
    for c in &v.checks {
        let s = match c.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            _ => "skip",
        };
        println!("  {s:<5} {:<26} {}", c.check, c.detail);
    }
    println!(
        "  measurement {}",
        v.report["measurement"].as_str().unwrap_or("")
    );
    Ok(())
}
