//! Shared test support: deterministic keys and registries, and the eth-account reference
//! (out/protocol-venv, installed by protocol/tests/reference/setup.sh).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k256::ecdsa::SigningKey;
use keynet_eth::address_of;
use keynet_eth::keccak256;
use keynet_protocol::{IdentityKey, NodeEntry, Registry, Stake};
use serde_json::Value;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A deterministic secp256k1 key: keccak256 of the seed, rehashed in the (never seen)
/// case that it is not a valid scalar.
pub fn key(seed: u64) -> SigningKey {
    let mut bytes: [u8; 32] = keccak256(&seed.to_be_bytes());
    loop {
        if let Ok(k) = SigningKey::from_bytes(&bytes.into()) {
            return k;
        }
        bytes = keccak256(&bytes);
    }
}

/// The private key as eth-account takes it.
pub fn key_hex(key: &SigningKey) -> String {
    format!("0x{}", hex::encode(key.to_bytes()))
}

pub fn identity(seed: u64) -> IdentityKey {
    IdentityKey::from_verifying_key(key(seed).verifying_key())
}

/// Node `i` of the sample registries: identity key seed 1000 + i, staker seed 2000 + i.
pub fn node(i: u64, stake_wei: u128) -> NodeEntry {
    NodeEntry {
        identity_key: identity(1000 + i),
        staker: address_of(key(2000 + i).verifying_key()),
        stake: Stake::from_wei(stake_wei),
        endpoint: format!("node{i}.keynet.example:7{i:03}"),
    }
}

/// A valid registry of `n` nodes, all staked 32 ether, minimum 16 ether.
pub fn sample(n: u64) -> Registry {
    Registry {
        network_id: "keynet-testnet".into(),
        epoch: 42,
        threshold: 0,
        min_stake: Stake::from_wei(16 * ETHER),
        nodes: (0..n).map(|i| node(i, 32 * ETHER)).collect(),
    }
}

pub const ETHER: u128 = 1_000_000_000_000_000_000;

/// The authority key of the tests.
pub fn authority_key() -> SigningKey {
    key(7)
}

/// Runs protocol/tests/reference/ethref.py under eth-account with these requests and
/// returns its answers, one per request. Fails the test if the reference is not installed.
pub fn eth_account(requests: &[Value]) -> Vec<Value> {
    let python = root().join("out/protocol-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: the eth-account reference is not installed; run \
         protocol/tests/reference/setup.sh (make test does)",
        python.display()
    );
    let script = root().join("protocol/tests/reference/ethref.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let input = Value::Array(requests.to_vec()).to_string();
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("writing to ethref.py: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for ethref.py: {e}"));
    assert!(
        out.status.success(),
        "ethref.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ethref.py answered with invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(answers.len(), requests.len(), "one answer per request");
    answers
}

/// A string field of a reference answer; fails the test on an error answer.
pub fn field<'a>(answer: &'a Value, name: &str) -> &'a str {
    answer[name]
        .as_str()
        .unwrap_or_else(|| panic!("eth-account answer lacks {name:?}: {answer}"))
}
