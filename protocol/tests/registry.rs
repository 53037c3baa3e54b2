//! The signed staking registry against data nobody here wrote: eth-account (the Python
//! reference signer, installed by protocol/tests/reference/setup.sh; the tests fail if it
//! is missing) and published EIP-55 / EIP-191 vectors. Then the refusals: tampering, wrong
//! authority, malformed documents, and the peer checks.

mod support;

use k256::Scalar;
use k256::ecdsa::SigningKey;
use k256::elliptic_curve::PrimeField;
use keynet_eth::{Address, address_of, eip191_hash};
use keynet_protocol::{
    IdentityKey, MAX_EPOCH, PeerRefusal, Registry, RegistryError, SignedRegistry, Stake, sign,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{ETHER, authority_key, eth_account, field, identity, key, key_hex, sample};

fn ok<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn authority() -> Address {
    address_of(authority_key().verifying_key())
}

fn signed(registry: Registry) -> SignedRegistry {
    ok(sign(registry, &authority_key()))
}

/// The registry file of `registry` signed by the test authority, as a JSON value to edit.
fn document(registry: Registry) -> Value {
    ok(serde_json::from_str(&signed(registry).to_json()))
}

fn verify(doc: &Value) -> Result<Registry, RegistryError> {
    SignedRegistry::verify(doc.to_string().as_bytes(), &authority())
}

fn verify_text(text: &str) -> Result<Registry, RegistryError> {
    SignedRegistry::verify(text.as_bytes(), &authority())
}

fn addr(text: &str) -> Address {
    ok(text.parse())
}

// ---------------------------------------------------------------------------------------
// Against eth-account

#[test]
fn our_signatures_verify_under_eth_account_and_match_its_own() {
    let mut cases = Vec::new();
    for (n, threshold, key_seed) in [(1, 0, 7), (4, 3, 8), (7, 0, 9), (3, 3, 10)] {
        let mut registry = sample(n);
        registry.threshold = threshold;
        registry.epoch = 1000 + n;
        let authority_key = key(key_seed);
        cases.push((ok(sign(registry, &authority_key)), authority_key));
    }
    let requests: Vec<Value> = cases
        .iter()
        .flat_map(|(s, k)| {
            let message = s.registry.canonical_message();
            let registry: Value = ok(serde_json::from_str(&message));
            [
                json!({"op": "recover", "text": message,
                       "signature": format!("0x{}", hex::encode(s.signature))}),
                json!({"op": "sign_registry", "registry": registry, "key": key_hex(k)}),
            ]
        })
        .collect();
    let answers = eth_account(&requests);
    for ((s, k), answer) in cases.iter().zip(answers.chunks(2)) {
        let ours = address_of(k.verifying_key());
        assert_eq!(
            field(&answer[0], "address"),
            ours.to_string(),
            "eth-account recovers our signer"
        );
        let theirs = &answer[1];
        assert_eq!(field(theirs, "address"), ours.to_string());
        assert_eq!(
            field(theirs, "message"),
            s.registry.canonical_message(),
            "eth-account side builds the same canonical message"
        );
        assert_eq!(
            field(theirs, "hash"),
            format!("0x{}", hex::encode(s.registry.signing_hash()))
        );
        // Both sides use RFC 6979 nonces and low s, so the signatures are identical.
        assert_eq!(
            field(theirs, "signature"),
            format!("0x{}", hex::encode(s.signature))
        );
    }
}

#[test]
fn eth_account_signatures_verify_under_ours() {
    let keys = [key(11), key(12), key(13)];
    let registries = [sample(1), sample(5), {
        let mut r = sample(6);
        r.threshold = 6;
        r.min_stake = Stake::from_wei(u128::MAX);
        r.nodes[2].stake = Stake::from_wei(0);
        r
    }];
    let requests: Vec<Value> = registries
        .iter()
        .zip(&keys)
        .map(|(r, k)| {
            let registry: Value = ok(serde_json::from_str(&r.canonical_message()));
            json!({"op": "sign_registry", "registry": registry, "key": key_hex(k)})
        })
        .collect();
    for ((registry, k), answer) in registries.iter().zip(&keys).zip(eth_account(&requests)) {
        let signer = addr(field(&answer, "address"));
        assert_eq!(signer, address_of(k.verifying_key()));
        // The file is not the signed bytes: a pretty-printed document with lowercase staker
        // addresses and keys in another order verifies all the same.
        let mut body: Value = ok(serde_json::from_str(&registry.canonical_message()));
        for node in body["nodes"].as_array_mut().into_iter().flatten() {
            let lower = node["staker"].as_str().map(str::to_lowercase);
            node["staker"] = json!(lower);
        }
        let text = format!(
            "{{\n  \"signature\": \"{}\",\n  \"registry\": {:#}\n}}\n",
            field(&answer, "signature"),
            body
        );
        assert_eq!(
            SignedRegistry::verify(text.as_bytes(), &signer).as_ref(),
            Ok(registry)
        );
    }
}

#[test]
fn address_of_matches_eth_account() {
    let keys: Vec<SigningKey> = (100..112).map(key).collect();
    let requests: Vec<Value> = keys
        .iter()
        .map(|k| json!({"op": "address", "key": key_hex(k)}))
        .collect();
    for (k, answer) in keys.iter().zip(eth_account(&requests)) {
        assert_eq!(
            field(&answer, "address"),
            address_of(k.verifying_key()).to_string()
        );
    }
}

#[test]
fn eip55_matches_eth_account() {
    let addresses: Vec<Address> = (0..24u64)
        .map(|i| {
            let h: [u8; 32] = eip191_hash(&i.to_be_bytes());
            let mut a = [0u8; 20];
            a.copy_from_slice(&h[..20]);
            Address::from_bytes(a)
        })
        .collect();
    let mut requests = Vec::new();
    for a in &addresses {
        let lower = format!("0x{}", hex::encode(a.as_bytes()));
        requests.push(json!({"op": "checksum", "address": lower}));
        requests.push(json!({"op": "checksum", "address": a.to_string()}));
    }
    let answers = eth_account(&requests);
    for (a, answer) in addresses.iter().zip(answers.chunks(2)) {
        assert_eq!(field(&answer[0], "address"), a.to_checksum());
        assert_eq!(
            answer[1]["valid_checksum"],
            json!(true),
            "{a} passes eth-account's check"
        );
        assert_eq!(addr(field(&answer[0], "address")), *a);
    }
}

#[test]
fn eip191_hash_matches_eth_account() {
    let texts = [
        String::new(),
        "a".into(),
        "123456789".into(),
        "1234567890".into(),
        "I\u{2665}SF \u{1F511}".into(),
        "x".repeat(1000),
        sample(7).canonical_message(),
    ];
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| json!({"op": "hash", "text": t}))
        .collect();
    for (t, answer) in texts.iter().zip(eth_account(&requests)) {
        assert_eq!(
            field(&answer, "hash"),
            format!("0x{}", hex::encode(eip191_hash(t.as_bytes()))),
            "{t:.40}"
        );
    }
}

#[test]
fn high_s_and_v_0_1_are_accepted_like_eth_account_does() {
    let s = signed(sample(3));
    let message = s.registry.canonical_message();
    let variants = [
        high_s(&s.signature),
        with_v(&s.signature, s.signature[64] - 27),
    ];
    for variant in &variants {
        let doc = SignedRegistry {
            registry: s.registry.clone(),
            signature: *variant,
        };
        assert_eq!(
            SignedRegistry::verify(doc.to_json().as_bytes(), &authority()).as_ref(),
            Ok(&s.registry)
        );
    }
    let requests: Vec<Value> = variants
        .iter()
        .map(|v| json!({"op": "recover", "text": message, "signature": format!("0x{}", hex::encode(v))}))
        .collect();
    for answer in eth_account(&requests) {
        assert_eq!(field(&answer, "address"), authority().to_string());
    }
}

/// The same signature with s replaced by n - s and the parity flipped.
fn high_s(signature: &[u8; 65]) -> [u8; 65] {
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..64]);
    let s = Option::<Scalar>::from(Scalar::from_repr(s_bytes.into()))
        .unwrap_or_else(|| panic!("s is a scalar"));
    let mut out = *signature;
    out[32..64].copy_from_slice(&(-s).to_bytes());
    out[64] = 55 - out[64]; // 27 <-> 28
    let parsed = ok(k256::ecdsa::Signature::from_slice(&out[..64]));
    assert!(
        parsed.normalize_s().is_some(),
        "the variant really has a high s"
    );
    out
}

fn with_v(signature: &[u8; 65], v: u8) -> [u8; 65] {
    let mut out = *signature;
    out[64] = v;
    out
}

// ---------------------------------------------------------------------------------------
// Signature refusals

#[test]
fn any_change_to_the_registry_breaks_the_signature() {
    let original = document(sample(4));
    let extra_node: Value = ok(serde_json::from_str::<Value>(
        &sample(5).canonical_message(),
    ))["nodes"][4]
        .clone();
    let other_staker = address_of(key(9999).verifying_key()).to_string();
    let other_key = identity(9999).to_string();
    type Change = Box<dyn Fn(&mut Value)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "stake",
            Box::new(|d| d["registry"]["nodes"][1]["stake"] = json!("32000000000000000001")),
        ),
        (
            "endpoint",
            Box::new(|d| d["registry"]["nodes"][2]["endpoint"] = json!("evil.example:7002")),
        ),
        ("epoch", Box::new(|d| d["registry"]["epoch"] = json!(43))),
        (
            "threshold",
            Box::new(|d| d["registry"]["threshold"] = json!(3)),
        ),
        (
            "min_stake",
            Box::new(|d| d["registry"]["min_stake"] = json!("1")),
        ),
        (
            "network_id",
            Box::new(|d| d["registry"]["network_id"] = json!("keynet-mainnet")),
        ),
        (
            "staker",
            Box::new(move |d| d["registry"]["nodes"][0]["staker"] = json!(other_staker)),
        ),
        (
            "identity_key",
            Box::new(move |d| d["registry"]["nodes"][0]["identity_key"] = json!(other_key)),
        ),
        (
            "node removed",
            Box::new(|d| {
                if let Some(nodes) = d["registry"]["nodes"].as_array_mut() {
                    nodes.pop();
                }
            }),
        ),
        (
            "node added",
            Box::new(move |d| {
                if let Some(nodes) = d["registry"]["nodes"].as_array_mut() {
                    nodes.push(extra_node.clone());
                }
            }),
        ),
        (
            "nodes reordered",
            Box::new(|d| {
                if let Some(nodes) = d["registry"]["nodes"].as_array_mut() {
                    nodes.swap(0, 1);
                }
            }),
        ),
    ];
    assert_eq!(verify(&original).map(|r| r.nodes.len()), Ok(4));
    for (what, change) in changes {
        let mut doc = original.clone();
        change(&mut doc);
        assert_ne!(doc, original, "{what}: the change changes something");
        match verify(&doc) {
            Err(RegistryError::WrongAuthority {
                expected,
                recovered,
            }) => {
                assert_eq!(expected, authority(), "{what}");
                assert_ne!(recovered, authority(), "{what}");
            }
            other => panic!("{what}: expected WrongAuthority, got {other:?}"),
        }
    }
}

#[test]
fn another_signer_is_not_the_authority() {
    let intruder = key(666);
    let doc = ok(sign(sample(3), &intruder)).to_json();
    assert_eq!(
        verify_text(&doc),
        Err(RegistryError::WrongAuthority {
            expected: authority(),
            recovered: address_of(intruder.verifying_key()),
        })
    );
    assert_eq!(
        ok(SignedRegistry::parse_unverified(doc.as_bytes())).signer(),
        Ok(address_of(intruder.verifying_key()))
    );
}

#[test]
fn every_flipped_signature_bit_is_refused() {
    let s = signed(sample(3));
    let (mut wrong_signer, mut malformed) = (0, 0);
    for bit in 0..65 * 8 {
        let mut flipped = s.clone();
        flipped.signature[bit / 8] ^= 1 << (bit % 8);
        match SignedRegistry::verify(flipped.to_json().as_bytes(), &authority()) {
            Err(RegistryError::WrongAuthority { .. }) => wrong_signer += 1,
            Err(RegistryError::BadSignature { .. }) => malformed += 1,
            other => panic!("bit {bit}: expected a refusal, got {other:?}"),
        }
    }
    assert!(
        wrong_signer > 0 && malformed > 0,
        "{wrong_signer} / {malformed}"
    );
}

#[test]
fn malformed_signatures_are_refused() {
    let s = signed(sample(2));
    let mut cases: Vec<([u8; 65], &str)> = vec![
        (with_v(&s.signature, 29), "recovery byte v is 29"),
        (with_v(&s.signature, 2), "recovery byte v is 2"),
    ];
    let mut zero_r = s.signature;
    zero_r[..32].fill(0);
    cases.push((zero_r, "zero"));
    let mut big_s = s.signature;
    big_s[32..64].fill(0xff);
    cases.push((big_s, "curve order"));
    for (signature, reason) in cases {
        let doc = SignedRegistry {
            registry: s.registry.clone(),
            signature,
        };
        match SignedRegistry::verify(doc.to_json().as_bytes(), &authority()) {
            Err(RegistryError::BadSignature { reason: r }) => {
                assert!(r.contains(reason), "{r:?} should mention {reason:?}");
            }
            other => panic!("expected BadSignature ({reason}), got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Document refusals, each naming the field

/// Asserts a `Field` error naming exactly `field` whose reason mentions `reason`.
#[track_caller]
fn assert_field(result: Result<Registry, RegistryError>, field: &str, reason: &str) {
    match result {
        Err(RegistryError::Field {
            field: f,
            reason: r,
        }) => {
            assert_eq!(f, field, "reason: {r}");
            assert!(
                r.to_lowercase().contains(&reason.to_lowercase()),
                "{field}: {r:?} should mention {reason:?}"
            );
        }
        other => panic!("expected a Field error for {field}, got {other:?}"),
    }
}

fn with(doc: &Value, pointer: &str, value: Value) -> Value {
    let mut doc = doc.clone();
    match doc.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => panic!("no {pointer} in the document"),
    }
    doc
}

#[test]
fn malformed_values_name_their_field() {
    let doc = document(sample(3));
    let key0 = "/registry/nodes/0/identity_key";
    let staker0 = "/registry/nodes/0/staker";
    let good_key = identity(1000).to_string();
    let good_staker = doc["registry"]["nodes"][0]["staker"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let flipped_case = flip_first_letter_case(&good_staker);
    let uncompressed = {
        let k = key(1000);
        let point = k.verifying_key().to_encoded_point(false);
        format!("0x{}", hex::encode(point.as_bytes()))
    };
    // x = 5 is not the x coordinate of any secp256k1 point (5^3 + 7 = 132 is a non-residue).
    let off_curve = format!("0x02{:064x}", 5);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            key0,
            json!(good_key.trim_start_matches("0x")),
            "registry.nodes[0].identity_key",
            "starts with 0x",
        ),
        (
            key0,
            json!(format!("{good_key}00")),
            "registry.nodes[0].identity_key",
            "66 hex",
        ),
        (
            key0,
            json!(format!("{}g", &good_key[..good_key.len() - 1])),
            "registry.nodes[0].identity_key",
            "invalid character",
        ),
        (
            key0,
            json!(good_key.to_uppercase().replace("0X", "0x")),
            "registry.nodes[0].identity_key",
            "lowercase",
        ),
        (
            key0,
            json!(uncompressed),
            "registry.nodes[0].identity_key",
            "hex",
        ),
        (
            key0,
            json!(off_curve),
            "registry.nodes[0].identity_key",
            "not a point",
        ),
        (
            key0,
            json!(format!("0x04{}", &good_key[4..])),
            "registry.nodes[0].identity_key",
            "prefix 02 or 03",
        ),
        (
            key0,
            json!(7),
            "registry.nodes[0].identity_key",
            "expected a string",
        ),
        (
            staker0,
            json!(flipped_case),
            "registry.nodes[0].staker",
            "checksum",
        ),
        (
            staker0,
            json!(good_staker.trim_start_matches("0x")),
            "registry.nodes[0].staker",
            "starts with 0x",
        ),
        (
            staker0,
            json!(&good_staker[..40]),
            "registry.nodes[0].staker",
            "40 hex",
        ),
        (
            staker0,
            json!(null),
            "registry.nodes[0].staker",
            "found null",
        ),
        (
            "/registry/nodes/1/stake",
            json!(32),
            "registry.nodes[1].stake",
            "expected a string",
        ),
        (
            "/registry/nodes/1/stake",
            json!("-1"),
            "registry.nodes[1].stake",
            "digits only",
        ),
        (
            "/registry/nodes/1/stake",
            json!("1.5"),
            "registry.nodes[1].stake",
            "digits only",
        ),
        (
            "/registry/nodes/1/stake",
            json!("1e18"),
            "registry.nodes[1].stake",
            "digits only",
        ),
        (
            "/registry/nodes/1/stake",
            json!(""),
            "registry.nodes[1].stake",
            "digits only",
        ),
        (
            "/registry/nodes/1/stake",
            json!("0100"),
            "registry.nodes[1].stake",
            "leading zeros",
        ),
        (
            "/registry/nodes/1/stake",
            json!("340282366920938463463374607431768211456"),
            "registry.nodes[1].stake",
            "exceeds",
        ),
        (
            "/registry/min_stake",
            json!(" 1"),
            "registry.min_stake",
            "digits only",
        ),
        (
            "/registry/epoch",
            json!(-1),
            "registry.epoch",
            "non-negative integer",
        ),
        (
            "/registry/epoch",
            json!(1.0),
            "registry.epoch",
            "non-negative integer",
        ),
        (
            "/registry/epoch",
            json!("42"),
            "registry.epoch",
            "expected a non-negative integer, found a string",
        ),
        (
            "/registry/epoch",
            json!(MAX_EPOCH + 1),
            "registry.epoch",
            "2^53 - 1",
        ),
        (
            "/registry/threshold",
            json!(4),
            "registry.threshold",
            "exceeds the number of nodes (3)",
        ),
        (
            "/registry/threshold",
            json!(1u64 << 32),
            "registry.threshold",
            "2^32",
        ),
        ("/registry/nodes", json!([]), "registry.nodes", "no nodes"),
        (
            "/registry/nodes",
            json!({}),
            "registry.nodes",
            "expected an array",
        ),
        (
            "/registry/network_id",
            json!(""),
            "registry.network_id",
            "1 to 64",
        ),
        (
            "/registry/network_id",
            json!("keynet test"),
            "registry.network_id",
            "1 to 64",
        ),
        (
            "/registry/network_id",
            json!("k".repeat(65)),
            "registry.network_id",
            "1 to 64",
        ),
        ("/registry", json!([]), "registry", "expected an object"),
        ("/signature", json!("0x1234"), "signature", "130 hex"),
        (
            "/signature",
            json!(format!("{:0130}", 0)),
            "signature",
            "0x",
        ),
        (
            "/signature",
            json!(format!("0x{}", "zz".repeat(65))),
            "signature",
            "130 hex",
        ),
    ];
    for (pointer, value, field, reason) in cases {
        assert_field(verify(&with(&doc, pointer, value)), field, reason);
    }
    assert_field(verify_text("[1, 2]"), "(document)", "expected an object");
    // The limits themselves pass validation (and then fail only the signature).
    for (pointer, value) in [
        ("/registry/epoch", json!(MAX_EPOCH)),
        ("/registry/nodes/1/stake", json!(u128::MAX.to_string())),
        ("/registry/nodes/1/stake", json!("0")),
        ("/registry/threshold", json!(3)),
        ("/registry/network_id", json!("k".repeat(64))),
    ] {
        let result = verify(&with(&doc, pointer, value));
        assert!(
            matches!(result, Err(RegistryError::WrongAuthority { .. })),
            "{pointer}: {result:?}"
        );
    }
}

fn flip_first_letter_case(address: &str) -> String {
    let mut done = false;
    address
        .char_indices()
        .map(|(i, c)| {
            if i >= 2 && !done && c.is_ascii_alphabetic() {
                done = true;
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

#[test]
fn malformed_endpoints_name_their_field() {
    let doc = document(sample(2));
    let bad = [
        ("node.example", "host:port"),
        ("node.example:0", "port"),
        ("node.example:65536", "port"),
        ("node.example:080", "port"),
        ("node.example:", "port"),
        ("node.example:+80", "port"),
        (":80", "1 to 253"),
        ("Node.example:80", "lowercase"),
        ("node_1.example:80", "lowercase dns name"),
        ("-node.example:80", "lowercase dns name"),
        ("node-.example:80", "lowercase dns name"),
        ("node..example:80", "lowercase dns name"),
        ("node.example.:80", "lowercase dns name"),
        ("1.2.3.256:80", "ipv4"),
        ("01.2.3.4:80", "ipv4"),
        ("1.2.3:80", "ipv4"),
        ("::1:80", "brackets"),
        ("[::1]", "[ipv6]:port"),
        ("[0:0::1]:80", "canonical form, [::1]"),
        ("[2001:DB8::1]:80", "canonical form, [2001:db8::1]"),
        ("[fe80::1%eth0]:80", "not an ipv6"),
        ("[1.2.3.4]:80", "not an ipv6"),
    ];
    for (endpoint, reason) in bad {
        assert_field(
            verify(&with(&doc, "/registry/nodes/1/endpoint", json!(endpoint))),
            "registry.nodes[1].endpoint",
            reason,
        );
    }
    // Well-formed endpoints pass validation (and then fail only the signature).
    for endpoint in [
        "10.0.0.1:7000",
        "[2001:db8::1]:443",
        "[::ffff:1.2.3.4]:1",
        "a:65535",
        "x-1.y2.example:80",
    ] {
        let result = verify(&with(&doc, "/registry/nodes/1/endpoint", json!(endpoint)));
        assert!(
            matches!(result, Err(RegistryError::WrongAuthority { .. })),
            "{endpoint}: {result:?}"
        );
    }
}

#[test]
fn duplicates_are_refused() {
    let doc = document(sample(3));
    let key0 = doc["registry"]["nodes"][0]["identity_key"].clone();
    assert_field(
        verify(&with(&doc, "/registry/nodes/2/identity_key", key0)),
        "registry.nodes[2].identity_key",
        "duplicates registry.nodes[0]",
    );
    assert_field(
        verify(&with(
            &doc,
            "/registry/nodes/1/endpoint",
            json!("node0.keynet.example:7000"),
        )),
        "registry.nodes[1].endpoint",
        "duplicates registry.nodes[0]",
    );
    // A staker may stake several nodes.
    let staker0 = doc["registry"]["nodes"][0]["staker"].clone();
    assert!(matches!(
        verify(&with(&doc, "/registry/nodes/1/staker", staker0)),
        Err(RegistryError::WrongAuthority { .. })
    ));
}

#[test]
fn structural_errors_are_typed() {
    let doc = document(sample(2));
    let text = doc.to_string();
    assert!(matches!(
        verify_text("{\"registry\": "),
        Err(RegistryError::Json { line: 1, .. })
    ));
    assert!(matches!(
        verify_text(&format!("{text} {{}}")),
        Err(RegistryError::Json { .. })
    ));
    assert!(matches!(
        verify_text("\u{feff}{}"),
        Err(RegistryError::Json { .. })
    ));
    assert!(matches!(
        SignedRegistry::verify(b"{\"registry\": \"\xff\"}", &authority()),
        Err(RegistryError::Json { .. })
    ));

    let mut missing = doc.clone();
    if let Some(o) = missing.as_object_mut() {
        o.remove("signature");
    }
    assert_eq!(
        verify(&missing),
        Err(RegistryError::MissingField {
            field: "signature".into()
        })
    );
    let mut missing = doc.clone();
    if let Some(o) = missing["registry"]["nodes"][1].as_object_mut() {
        o.remove("stake");
    }
    assert_eq!(
        verify(&missing),
        Err(RegistryError::MissingField {
            field: "registry.nodes[1].stake".into()
        })
    );

    for (pointer, name, field) in [
        ("", "comment", "comment"),
        ("/registry", "version", "registry.version"),
        ("/registry/nodes/1", "name", "registry.nodes[1].name"),
    ] {
        let mut extra = doc.clone();
        if let Some(o) = extra.pointer_mut(pointer).and_then(Value::as_object_mut) {
            o.insert(name.into(), json!("x"));
        }
        assert_eq!(
            verify(&extra),
            Err(RegistryError::UnknownField {
                field: field.into()
            })
        );
    }

    // A repeated key: serde_json's Value would keep the last copy silently.
    let stake = "\"stake\":\"32000000000000000000\"";
    assert!(text.contains(stake));
    let repeated = text.replacen(stake, &format!("{stake},\"stake\":\"1\""), 1);
    assert_eq!(
        verify_text(&repeated),
        Err(RegistryError::DuplicateKey {
            field: "registry.nodes[0].stake".into()
        })
    );
    let repeated_top = text.replacen("{", "{\"signature\":\"0x\",", 1);
    assert_eq!(
        verify_text(&repeated_top),
        Err(RegistryError::DuplicateKey {
            field: "signature".into()
        })
    );
}

#[test]
fn sign_refuses_what_verify_would_refuse() {
    let mut r = sample(2);
    r.threshold = 3;
    assert!(
        matches!(sign(r, &authority_key()), Err(RegistryError::Field { field, .. }) if field == "registry.threshold")
    );
    let mut r = sample(2);
    r.nodes[1].endpoint = "bad endpoint".into();
    assert!(
        matches!(sign(r, &authority_key()), Err(RegistryError::Field { field, .. }) if field == "registry.nodes[1].endpoint")
    );
    let mut r = sample(1);
    r.epoch = MAX_EPOCH + 1;
    assert!(
        matches!(sign(r, &authority_key()), Err(RegistryError::Field { field, .. }) if field == "registry.epoch")
    );
}

#[test]
fn bare_registry_parses_like_a_document_and_round_trips() {
    let r = sample(4);
    assert_eq!(
        Registry::from_json(r.canonical_message().as_bytes()).as_ref(),
        Ok(&r)
    );
    assert_eq!(
        Registry::from_json(b"{\"epoch\":1}"),
        Err(RegistryError::MissingField {
            field: "registry.network_id".into()
        })
    );
    assert_eq!(
        Registry::from_json(b"{\"registry\":{}}"),
        Err(RegistryError::UnknownField {
            field: "registry.registry".into()
        })
    );
}

// ---------------------------------------------------------------------------------------
// Peer checks

#[test]
fn check_peer_decides_and_says_why() {
    let mut r = sample(3);
    r.nodes[1].stake = Stake::from_wei(16 * ETHER - 1);
    r.nodes[2].stake = Stake::from_wei(16 * ETHER);
    let r = ok(verify(&document(r)));
    let node0 = r.nodes[0].identity_key;

    assert_eq!(
        r.check_peer(&node0, "node0.keynet.example:7000"),
        Ok(&r.nodes[0])
    );
    assert_eq!(
        r.check_peer(&node0, "NODE0.keynet.example:7000"),
        Ok(&r.nodes[0])
    );
    assert_eq!(r.member(&node0), Some(&r.nodes[0]));
    let node2 = r.nodes[2].identity_key;
    assert_eq!(
        r.check_peer(&node2, "node2.keynet.example:7002"),
        Ok(&r.nodes[2]),
        "stake equal to the minimum"
    );

    let stranger = identity(5000);
    assert_eq!(r.member(&stranger), None);
    let refusal = r.check_peer(&stranger, "node0.keynet.example:7000");
    assert_eq!(
        refusal,
        Err(PeerRefusal::NotMember {
            identity_key: stranger
        })
    );
    assert!(
        refusal
            .err()
            .is_some_and(|e| e.to_string().contains(&stranger.to_string()))
    );

    let node1 = r.nodes[1].identity_key;
    let refusal = r.check_peer(&node1, "node1.keynet.example:7001");
    assert_eq!(
        refusal,
        Err(PeerRefusal::StakeTooLow {
            stake: Stake::from_wei(16 * ETHER - 1),
            min: Stake::from_wei(16 * ETHER),
        })
    );
    assert_eq!(
        refusal.err().map(|e| e.to_string()),
        Some(
            "stake 15999999999999999999 wei is below the registry minimum 16000000000000000000 wei"
                .into()
        )
    );

    let refusal = r.check_peer(&node0, "node0.keynet.example:7001");
    assert_eq!(
        refusal,
        Err(PeerRefusal::EndpointMismatch {
            registry: "node0.keynet.example:7000".into(),
            presented: "node0.keynet.example:7001".into(),
        })
    );
}

#[test]
fn threshold_defaults_to_two_thirds() {
    assert_eq!(sample(1).threshold(), 1);
    assert_eq!(sample(3).threshold(), 2);
    assert_eq!(sample(4).threshold(), 3);
    assert_eq!(sample(7).threshold(), 5);
    let mut r = sample(7);
    r.threshold = 7;
    assert_eq!(r.threshold(), 7);
}

#[test]
fn identity_key_text_round_trips() {
    let k = identity(1);
    assert_eq!(ok(k.to_string().parse::<IdentityKey>()), k);
    assert_eq!(ok(IdentityKey::from_sec1(k.as_bytes())), k);
    assert_eq!(&k.verifying_key(), key(1).verifying_key());
    assert_eq!(ok(serde_json::to_string(&k)), format!("\"{k}\""));
}

// ---------------------------------------------------------------------------------------
// Properties

fn arb_registry() -> impl Strategy<Value = Registry> {
    (
        "[A-Za-z0-9._-]{1,64}",
        0..=MAX_EPOCH,
        any::<u128>(),
        prop::collection::vec((any::<u128>(), 1u16..=65535, any::<bool>()), 1..8),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(|(network_id, epoch, min_stake, nodes, threshold, seed)| {
            let n = nodes.len() as u32;
            Registry {
                network_id,
                epoch,
                threshold: threshold % (n + 1),
                min_stake: Stake::from_wei(min_stake),
                nodes: nodes
                    .into_iter()
                    .enumerate()
                    .map(|(i, (stake, port, ip))| {
                        let seed = seed.wrapping_add(i as u64);
                        keynet_protocol::NodeEntry {
                            identity_key: identity(seed),
                            staker: address_of(key(seed ^ 0x5555).verifying_key()),
                            stake: Stake::from_wei(stake),
                            endpoint: if ip {
                                format!("10.0.{}.{}:{port}", i / 256, i % 256)
                            } else {
                                format!("n{i}.example:{port}")
                            },
                        }
                    })
                    .collect(),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn signed_registries_verify_and_stake_changes_do_not(r in arb_registry(), which in any::<usize>()) {
        let s = signed(r.clone());
        prop_assert_eq!(SignedRegistry::verify(s.to_json().as_bytes(), &authority()), Ok(r.clone()));
        prop_assert_eq!(Registry::from_json(r.canonical_message().as_bytes()), Ok(r.clone()));
        let mut changed = s.clone();
        let i = which % r.nodes.len();
        changed.registry.nodes[i].stake = Stake::from_wei(r.nodes[i].stake.wei().wrapping_add(1));
        let result = SignedRegistry::verify(changed.to_json().as_bytes(), &authority());
        prop_assert!(matches!(result, Err(RegistryError::WrongAuthority { .. })), "{:?}", result);
    }

    /// Changing one byte of a file never panics, and is accepted only if the registry
    /// means the same (whitespace, letter case of hex).
    #[test]
    fn one_byte_changes_are_refused_or_harmless(position in any::<usize>(), byte in any::<u8>()) {
        let original = signed(sample(2));
        let mut text = original.to_json().into_bytes();
        let i = position % text.len();
        text[i] = byte;
        if let Ok(r) = SignedRegistry::verify(&text, &authority()) {
            prop_assert_eq!(r, original.registry);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = SignedRegistry::verify(&bytes, &authority());
    }
}
