//! Sealed state: round trip, restart, tampering, foreign keys, renamed files, torn writes.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

use keynet_store::{KeySource, SealError, SealingKey, Store, StoreError, seal, unseal};

fn key(b: u8) -> SealingKey {
    SealingKey::new([b; 32], KeySource::Simulated)
}

fn sealed_err(r: Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError>) -> SealError {
    match r {
        Err(StoreError::Sealed { source, .. }) => source,
        other => panic!("expected a sealed-file error, got {other:?}"),
    }
}

#[test]
fn values_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), key(1)).unwrap();
    assert!(s.read("shares").unwrap().is_none());
    s.write("shares", b"share bytes v1").unwrap();
    s.write("shares", b"share bytes v2").unwrap();
    drop(s);
    let s = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(
        s.read("shares").unwrap().unwrap().as_slice(),
        b"share bytes v2"
    );
    // The plaintext is not on disk.
    let raw = std::fs::read(dir.path().join("shares")).unwrap();
    assert!(!raw.windows(5).any(|w| w == b"share"));
}

#[test]
fn every_modified_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), key(1)).unwrap();
    s.write("id", b"identity").unwrap();
    let good = std::fs::read(dir.path().join("id")).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        std::fs::write(dir.path().join("id"), &bad).unwrap();
        assert!(s.read("id").is_err(), "flip at byte {i} accepted");
    }
    std::fs::write(dir.path().join("id"), &good[..good.len() - 1]).unwrap();
    assert_eq!(sealed_err(s.read("id")), SealError::Authentication);
    std::fs::write(dir.path().join("id"), b"short").unwrap();
    assert_eq!(sealed_err(s.read("id")), SealError::Format("too short"));
}

#[test]
fn another_key_another_source_or_another_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path(), key(1))
        .unwrap()
        .write("a", b"x")
        .unwrap();
    let other = Store::open(dir.path(), key(2)).unwrap();
    assert_eq!(sealed_err(other.read("a")), SealError::Authentication);
    let snp = Store::open(dir.path(), SealingKey::new([1; 32], KeySource::SnpDerived)).unwrap();
    assert!(matches!(
        sealed_err(snp.read("a")),
        SealError::KeySource {
            expected: KeySource::SnpDerived,
            found: KeySource::Simulated
        }
    ));
    // Renaming a sealed file into another's place is detected (the name is authenticated).
    std::fs::copy(dir.path().join("a"), dir.path().join("b")).unwrap();
    let s = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(sealed_err(s.read("b")), SealError::Authentication);
    // Same for the in-memory API.
    let k = key(3);
    let blob = seal(&k, "n", b"v").unwrap();
    assert_eq!(unseal(&k, "n", &blob).unwrap().as_slice(), b"v");
    assert_eq!(unseal(&k, "m", &blob), Err(SealError::Authentication));
}

#[test]
fn a_crash_before_the_rename_leaves_the_old_value() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), key(1)).unwrap();
    s.write("shares", b"old").unwrap();
    // What a crash mid-write leaves: a partial temporary file beside the old one.
    let partial = seal(&key(1), "shares", b"new").unwrap();
    std::fs::write(dir.path().join(".tmp-shares-1-0"), &partial[..20]).unwrap();
    drop(s);
    let s = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(s.read("shares").unwrap().unwrap().as_slice(), b"old");
    // The leftover is cleaned at open.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["shares"]);
}

#[test]
fn names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), key(1)).unwrap();
    for n in ["", "../x", "a/b", ".tmp-x", &"x".repeat(65)] {
        assert!(matches!(s.write(n, b"v"), Err(StoreError::Name(_))), "{n}");
    }
}
