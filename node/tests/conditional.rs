//! Encryption under access-control conditions and threshold BLS signatures, end to end: real
//! `keynode` processes (simulated platform), the client library, files encrypted offline
//! with the network's BLS key.
//!
//! - Every condition kind and combinations of them: a requester who meets them decrypts, one
//!   who does not is refused by the nodes, naming the condition that failed.
//! - A node's bad share is named, also from a live node holding other keys inside the
//!   client's collection loop; with n - t nodes down decryption still works.
//! - A file or conditions altered in transit do not decrypt.
//! - Signatures from `/v1/bls-sign` verify with the standard BLS equation written here
//!   (ciphersuite BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_), not only through blsful,
//!   and never open a file.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use blsful::SignatureShare;
use blstrs_plus::elliptic_curve_013::hash2curve::ExpandMsgXmd;
use blstrs_plus::group::Curve;
use blstrs_plus::{G1Projective, G2Affine, G2Projective, pairing};
use k256::ecdsa::SigningKey;
use keynet::network::RefusalCode;
use keynet::network::{BlsOp, ClientError, Network, SharesReport, present};
use keynet_conditions::Conditions;
use keynet_encryption::{Bls, DecryptError, Header};
use keynet_eth::address_of;
use keynet_protocol::api::ErrorCode;
use keynet_protocol::request::{Authorised, DecryptRequest, PresentedSignature, UserRequest};
use sha2::{Digest, Sha256};

mod common;
use common::cluster::{Cluster, rt};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn conditions(json: &str) -> Conditions {
    Conditions::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn doc(condition: &str) -> Conditions {
    conditions(&format!(r#"{{"version":1,"condition":{condition}}}"#))
}

fn wallet(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap_or_else(|e| panic!("{e}"))
}

fn addr(k: &SigningKey) -> String {
    address_of(k.verifying_key()).to_checksum()
}

/// `plain` encrypted under `c` with the network's key.
async fn seal(net: &Network, c: &Conditions, plain: &[u8]) -> Vec<u8> {
    let pk = net.bls_public_key().await.unwrap_or_else(|e| panic!("{e}"));
    let digest: [u8; 32] = Sha256::digest(plain).into();
    let mut out = Vec::new();
    keynet_encryption::encrypt(&pk, c, &digest, &mut &plain[..], &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

async fn open(
    net: &Network,
    user: &SigningKey,
    file: &[u8],
    presented: &[PresentedSignature],
) -> Result<Vec<u8>, ClientError> {
    open_reported(net, user, file, presented)
        .await
        .map(|(out, _)| out)
}

/// The plaintext and the client's report of which nodes gave, spoiled or refused shares.
async fn open_reported(
    net: &Network,
    user: &SigningKey,
    file: &[u8],
    presented: &[PresentedSignature],
) -> Result<(Vec<u8>, SharesReport), ClientError> {
    let mut input = file;
    let header = Header::read(&mut input)?;
    let mut out = Vec::new();
    let report = net
        .decrypt(user, &header, presented, &mut input, &mut out)
        .await?;
    Ok((out, report))
}

/// Decrypting as `user` is refused by a node naming `path` as the failed condition.
async fn refused(
    net: &Network,
    user: &SigningKey,
    file: &[u8],
    presented: &[PresentedSignature],
    path: &str,
) {
    match open(net, user, file, presented).await {
        Err(ClientError::Refused { code, message, .. }) => {
            assert_eq!(
                code,
                RefusalCode::Node(ErrorCode::ConditionFailed),
                "{message}"
            );
            assert!(message.contains(path), "expected {path} in: {message}");
        }
        other => panic!("expected a refusal naming {path}, got {other:?}"),
    }
}

/// POSTs to node `p` a decrypt-share request for `node` (registry position, 0-based) under
/// `conditions`, authorised by `user`: (status, JSON answer).
async fn raw_decrypt(
    net: &Network,
    user: &SigningKey,
    node: usize,
    conditions: String,
    p: u16,
) -> (u16, serde_json::Value) {
    let request = DecryptRequest::new(
        net.registry().network_id.clone(),
        net.registry().nodes[node].identity_key,
        conditions,
        [1; 32],
        vec![],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let auth = net
        .authorise(user, &request.digest())
        .unwrap_or_else(|e| panic!("{e}"));
    let body = serde_json::to_vec(&Authorised { request, auth }).unwrap_or_default();
    let (status, answer) = net
        .request(p, "POST", "/v1/decrypt-share", body)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (status, serde_json::from_slice(&answer).unwrap_or_default())
}

/// The standard BLS verification equation, e(sig, g2) = e(H(m), pk), with the basic
/// scheme's hash-to-curve, written here rather than taken from blsful.
fn bls_verify(public: &[u8], signed: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 96]>::try_from(public) else {
        return false;
    };
    let Ok(sig) = <[u8; 48]>::try_from(signature) else {
        return false;
    };
    let (Some(pk), Some(sig)) = (
        Option::<G2Affine>::from(G2Affine::from_compressed(&pk)),
        Option::<blstrs_plus::G1Affine>::from(blstrs_plus::G1Affine::from_compressed(&sig)),
    ) else {
        return false;
    };
    let h = G1Projective::hash::<ExpandMsgXmd<Sha256>>(
        signed,
        b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_",
    );
    pairing(&sig, &G2Projective::GENERATOR.to_affine()) == pairing(&h.to_affine(), &pk)
}

#[test]
fn every_condition_kind_holds_and_refuses_through_the_nodes() {
    let cluster = Cluster::start(4, 2000);
    rt().block_on(async {
        cluster.wait_dkg().await;
        let net = cluster.network();
        let user = cluster.user();
        let me = addr(&user);
        let other = wallet(7);
        let signer = wallet(9);
        let t = now();
        let data = b"the plans for the thing".to_vec();

        // (conditions, the path a refusal names) for `other`, who meets none of them.
        let cases = [
            (format!(r#"{{"address_is":"{me}"}}"#), "address_is"),
            (
                format!(r#"{{"address_in":["{}","{me}"]}}"#, addr(&signer)),
                "address_in",
            ),
            (
                format!(r#"{{"all":[{{"address_is":"{me}"}},{{"time_before":{}}}]}}"#, t + 3600),
                "address_is",
            ),
            (
                format!(
                    r#"{{"any":[{{"address_is":"{me}"}},{{"time_after":{}}}]}}"#,
                    t + 3600
                ),
                "condition.any",
            ),
        ];
        for (c, path) in &cases {
            let c = doc(c);
            let file = seal(&net, &c, &data).await;
            let plain = open(&net, &user, &file, &[])
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", c.canonical()));
            assert_eq!(plain, data);
            refused(&net, &other, &file, &[], path).await;
        }

        // Time: a window not yet open and one closed are refused for everyone.
        let c = doc(&format!(r#"{{"time_before":{}}}"#, t - 10));
        let file = seal(&net, &c, &data).await;
        refused(&net, &user, &file, &[], "time_before").await;
        let c = doc(&format!(r#"{{"time_after":{}}}"#, t + 3600));
        let file = seal(&net, &c, &data).await;
        refused(&net, &user, &file, &[], "time_after").await;
        let c = doc(&format!(
            r#"{{"all":[{{"time_after":{}}},{{"time_before":{}}}]}}"#,
            t - 60,
            t + 3600
        ));
        let file = seal(&net, &c, &data).await;
        assert_eq!(open(&net, &other, &file, &[]).await.ok(), Some(data.clone()));

        // signed_by: the requester presents the signer's signature over the statement.
        let statement = "grant: the plans";
        let c = doc(&format!(
            r#"{{"signed_by":{{"address":"{}","statement":"{statement}"}}}}"#,
            addr(&signer)
        ));
        let file = seal(&net, &c, &data).await;
        let good = present(&signer, statement).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            open(&net, &other, &file, std::slice::from_ref(&good)).await.ok(),
            Some(data.clone())
        );
        refused(&net, &other, &file, &[], "signed_by").await;
        let wrong_statement = present(&signer, "grant: something else").unwrap_or_else(|e| panic!("{e}"));
        refused(&net, &other, &file, &[wrong_statement], "signed_by").await;
        // Claimed to be the signer's, signed by someone else.
        let by_other = present(&other, statement).unwrap_or_else(|e| panic!("{e}"));
        let forged = PresentedSignature::new(
            address_of(signer.verifying_key()),
            statement,
            *by_other.signature(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        refused(&net, &other, &file, &[forged], "signed_by").await;

        // A nested combination: (me, or signer-approved) and still open.
        let c = doc(&format!(
            r#"{{"all":[{{"any":[{{"address_is":"{me}"}},{{"signed_by":{{"address":"{}","statement":"{statement}"}}}}]}},{{"time_before":{}}}]}}"#,
            addr(&signer),
            t + 3600
        ));
        let file = seal(&net, &c, &data).await;
        assert_eq!(open(&net, &user, &file, &[]).await.ok(), Some(data.clone()));
        assert_eq!(
            open(&net, &other, &file, std::slice::from_ref(&good)).await.ok(),
            Some(data.clone())
        );
        refused(&net, &other, &file, &[], "any").await;

        // The node's JSON error names the condition as a field, and counts the refusal.
        let c = doc(&format!(r#"{{"address_is":"{me}"}}"#));
        let (status, v) = raw_decrypt(&net, &other, 1, c.canonical(), 2).await;
        assert_eq!(status, 403, "{v}");
        assert_eq!(v["condition"]["path"], "condition.address_is", "{v}");
        let (_, health) = net
            .request(2, "GET", "/health", vec![])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let h: serde_json::Value = serde_json::from_slice(&health).unwrap_or_default();
        assert!(h["bls"]["refused_conditions"].as_u64().unwrap_or(0) >= 1, "{h}");
        assert!(h["bls"]["decryption_shares_issued"].as_u64().unwrap_or(0) >= 1, "{h}");

        // Malformed conditions are a clear error, never allowed.
        let bad = r#"{"version":1,"condition":{"address_is":"0x12","extra":1}}"#;
        let (status, v) = raw_decrypt(&net, &user, 0, bad.into(), 1).await;
        assert_eq!((status, v["code"].as_str()), (400, Some("bad_conditions")), "{v}");

        // A request the user made for node 2, replayed to the other nodes (as node 2 could):
        // each refuses it, so no node can collect others' shares with the user's request.
        let request = DecryptRequest::new(
            net.registry().network_id.clone(),
            net.registry().nodes[1].identity_key,
            c.canonical(),
            [1; 32],
            vec![],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let auth = net
            .authorise(&user, &request.digest())
            .unwrap_or_else(|e| panic!("{e}"));
        let body = serde_json::to_vec(&Authorised { request, auth }).unwrap_or_default();
        for p in [1, 3, 4] {
            let (status, answer) = net
                .request(p, "POST", "/v1/decrypt-share", body.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let v: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
            assert_eq!((status, v["code"].as_str()), (400, Some("wrong_node")), "{v}");
        }
        let (status, answer) = net
            .request(2, "POST", "/v1/decrypt-share", body)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    });
}

#[test]
fn bad_shares_are_named_altered_files_fail_and_statements_verify() {
    let mut cluster = Cluster::start(4, 2000);
    rt().block_on(async {
        cluster.wait_dkg().await;
        let net = cluster.network();
        let user = cluster.user();
        let me = addr(&user);
        let c = doc(&format!(r#"{{"address_is":"{me}"}}"#));
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let file = seal(&net, &c, &data).await;
        let header = Header::read(&mut file.as_slice()).unwrap_or_else(|e| panic!("{e}"));
        let op = BlsOp::decrypt(&header);
        let (keys, _) = net.bls_keys().await.unwrap_or_else(|e| panic!("{e}"));
        let signed = op.signed_bytes();

        // Shares from three nodes; node 2's replaced by its share over another message (a
        // valid point, the wrong signature), then by node 3's share.
        let answers = net
            .bls_shares(&user, &op, &[], &[1, 2, 3])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut shares: BTreeMap<u16, SignatureShare<Bls>> = answers
            .into_iter()
            .map(|(p, a)| (p, a.unwrap_or_else(|e| panic!("{p}: {e}"))))
            .collect();
        assert!(net.combine_bls(&keys, &signed, &shares).is_ok());
        let other_op = BlsOp::Sign {
            conditions: c.clone(),
            message: b"something else".to_vec(),
        };
        let other = net
            .bls_shares(&user, &other_op, &[], &[2])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let wrong = other
            .into_iter()
            .next()
            .and_then(|(_, a)| a.ok())
            .unwrap_or_else(|| panic!("no share"));
        let node2 = cluster.endpoint(1);
        let mut bad = shares.clone();
        bad.insert(2, wrong);
        match net.combine_bls(&keys, &signed, &bad) {
            Err(ClientError::BadShares(who)) => assert_eq!(who, vec![node2.clone()]),
            other => panic!("expected node 2 named, got {other:?}"),
        }
        let mut relabelled = shares.clone();
        if let Some(s3) = shares.get(&3).cloned() {
            relabelled.insert(2, s3);
        }
        match net.combine_bls(&keys, &signed, &relabelled) {
            Err(ClientError::BadShares(who)) => assert_eq!(who, vec![node2.clone()]),
            other => panic!("expected node 2 named, got {other:?}"),
        }
        // Below the threshold, even with valid shares: refused, not combined.
        shares.remove(&3);
        assert!(matches!(
            net.combine_bls(&keys, &signed, &shares),
            Err(ClientError::NotEnoughNodes { .. })
        ));

        // Altered in transit: a flipped ciphertext byte, and conditions swapped for others
        // the user also meets (the identity changes, so the nodes' key does not open it).
        let mut flipped = file.clone();
        let last = flipped.len() - 100;
        flipped[last] ^= 1;
        assert!(matches!(
            open(&net, &user, &flipped, &[]).await,
            Err(ClientError::Decrypt(DecryptError::Chunk(_)))
        ));
        let looser = doc(&format!(r#"{{"address_in":["{me}"]}}"#));
        let (old, new) = (c.canonical(), looser.canonical());
        let mut swapped = Vec::new();
        let at = 12;
        swapped.extend_from_slice(&file[..at]);
        swapped.extend_from_slice(&(new.len() as u32).to_be_bytes());
        swapped.extend_from_slice(new.as_bytes());
        swapped.extend_from_slice(&file[at + 4 + old.len()..]);
        assert!(matches!(
            open(&net, &user, &swapped, &[]).await,
            Err(ClientError::Decrypt(DecryptError::Key))
        ));

        // bls-sign: the statement verifies with the standard equation, under the network
        // key, for the signed bytes only; and it never opens a file.
        let jwt = b"eyJhbGciOiJCTFMifQ.eyJzdWIiOiJ0aGUgcGxhbnMifQ";
        let s = net
            .bls_sign(&user, &c, jwt, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let pk = hex::decode(&s.public_key).unwrap_or_default();
        let sig = hex::decode(&s.signature).unwrap_or_default();
        let signed = hex::decode(&s.signed).unwrap_or_default();
        let mut expected = b"keynet/bls-sign/v1\n".to_vec();
        expected.extend_from_slice(&c.hash());
        expected.extend_from_slice(jwt);
        assert_eq!(signed, expected);
        assert!(bls_verify(&pk, &signed, &sig));
        assert!(!bls_verify(&pk, &signed[..signed.len() - 1], &sig));
        let point = <[u8; 48]>::try_from(sig.as_slice())
            .ok()
            .and_then(|b| {
                Option::<blstrs_plus::G1Affine>::from(blstrs_plus::G1Affine::from_compressed(&b))
            })
            .unwrap_or_else(|| panic!("not a G1 point"));
        let key = blsful::Signature::<Bls>::Basic(G1Projective::from(point));
        let mut input = &file[..];
        let header = Header::read(&mut input).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            keynet_encryption::decrypt(&header, &key, &mut input, &mut Vec::new()),
            Err(DecryptError::Key)
        ));
        match net.bls_sign(&wallet(7), &c, jwt, &[]).await {
            Err(ClientError::Refused { code, .. }) => {
                assert_eq!(code, RefusalCode::Node(ErrorCode::ConditionFailed))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }

        // n - t = 1 node down: still decrypts; one more: too few, with the nodes named.
        cluster.stop_node(0);
        let net = cluster.network();
        assert_eq!(open(&net, &user, &file, &[]).await.ok(), Some(data.clone()));
        cluster.stop_node(3);
        let net = cluster.network();
        match open(&net, &user, &file, &[]).await {
            Err(ClientError::NotEnoughNodes {
                available,
                failures,
                ..
            }) => {
                assert_eq!(available, 2);
                assert_eq!(failures.len(), 2, "{failures:?}");
            }
            other => panic!("expected too few nodes, got {other:?}"),
        }
    });
}

#[test]
fn seven_nodes_decrypt_with_two_down() {
    let mut cluster = Cluster::start(7, 2000);
    rt().block_on(async {
        cluster.wait_dkg().await;
        let net = cluster.network();
        let user = cluster.user();
        let c = doc(&format!(r#"{{"address_is":"{}"}}"#, addr(&user)));
        let file = seal(&net, &c, b"seven").await;
        // Kept-alive connections and cached keys: the first wave meets two stopped nodes, and
        // the client asks two others for the missing shares.
        cluster.stop_node(1);
        cluster.stop_node(4);
        assert_eq!(
            open(&net, &user, &file, &[]).await.ok(),
            Some(b"seven".to_vec())
        );
        for _ in 0..3 {
            assert_eq!(
                open(&net, &user, &file, &[]).await.ok(),
                Some(b"seven".to_vec())
            );
        }
    });
}

/// A live node whose key share is not the one its public share commits to: node 2 is given
/// back the sealed keys of an earlier DKG of the same network and epoch (as a node restored
/// from a stale backup would be). A client that looked up the keys before sees node 2's bad
/// share, names it and asks another node; a client looking now leaves node 2 out, for
/// decryption and for FROST signing alike.
#[test]
fn a_live_node_with_other_keys_is_named_and_replaced() {
    let mut cluster = Cluster::start(4, 2000);
    rt().block_on(async {
        cluster.wait_dkg().await;
        let stale = std::fs::read(sealed_keys(&cluster, 1)).unwrap_or_else(|e| panic!("{e}"));

        // A second DKG of the same network and epoch: every node's sealed keys removed.
        for i in 0..cluster.n {
            cluster.stop_node(i);
            std::fs::remove_file(sealed_keys(&cluster, i)).unwrap_or_else(|e| panic!("{e}"));
        }
        for i in 0..cluster.n {
            cluster.start_node(i);
        }
        cluster.wait_dkg().await;
        let net = cluster.network();
        let user = cluster.user();
        let c = doc(&format!(r#"{{"address_is":"{}"}}"#, addr(&user)));
        let file = seal(&net, &c, b"stale share").await;
        let fresh = std::fs::read(sealed_keys(&cluster, 1)).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(fresh, stale, "the second DKG made new keys");

        // Node 2 restarts with the first DKG's keys; `net` keeps the keys it looked up.
        cluster.stop_node(1);
        std::fs::write(sealed_keys(&cluster, 1), &stale).unwrap_or_else(|e| panic!("{e}"));
        cluster.start_node(1);
        cluster.wait_dkg().await;
        let node2 = cluster.endpoint(1);
        let mut named = 0;
        // Four requests: the rotating first wave of three includes node 2 in three of them.
        for _ in 0..4 {
            let (out, report) = open_reported(&net, &user, &file, &[])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out, b"stale share");
            assert!(!report.participants.contains(&node2), "{report:?}");
            match report.bad_shares.as_slice() {
                [] => {}
                [one] if one.starts_with(&node2) => named += 1,
                other => panic!("only node 2 may be named: {other:?}"),
            }
        }
        assert_eq!(
            named, 3,
            "node 2 was asked in three of the four first waves"
        );

        // A client looking now takes the keys a threshold serves and never asks node 2.
        let net = cluster.network();
        let (_, usable) = net.bls_keys().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(usable.iter().all(|s| s.endpoint != node2), "{usable:?}");
        let (out, report) = open_reported(&net, &user, &file, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, b"stale share");
        assert!(report.bad_shares.is_empty(), "{report:?}");

        // FROST too: node 2 serves the first DKG's key package; the package a threshold
        // serves wins, node 2 is left out, and signing goes on.
        let (_, usable) = net.public_keys().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(usable.iter().all(|s| s.endpoint != node2), "{usable:?}");
        let key = keynet_protocol::request::KeyRef::new(address_of(user.verifying_key()), "w")
            .unwrap_or_else(|e| panic!("{e}"));
        let signed = net
            .sign(&user, &key, [5; 32], None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!signed.participants.contains(&node2), "{signed:?}");
    });
}

/// Node `i`'s sealed network keys (its state holds one set: one network, one epoch).
fn sealed_keys(cluster: &Cluster, i: usize) -> std::path::PathBuf {
    let dir = cluster.path(&format!("node-{i}/state"));
    let mut found = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("keys-"))
        })
        .collect::<Vec<_>>();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// A live node that refuses wrongly: node 2's clock runs 40 s ahead (libfaketime), so it
/// refuses a window that closes in 20 s. The client takes the refusal, asks another node,
/// decrypts, and reports who refused; with a second such node, fewer than t nodes agree and
/// the refusal, naming the condition, is the answer. (A clock behind the users' is refused
/// for every authorisation instead: see the replay horizon in keynet_protocol::auth.)
#[test]
fn a_live_node_with_a_fast_clock_refuses_and_is_replaced() {
    let fast = [
        ("LD_PRELOAD", libfaketime()),
        ("FAKETIME", "+40"),
        // Timers and deadlines stay on the real monotonic clock.
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let mut cluster = Cluster::create(4, 2000, "");
    for i in 0..cluster.n {
        if i == 1 {
            cluster.start_node_with(i, &fast);
        } else {
            cluster.start_node(i);
        }
    }
    rt().block_on(async {
        cluster.wait_dkg().await;
        let net = cluster.network();
        let user = cluster.user();
        let c = doc(&format!(
            r#"{{"all":[{{"address_is":"{}"}},{{"time_before":{}}}]}}"#,
            addr(&user),
            now() + 20
        ));
        let file = seal(&net, &c, b"open for 20 s more").await;
        let node2 = cluster.endpoint(1);
        let mut refused_by_2 = 0;
        for _ in 0..4 {
            let (out, report) = open_reported(&net, &user, &file, &[])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out, b"open for 20 s more");
            assert!(report.bad_shares.is_empty(), "{report:?}");
            match report.refused.as_slice() {
                [] => {}
                [one] if one.starts_with(&node2) && one.contains("time_before") => {
                    refused_by_2 += 1
                }
                other => panic!("only node 2 may refuse: {other:?}"),
            }
        }
        assert_eq!(
            refused_by_2, 3,
            "node 2 is in three of the four first waves"
        );

        // Node 3 fast too: two of four agree, fewer than t = 3. Restarted, it refuses
        // authorisations issued up to its sealed replay horizon (3 s ahead in a dev network):
        // wait that out.
        cluster.stop_node(2);
        cluster.start_node_with(2, &fast);
        cluster.wait_dkg().await;
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let net = cluster.network();
        refused(&net, &user, &file, &[], "time_before").await;
    });
}

/// libfaketime's preload library (Debian's libfaketime, installed by guest-image/deps.sh).
fn libfaketime() -> &'static str {
    let at = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(at).is_file(),
        "{at} missing: install Debian's libfaketime (guest-image/deps.sh does)"
    );
    at
}
