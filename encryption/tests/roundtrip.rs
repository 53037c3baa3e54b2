//! Round trips through a real threshold key (joint-Feldman DKG, t of n BLS shares combined),
//! and every kind of alteration refused.

use blsful::{PublicKey, Signature, SignatureSchemes};
use keynet_conditions::Conditions;
use keynet_encryption::{Bls, CHUNK, DecryptError, Header, decrypt, encrypt, identity};
use keynet_threshold::bls_dkg::{BlsKey, run_local};
use sha2::{Digest, Sha256};

fn conditions(t: u64) -> Conditions {
    Conditions::parse(format!(r#"{{"version":1,"condition":{{"time_before":{t}}}}}"#).as_bytes())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn network() -> Vec<BlsKey> {
    run_local(4, 3).unwrap_or_else(|e| panic!("{e}"))
}

/// The network's signature over `id` from the shares of `who` (1-based), verified.
fn signature(keys: &[BlsKey], who: &[usize], id: &[u8; 32]) -> Signature<Bls> {
    let shares: Vec<_> = who
        .iter()
        .map(|i| {
            keys[i - 1]
                .share
                .sign(SignatureSchemes::Basic, id)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    Signature::from_shares(&shares).unwrap_or_else(|e| panic!("{e}"))
}

fn seal(pk: &PublicKey<Bls>, c: &Conditions, plain: &[u8]) -> Vec<u8> {
    let digest: [u8; 32] = Sha256::digest(plain).into();
    let mut out = Vec::new();
    encrypt(pk, c, &digest, &mut &plain[..], &mut out).unwrap_or_else(|e| panic!("{e}"));
    out
}

fn open(keys: &[BlsKey], file: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let mut input = file;
    let header = Header::read(&mut input)?;
    let sig = signature(keys, &[1, 3, 4], &header.identity());
    let mut out = Vec::new();
    decrypt(&header, &sig, &mut input, &mut out)?;
    Ok(out)
}

#[test]
fn round_trips_at_every_chunk_boundary() {
    let keys = network();
    let pk = keys[0].public;
    let c = conditions(2_000_000_000);
    let chunk = CHUNK as usize;
    for len in [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 5] {
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let file = seal(&pk, &c, &plain);
        assert_eq!(
            open(&keys, &file).unwrap_or_else(|e| panic!("{len}: {e}")),
            plain
        );
        // Any t shares open it.
        let mut input = file.as_slice();
        let header = Header::read(&mut input).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            header.identity(),
            identity(&c, &Sha256::digest(&plain).into())
        );
        let sig = signature(&keys, &[2, 3, 4], &header.identity());
        sig.verify(&pk, header.identity())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        decrypt(&header, &sig, &mut input, &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, plain);
    }
}

#[test]
fn alterations_fail_to_decrypt() {
    let keys = network();
    let pk = keys[0].public;
    let c = conditions(2_000_000_000);
    let plain = vec![42u8; 3 * CHUNK as usize + 100];
    let file = seal(&pk, &c, &plain);
    let header_len = {
        let mut input = file.as_slice();
        Header::read(&mut input).unwrap_or_else(|e| panic!("{e}"));
        file.len() - input.len()
    };

    // Too few shares: blsful combines them anyway; the result opens nothing.
    {
        let mut input = file.as_slice();
        let header = Header::read(&mut input).unwrap_or_else(|e| panic!("{e}"));
        let weak = signature(&keys, &[1, 2], &header.identity());
        assert!(weak.verify(&pk, header.identity()).is_err());
        let r = decrypt(&header, &weak, &mut input, &mut Vec::new());
        assert!(matches!(r, Err(DecryptError::Key)), "{r:?}");
    }

    // Conditions altered in transit (same length, still valid): the header no longer
    // authenticates the chunks, and a signature over the altered identity opens nothing.
    let mut altered = file.clone();
    let at = altered
        .windows(10)
        .position(|w| w == b"2000000000")
        .unwrap_or_else(|| panic!("conditions not found"));
    altered[at] = b'3';
    let r = open(&keys, &altered);
    assert!(matches!(r, Err(DecryptError::Key)), "{r:?}");
    {
        let mut input = altered.as_slice();
        let header = Header::read(&mut input).unwrap_or_else(|e| panic!("{e}"));
        let original = identity(&c, &Sha256::digest(&plain).into());
        let sig = signature(&keys, &[1, 2, 3], &original);
        let r = decrypt(&header, &sig, &mut input, &mut Vec::new());
        assert!(matches!(r, Err(DecryptError::Chunk(0))), "{r:?}");
    }

    // A flipped byte in any chunk, a dropped, reordered or truncated chunk, appended bytes.
    let rec = CHUNK as usize + 16;
    let body = &file[header_len..];
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    for i in [0usize, rec + 5, 3 * rec + 3] {
        let mut f = file.clone();
        f[header_len + i] ^= 1;
        cases.push(("flipped", f));
    }
    cases.push(("dropped", [&file[..header_len], &body[rec..]].concat()));
    cases.push((
        "reordered",
        [
            &file[..header_len],
            &body[rec..2 * rec],
            &body[..rec],
            &body[2 * rec..],
        ]
        .concat(),
    ));
    cases.push((
        "truncated to full chunks",
        file[..header_len + 3 * rec].to_vec(),
    ));
    cases.push(("truncated tail", file[..file.len() - 1].to_vec()));
    cases.push(("appended", [&file[..], &[0u8; 17][..]].concat()));
    for (what, f) in cases {
        let r = open(&keys, &f);
        assert!(matches!(r, Err(DecryptError::Chunk(_))), "{what}: {r:?}");
    }

    // Another file's header: its identity differs, the data key does not open.
    let other = seal(&pk, &conditions(2_000_000_001), &plain);
    let mut input = other.as_slice();
    let other_header = Header::read(&mut input).unwrap_or_else(|e| panic!("{e}"));
    let mut spliced = file[..header_len].to_vec();
    spliced.extend_from_slice(input);
    let mut s = spliced.as_slice();
    let h = Header::read(&mut s).unwrap_or_else(|e| panic!("{e}"));
    let sig = signature(&keys, &[1, 2, 3], &other_header.identity());
    let r = decrypt(&h, &sig, &mut s, &mut Vec::new());
    assert!(matches!(r, Err(DecryptError::Key)), "{r:?}");
}

#[test]
fn malformed_headers_are_errors() {
    let keys = network();
    let file = seal(&keys[0].public, &conditions(5), b"hello");
    for cut in [0, 5, 11, 12, 15, 40, 100] {
        let r = Header::read(&mut &file[..cut.min(file.len())]);
        assert!(matches!(r, Err(DecryptError::Header(_))), "{cut}: {r:?}");
    }
    let mut v2 = file.clone();
    v2[11] = 2;
    assert!(
        matches!(Header::read(&mut v2.as_slice()), Err(DecryptError::Header(m)) if m.contains("version"))
    );
    let mut huge = file.clone();
    huge[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(Header::read(&mut huge.as_slice()).is_err());
}

#[test]
fn the_same_conditions_written_differently_give_one_identity_and_any_change_another() {
    let a = r#"{"version":1,"condition":{"all":[{"time_before":2000000000},{"address_in":["0x52908400098527886E0F7030069857D2E4169EE7","0x8617E340B3D01FA5F11F306F4090FD50E238070D"]}]}}"#;
    let b = r#"{ "condition" : { "all" : [ { "address_in" : [ "0x8617e340b3d01fa5f11f306f4090fd50e238070d",
        "0x52908400098527886e0f7030069857d2e4169ee7" ] },
        { "time_before" : 2000000000 } ] }, "version" : 1 }"#;
    let parse = |s: &str| Conditions::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let h = [9u8; 32];
    assert_eq!(identity(&parse(a), &h), identity(&parse(b), &h));
    for changed in [
        a.replace("2000000000", "2000000001"),
        a.replace("time_before", "time_after"),
        a.replace("\"all\"", "\"any\""),
        a.replace(
            "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
            "0x8617E340B3D01FA5F11F306F4090FD50E238070C",
        ),
    ] {
        let c = match Conditions::parse(changed.as_bytes()) {
            Ok(c) => c,
            // A checksum broken by the edit is refused, which also changes nothing silently.
            Err(e) => {
                assert!(e.to_string().contains("address"), "{e}");
                continue;
            }
        };
        assert_ne!(identity(&c, &h), identity(&parse(a), &h), "{changed}");
    }
    let mut other = h;
    other[0] ^= 1;
    assert_ne!(identity(&parse(a), &h), identity(&parse(a), &other));
}

#[test]
fn conditions_too_large_for_a_request_are_refused_at_encryption() {
    // Two lists of 1024 addresses: valid conditions, but over the 64 KiB nodes accept.
    let list = |seed: u8| -> String {
        (0..1024u32)
            .map(|i| {
                let mut a = [seed; 20];
                a[..4].copy_from_slice(&i.to_be_bytes());
                format!("\"0x{}\"", hex_lower(&a))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let json = format!(
        r#"{{"version":1,"condition":{{"any":[{{"address_in":[{}]}},{{"address_in":[{}]}}]}}}}"#,
        list(1),
        list(2)
    );
    let c = Conditions::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.canonical().len() > keynet_conditions::MAX_DOCUMENT);
    let keys = network();
    let mut out = Vec::new();
    let err = encrypt(&keys[0].public, &c, &[0; 32], &mut &b""[..], &mut out);
    assert!(
        matches!(
            err,
            Err(keynet_encryption::EncryptError::ConditionsTooLarge(_))
        ),
        "{err:?}"
    );
    assert!(out.is_empty(), "nothing written");
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
