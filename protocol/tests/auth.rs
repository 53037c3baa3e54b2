//! User authorisations signed by eth-account (the reference wallet library, installed by
//! protocol/tests/reference/setup.sh) and by us, checked by a node's AuthVerifier: every
//! field is enforced, replays and forgeries refused, and the parser is strict.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod support;

use keynet_eth::{address_of, eip191_sign};
use keynet_protocol::auth::{AuthError, AuthMessage, AuthVerifier, SignedAuth, parse_utc};
use serde_json::json;

const NOW: u64 = 1_795_231_800; // 2026-11-21T03:30:00Z

fn message(seed: u64, nonce: &str, digest: [u8; 32]) -> AuthMessage {
    AuthMessage {
        domain: "keynet.example".into(),
        address: address_of(support::key(seed).verifying_key()),
        request_digest: digest,
        network: "keynet-dev".into(),
        nonce: nonce.into(),
        issued_at: NOW - 10,
        expires_at: NOW + 290,
    }
}

/// Signed by eth-account's `Account.sign_message(encode_defunct(text=...))`.
fn wallet_signed(seed: u64, m: &AuthMessage) -> SignedAuth {
    let text = m.to_text();
    let answers = support::eth_account(&[json!({
        "op": "sign_text", "text": text, "key": support::key_hex(&support::key(seed))
    })]);
    SignedAuth {
        message: text,
        signature: support::field(&answers[0], "signature").to_owned(),
    }
}

fn verifier() -> AuthVerifier {
    AuthVerifier::new("keynet.example", "keynet-dev", 600, 30)
}

#[test]
fn a_wallet_signed_auth_is_accepted_once() {
    let v = verifier();
    let m = message(1, "n0nce0001", [7; 32]);
    let auth = wallet_signed(1, &m);
    assert_eq!(v.verify(&auth, &[7; 32], NOW).unwrap(), m.address);
    assert!(matches!(
        v.verify(&auth, &[7; 32], NOW + 1),
        Err(AuthError::Replay { .. })
    ));
    // Another verifier (another node) has its own record: each node checks for itself.
    assert!(verifier().verify(&auth, &[7; 32], NOW).is_ok());
}

#[test]
fn our_signature_is_what_a_wallet_makes() {
    let m = message(2, "abcdefgh12", [1; 32]);
    let ours = eip191_sign(m.to_text().as_bytes(), &support::key(2)).unwrap();
    assert_eq!(
        format!("0x{}", hex::encode(ours)),
        wallet_signed(2, &m).signature
    );
}

#[test]
fn every_field_is_checked() {
    let digest = [9; 32];
    let check = |m: AuthMessage, seed: u64, now: u64| {
        verifier().verify(&wallet_signed(seed, &m), &digest, now)
    };

    let mut m = message(3, "nonce0003", digest);
    m.domain = "evil.example".into();
    assert!(matches!(check(m, 3, NOW), Err(AuthError::Domain { .. })));

    let mut m = message(3, "nonce0004", digest);
    m.network = "other-net".into();
    assert!(matches!(check(m, 3, NOW), Err(AuthError::Network { .. })));

    let m = message(3, "nonce0005", [8; 32]);
    assert!(matches!(check(m, 3, NOW), Err(AuthError::Digest { .. })));

    let m = message(3, "nonce0006", digest);
    assert!(matches!(
        check(m.clone(), 3, m.expires_at),
        Err(AuthError::Expired { .. })
    ));
    assert!(matches!(
        check(m, 3, NOW - 100),
        Err(AuthError::NotYetValid { .. })
    ));

    let mut m = message(3, "nonce0007", digest);
    m.expires_at = m.issued_at + 3600;
    assert!(matches!(
        check(m, 3, NOW),
        Err(AuthError::Lifetime {
            seconds: 3600,
            max: 600
        })
    ));

    // Signed by key 4, claiming to be key 3's address.
    let m = message(3, "nonce0008", digest);
    match check(m.clone(), 4, NOW) {
        Err(AuthError::Signer { claimed, actual }) => {
            assert_eq!(claimed, m.address.to_checksum());
            assert_eq!(
                actual,
                address_of(support::key(4).verifying_key()).to_checksum()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_modified_message_or_signature_is_refused() {
    let v = verifier();
    let auth = wallet_signed(5, &message(5, "nonce0009", [2; 32]));
    let mut edited = auth.clone();
    edited.message = edited
        .message
        .replace("Nonce: nonce0009", "Nonce: nonce0010");
    assert!(matches!(
        v.verify(&edited, &[2; 32], NOW),
        Err(AuthError::Signer { .. })
    ));
    let mut bad = auth.clone();
    bad.signature.truncate(20);
    assert!(matches!(
        v.verify(&bad, &[2; 32], NOW),
        Err(AuthError::Signature(_))
    ));
}

#[test]
fn the_parser_is_strict_and_names_the_line() {
    let m = message(6, "nonce0011", [3; 32]);
    let text = m.to_text();
    let checksummed = m.address.to_checksum();
    assert_eq!(AuthMessage::parse(&text).unwrap().to_text(), text);
    let cases = [
        (
            text.replace("keynet.example wants", "Keynet.Example wants"),
            1,
            "domain",
        ),
        (
            text.replace(&checksummed, &checksummed.to_lowercase()),
            2,
            "address",
        ),
        (
            text.replace("Keynet request: 0x", "Keynet request: 0X"),
            4,
            "request digest",
        ),
        (text.replace("URI: keynet://", "URI: https://"), 6, "URI"),
        (text.replace("Version: 1", "Version: 2"), 7, "Version"),
        (text.replace("Nonce: nonce0011", "Nonce: short"), 9, "Nonce"),
        (
            text.replace(
                "Issued At: 2026-11-21T03:29:50Z",
                "Issued At: 2026-11-21 03:29:50",
            ),
            10,
            "Issued At",
        ),
        (format!("{text}\n"), 12, "message"),
    ];
    for (bad, line, field) in cases {
        let e = AuthMessage::parse(&bad).unwrap_err();
        assert_eq!((e.line, e.field), (line, field), "{e}");
    }
    // Expiration must follow issuance.
    let swapped = text.replace("2026-11-21T03:29:50Z", "2026-11-21T03:40:00Z");
    assert_eq!(
        AuthMessage::parse(&swapped).unwrap_err().field,
        "Expiration Time"
    );
    assert_eq!(parse_utc("2026-11-21T03:29:50Z"), Some(NOW - 10));
}
