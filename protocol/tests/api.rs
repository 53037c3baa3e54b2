//! The wire contract: every route's body and answer survives the trip through JSON that
//! the node's encoding and the client's decoding make (both use `keynet_protocol::api`),
//! keeps the field names clients already read, and every error code has one spelling and
//! one HTTP status.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use k256::ecdsa::SigningKey;
use keynet_eth::address_of;
use keynet_protocol::api::{
    self, Ack, Attestation, BlsCounters, BlsPublic, BlsShare, CommitmentsAnswer, DkgBody, DkgState,
    DkgStatus, ErrorBody, ErrorCode, FailedCondition, FrostPublic, HandshakeRequest, Health,
    NodeInfo, PeerCommitments, PeerDkg, PermissionsSet, PlatformKind, PublicKeys, Route, SignShare,
    SigningCounters, Status, WorkCount, WorkCounters, route,
};
use keynet_protocol::auth::SignedAuth;
use keynet_protocol::request::{
    Authorised, BlsSignRequest, DecryptRequest, KeyRef, PermissionsRequest, PresentedSignature,
    SignRequest,
};
use keynet_protocol::{IdentityKey, NodeEntry, Stake};
use keynet_threshold::wire::{BlsWire, FrostWire};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32].into()).unwrap_or_else(|e| panic!("{e}"))
}

fn identity(seed: u8) -> IdentityKey {
    IdentityKey::from_verifying_key(key(seed).verifying_key())
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Encodes as the node does (serde_json of the api type), decodes as the client does, and
/// checks nothing was lost or changed, also on a second trip.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Value {
    let bytes = ok(serde_json::to_vec(value));
    let back: T = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(&back, value);
    assert_eq!(ok(serde_json::to_vec(&back)), bytes, "stable encoding");
    ok(serde_json::from_slice(&bytes))
}

/// Request and answer of route `R`, each through the trip.
fn route_trip<R: Route>(request: &R::Request, answer: &R::Response) -> (Value, Value)
where
    R::Request: PartialEq + Debug,
    R::Response: PartialEq + Debug,
{
    (round_trip(request), round_trip(answer))
}

fn auth() -> SignedAuth {
    SignedAuth {
        message: "keynet.local wants you to sign in".into(),
        signature: format!("0x{}", "11".repeat(65)),
    }
}

fn platform(simulated: bool) -> (PlatformKind, Option<String>) {
    if simulated {
        (PlatformKind::SnpSimulated, Some("SIMULATED".to_owned()))
    } else {
        (PlatformKind::Snp, None)
    }
}

fn keyref() -> KeyRef {
    ok(KeyRef::new(address_of(key(3).verifying_key()), "wallet"))
}

fn presented() -> PresentedSignature {
    ok(PresentedSignature::new(
        address_of(key(4).verifying_key()),
        "I allow it",
        [0x1b; 65],
    ))
}

fn public_keys() -> PublicKeys {
    PublicKeys {
        epoch: 3,
        threshold: 3,
        frost_secp256k1: FrostPublic {
            group_key: "02".repeat(33),
            public_key_package: "ab".repeat(40),
        },
        bls12_381_g2: BlsPublic {
            public_key: "a0".repeat(96),
            public_shares: (1..=10)
                .map(|p| (p, format!("{p:02x}").repeat(96)))
                .collect(),
        },
    }
}

#[test]
fn every_route_round_trips_with_the_field_names_clients_read() {
    let bls_share = BlsShare {
        node: identity(1),
        participant: 2,
        share: "cd".repeat(56),
        signed: "00".repeat(32),
        conditions_hash: "ef".repeat(32),
    };

    let (_, info) = route_trip::<route::Handshake>(
        &HandshakeRequest {},
        &NodeInfo {
            network_id: "keynet-dev".into(),
            epoch: 7,
            threshold: 3,
            identity_key: identity(1),
            registry_entry: Some(NodeEntry {
                identity_key: identity(1),
                staker: address_of(key(2).verifying_key()),
                stake: Stake::from_wei(32_000_000_000_000_000_000),
                endpoint: "127.0.0.1:7001".into(),
            }),
            public_keys: Some(public_keys()),
            dkg: DkgStatus {
                state: DkgState::Done,
                network: Some("keynet-dev".into()),
                epoch: Some(7),
                reason: None,
                culprits: vec![],
                millis: Some(812),
                attempt: 1,
                aborted_by: None,
                accused: vec![],
                excluded: vec![],
            },
            platform: platform(true).0,
            warning: platform(true).1,
        },
    );
    assert_eq!(info["platform"], "snp-simulated");
    assert_eq!(info["warning"], "SIMULATED");
    assert_eq!(info["dkg"]["state"], "done");
    // Participant numbers are JSON object keys, as before.
    let shares = &info["public_keys"]["bls12_381_g2"]["public_shares"];
    assert_eq!(shares["10"].as_str().map(str::len), Some(192), "{shares}");
    assert_eq!(
        info["public_keys"]["frost_secp256k1"]["group_key"]
            .as_str()
            .map(str::len),
        Some(66)
    );

    // A node without keys serves `{}`, and the client reads that as none.
    let mut no_keys: NodeInfo = ok(serde_json::from_value(info.clone()));
    no_keys.public_keys = None;
    no_keys.registry_entry = None;
    (no_keys.platform, no_keys.warning) = platform(false);
    let v = round_trip(&no_keys);
    assert_eq!(v["public_keys"], json!({}));
    assert!(v.get("warning").is_none(), "hardware has no warning: {v}");

    let sign = ok(SignRequest::new(
        "keynet-dev",
        keyref(),
        [9; 32],
        vec![identity(1), identity(2), identity(3)],
    ));
    let (req, answer) = route_trip::<route::Sign>(
        &Authorised {
            request: sign.clone(),
            auth: auth(),
        },
        &SignShare {
            node: identity(2),
            participant: 2,
            share: "12".repeat(32),
            package: "34".repeat(100),
        },
    );
    assert_eq!(req["request"]["message"], format!("0x{}", "09".repeat(32)));
    assert_eq!(answer["participant"], 2);

    let (req, answer) = route_trip::<route::Permissions>(
        &Authorised {
            request: ok(PermissionsRequest::new(
                "keynet-dev",
                keyref(),
                5,
                vec![address_of(key(5).verifying_key())],
            )),
            auth: auth(),
        },
        &PermissionsSet {
            status: Status::Ok,
            seq: 5,
        },
    );
    assert_eq!(req["request"]["seq"], 5);
    assert_eq!(answer, json!({"status": "ok", "seq": 5}));

    let (req, _) = route_trip::<route::DecryptShare>(
        &Authorised {
            request: ok(DecryptRequest::new(
                "keynet-dev",
                identity(2),
                r#"{"version":1,"condition":{"time_after":1}}"#,
                [7; 32],
                vec![presented()],
            )),
            auth: auth(),
        },
        &bls_share,
    );
    assert_eq!(
        req["request"]["presented"][0]["signature"],
        format!("0x{}", "1b".repeat(65))
    );

    let (req, answer) = route_trip::<route::BlsSign>(
        &Authorised {
            request: ok(BlsSignRequest::new(
                "keynet-dev",
                identity(2),
                r#"{"version":1,"condition":{"time_after":1}}"#,
                b"header.payload".to_vec(),
                vec![],
            )),
            auth: auth(),
        },
        &bls_share,
    );
    assert_eq!(req["request"]["message"], hex::encode(b"header.payload"));
    assert_eq!(answer["conditions_hash"], "ef".repeat(32));

    for body in [
        DkgBody::Frost(FrostWire::Round1("aa".repeat(10))),
        DkgBody::Frost(FrostWire::Abort(vec![2, 3])),
        DkgBody::Bls(BlsWire::encode(
            &keynet_threshold::bls_dkg::BlsMessage::Complaints(vec![4]),
        )),
    ] {
        let msg = PeerDkg {
            network: "keynet-dev".into(),
            epoch: 7,
            attempt: 2,
            excluded: vec![4],
            session: "ab".repeat(16),
            from: 1,
            to: None,
            body,
            signature: "cd".repeat(64),
            proofs: vec![],
        };
        let (req, ack) = route_trip::<route::PeerDkg>(&msg, &Ack::ok());
        assert_eq!(ack, json!({"status": "ok"}));
        assert_eq!(req["epoch"], 7);
        // The signature covers every field but itself and the proofs.
        let digest = msg.signing_digest();
        let unsigned = PeerDkg {
            signature: String::new(),
            proofs: vec![keynet_protocol::api::Misconduct {
                evidence: vec![msg.clone()],
            }],
            ..msg.clone()
        };
        assert_eq!(unsigned.signing_digest(), digest);
        for changed in [
            PeerDkg {
                attempt: 3,
                ..msg.clone()
            },
            PeerDkg {
                excluded: vec![],
                ..msg.clone()
            },
            PeerDkg {
                session: "ac".repeat(16),
                ..msg.clone()
            },
            PeerDkg {
                from: 2,
                ..msg.clone()
            },
            PeerDkg {
                to: Some(1),
                ..msg.clone()
            },
            PeerDkg {
                epoch: 8,
                ..msg.clone()
            },
            PeerDkg {
                network: "keynet-de".into(),
                ..msg.clone()
            },
            PeerDkg {
                body: DkgBody::Frost(FrostWire::Abort(vec![])),
                ..msg.clone()
            },
        ] {
            assert_ne!(changed.signing_digest(), digest, "{changed:?}");
        }
    }

    route_trip::<route::PeerCommitments>(
        &PeerCommitments {
            request: Authorised {
                request: sign.clone(),
                auth: auth(),
            },
            commitments: "56".repeat(70),
        },
        &CommitmentsAnswer {
            commitments: Some("57".repeat(70)),
        },
    );
    let (_, none) = route_trip::<route::PeerCommitments>(
        &PeerCommitments {
            request: Authorised {
                request: sign,
                auth: auth(),
            },
            commitments: "56".repeat(70),
        },
        &CommitmentsAnswer { commitments: None },
    );
    assert_eq!(none, json!({"commitments": null}));

    let health = round_trip(&Health {
        status: Status::Ok,
        endpoint: "127.0.0.1:7001".into(),
        dkg: DkgState::Unsealed,
        signing: SigningCounters {
            shares_issued: 4,
            dropped_unverified: 1,
        },
        bls: BlsCounters {
            decryption_shares_issued: 2,
            statement_shares_issued: 1,
            refused_conditions: 3,
        },
        work: WorkCounters {
            verifications: WorkCount { ran: 5, refused: 6 },
            fresh_reports: WorkCount { ran: 7, refused: 0 },
        },
        platform: platform(true).0,
        warning: platform(true).1,
    });
    assert_eq!(health["signing"]["shares_issued"], 4);
    assert_eq!(health["work"]["verifications"]["refused"], 6);
    assert_eq!(health["work"]["fresh_reports"]["ran"], 7);
    // A node that does not report metered work (older) still reads.
    let mut older = health.clone();
    older.as_object_mut().map(|o| o.remove("work"));
    let read: Health = serde_json::from_value(older).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read.work, WorkCounters::default());
    assert_eq!(health["bls"]["refused_conditions"], 3);
    assert_eq!(health["dkg"], "unsealed");

    let attestation = round_trip(&Attestation {
        evidence: "AAEC".into(),
        platform: PlatformKind::Snp,
        warning: None,
    });
    assert_eq!(attestation, json!({"evidence": "AAEC", "platform": "snp"}));
    assert_eq!(
        api::attestation_path(&[0xab; 16]),
        format!("/v1/attestation?nonce={}", "ab".repeat(16))
    );
}

#[test]
fn requests_refuse_unknown_fields_and_answers_tolerate_new_ones() {
    let mut v = ok(serde_json::to_value(Authorised {
        request: ok(SignRequest::new("n", keyref(), [1; 32], vec![identity(1)])),
        auth: auth(),
    }));
    v["request"]["extra"] = json!(1);
    assert!(serde_json::from_value::<Authorised<SignRequest>>(v).is_err());
    let share: SignShare = ok(serde_json::from_value(json!({
        "node": identity(1), "participant": 1, "share": "", "package": "", "new_field": true
    })));
    assert_eq!(share.participant, 1);
}

#[test]
fn every_error_code_has_one_spelling_and_one_status() {
    let mut spellings = BTreeSet::new();
    for code in ErrorCode::ALL {
        let text = code.as_str();
        assert!(spellings.insert(text), "{text} twice");
        assert!(
            text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{text}"
        );
        assert!((400..600).contains(&code.status()), "{text}");
        let body = ErrorBody {
            code: *code,
            message: "why".into(),
            condition: (*code == ErrorCode::ConditionFailed).then(|| FailedCondition {
                path: "condition.address_is".into(),
                reason: "not you".into(),
            }),
        };
        let v = round_trip(&body);
        assert_eq!(v["code"], text);
        assert_eq!(
            v.get("condition").is_some(),
            *code == ErrorCode::ConditionFailed
        );
    }
    // The codes every earlier node sent keep their spelling and status.
    let earlier: BTreeMap<&str, u16> = [
        ("bad_request", 400),
        ("not_found", 404),
        ("internal", 500),
        ("nonce_missing", 400),
        ("nonce_length", 400),
        ("nonce_hex", 400),
        ("evidence_unavailable", 503),
        ("no_keys", 503),
        ("keys_stale", 503),
        ("wrong_network", 400),
        ("auth_refused", 401),
        ("unknown_participant", 400),
        ("below_threshold", 400),
        ("not_a_participant", 400),
        ("not_allowed", 403),
        ("duplicate", 409),
        ("peers_timeout", 504),
        ("signing_failed", 502),
        ("pkp_limit", 409),
        ("not_owner", 403),
        ("stale_seq", 409),
        ("wrong_node", 400),
        ("bad_conditions", 400),
        ("condition_failed", 403),
        ("peer_only", 403),
        ("not_member", 403),
        ("dkg_done", 409),
        ("wrong_run", 409),
        ("dkg_unavailable", 409),
    ]
    .into();
    for (text, status) in earlier {
        let code: ErrorCode = ok(serde_json::from_value(json!(text)));
        assert_eq!((code.as_str(), code.status()), (text, status));
    }
    // A code from a newer node is read, as unknown, rather than failing the whole answer.
    let body: ErrorBody = ok(serde_json::from_value(
        json!({"code": "from_the_future", "message": "m"}),
    ));
    assert_eq!(body.code, ErrorCode::Unknown);
}
