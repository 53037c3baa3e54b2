//! Encryption throughput for a 1 GiB stream, beside the floor: AES-256-GCM alone on the
//! same chunks (ring), and sha256 (the plaintext hash the identity needs, one more pass).
//! `cargo bench -p keynet-encryption --bench throughput` (`KEYNET_BENCH_MIB=N`, default 1024).

use std::io::Read;
use std::time::Instant;

use blsful::{PublicKey, SecretKey};
use keynet_conditions::Conditions;
use keynet_encryption::{Bls, CHUNK, encrypt};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// `left` bytes of a repeating pattern, without holding them in memory.
struct Pattern {
    left: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn main() {
    let mib: u64 = std::env::var("KEYNET_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let total = mib << 20;
    let sk = SecretKey::<Bls>::new();
    let pk = PublicKey::<Bls>::from(&sk);
    let c = Conditions::parse(br#"{"version":1,"condition":{"time_before":2000000000}}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let rate = |secs: f64| (total as f64 / (1 << 20) as f64) / secs;

    // The plaintext pass: reading the pattern and hashing it.
    let t0 = Instant::now();
    let mut h = Sha256::new();
    let mut r = Pattern { left: total };
    let mut buf = vec![0u8; CHUNK as usize];
    loop {
        let n = r.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let digest: [u8; 32] = h.finalize().into();
    let hash_s = t0.elapsed().as_secs_f64();

    // keynet-encryption: header, IBE of the data key, chunked AES-256-GCM.
    let t0 = Instant::now();
    encrypt(
        &pk,
        &c,
        &digest,
        &mut Pattern { left: total },
        &mut std::io::sink(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let enc_s = t0.elapsed().as_secs_f64();

    // The floor: the same reads and AES-256-GCM seals, nothing else.
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap_or_else(|_| panic!("key")),
    );
    let t0 = Instant::now();
    let mut r = Pattern { left: total };
    let mut sealed = Vec::with_capacity(CHUNK as usize + 16);
    let mut i: u64 = 0;
    loop {
        let n = r.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        sealed.clear();
        sealed.extend_from_slice(&buf[..n]);
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&i.to_be_bytes());
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from([0u8; 32]),
            &mut sealed,
        )
        .unwrap_or_else(|_| panic!("seal"));
        std::hint::black_box(&sealed);
        i += 1;
    }
    let aead_s = t0.elapsed().as_secs_f64();

    println!(
        "keynet-encryption, {mib} MiB stream, {} KiB chunks",
        CHUNK / 1024
    );
    println!("{:<38} {:>9} {:>10}", "", "seconds", "MiB/s");
    println!(
        "{:<38} {:>9.2} {:>10.0}",
        "plaintext sha256 pass",
        hash_s,
        rate(hash_s)
    );
    println!(
        "{:<38} {:>9.2} {:>10.0}",
        "encrypt (IBE key + chunked AES-GCM)",
        enc_s,
        rate(enc_s)
    );
    println!(
        "{:<38} {:>9.2} {:>10.0}",
        "floor: AES-256-GCM alone (ring)",
        aead_s,
        rate(aead_s)
    );
    println!("encrypt / floor: {:.2}x the time", enc_s / aead_s);
}
