//! Request digests and ids, pinned to the values the previous request code computed
//! (commit a9d691b, before requests were checked while parsed): a client and a node of
//! either side of that change agree on what a user authorised. The requests are built the
//! way a new client builds them and parsed from the JSON an old client sent (upper-case
//! hex included), and both must give the pinned bytes.

use k256::ecdsa::SigningKey;
use keynet_eth::Address;
use keynet_protocol::IdentityKey;
use keynet_protocol::auth::SignedAuth;
use keynet_protocol::request::{
    Authorised, BlsSignRequest, DecryptRequest, KeyRef, PermissionsRequest, PresentedSignature,
    SignRequest, UserRequest,
};
use serde_json::json;

const KEY_ID: &str = "aa1eb383915ae7b590316f09218cfa9fd7d517f2ef2b1205097c0b3720f7ecdd";
const SIGN: &str = "b83f9d43c69422abd0339b743bb53259538dabaf9211608566c0b4d5a6d6ef6d";
const SIGN_ID: &str = "acd22fe0b3a4413388b1169127d8f84e822bb1cf8f34d137f0667d164f92e474";
const PERMISSIONS: &str = "6ed9d1bdae806c59f0d452e7944af370e283b248b2467520964485d43c8920e1";
const DECRYPT: &str = "ed2c85566e7eae38021bbe4daf00aa11f4815eba16b765165e9e48d56b19bc15";
const BLS_SIGN: &str = "6d2030da787501d70a222b7a7de7bc383ba9e563e54297574805cab6000bbcf2";
const CONDITIONS: &str = r#"{"version":1,"condition":{"time_after":1}}"#;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn id(seed: u8) -> IdentityKey {
    IdentityKey::from_verifying_key(ok(SigningKey::from_bytes(&[seed; 32].into())).verifying_key())
}

fn key() -> KeyRef {
    ok(KeyRef::new(Address::from_bytes([0x11; 20]), "wallet-1"))
}

#[test]
fn sign_and_permissions_digests_are_unchanged() {
    assert_eq!(hex::encode(key().key_id()), KEY_ID);
    let sign = ok(SignRequest::new(
        "keynet-dev",
        key(),
        [0xab; 32],
        vec![id(3), id(1), id(2)],
    ));
    assert_eq!(hex::encode(sign.digest()), SIGN);
    let auth = SignedAuth {
        message: "keynet.local wants you to sign in".into(),
        signature: format!("0x{}", "5a".repeat(65)),
    };
    let authorised = Authorised {
        request: sign,
        auth,
    };
    assert_eq!(hex::encode(authorised.id()), SIGN_ID);
    // The very bytes an old client sent.
    let old = json!({"request":{"network":"keynet-dev","key":{"owner":"0x1111111111111111111111111111111111111111","name":"wallet-1"},"message":format!("0x{}", "ab".repeat(32)),"participants":[id(3), id(1), id(2)]},"auth":{"message":"keynet.local wants you to sign in","signature":format!("0x{}", "5a".repeat(65))}});
    let parsed: Authorised<SignRequest> = ok(serde_json::from_value(old));
    assert_eq!(hex::encode(parsed.id()), SIGN_ID);
    assert_eq!(parsed, authorised);

    let perm = ok(PermissionsRequest::new(
        "keynet-dev",
        key(),
        7,
        vec![
            Address::from_bytes([0x33; 20]),
            Address::from_bytes([0x22; 20]),
        ],
    ));
    assert_eq!(hex::encode(perm.digest()), PERMISSIONS);
}

#[test]
fn conditional_digests_are_unchanged_whatever_the_hex_case() {
    let presented = ok(PresentedSignature::new(
        Address::from_bytes([0x44; 20]),
        "I allow it",
        [0x1b; 65],
    ));
    let built = ok(DecryptRequest::new(
        "keynet-dev",
        id(2),
        CONDITIONS,
        [0xcd; 32],
        vec![presented],
    ));
    assert_eq!(hex::encode(built.digest()), DECRYPT);
    let old: DecryptRequest = ok(serde_json::from_value(json!({
        "network": "keynet-dev", "node": id(2), "conditions": CONDITIONS,
        "plaintext_sha256": format!("0x{}", "cd".repeat(32)),
        "presented": [{"address": "0x4444444444444444444444444444444444444444",
                       "statement": "I allow it", "signature": format!("0x{}", "1B".repeat(65))}],
    })));
    assert_eq!(hex::encode(old.digest()), DECRYPT);

    let built = ok(BlsSignRequest::new(
        "keynet-dev",
        id(2),
        CONDITIONS,
        b"Hello".to_vec(),
        vec![],
    ));
    assert_eq!(hex::encode(built.digest()), BLS_SIGN);
    let old: BlsSignRequest = ok(serde_json::from_value(json!({
        "network": "keynet-dev", "node": id(2), "conditions": CONDITIONS,
        "message": "48656C6C6F",
    })));
    assert_eq!(hex::encode(old.digest()), BLS_SIGN);
}
