//! The network's DKG and threshold signing, end to end: real `keynode` processes on loopback
//! (simulated platform), mutual attested TLS between them, and the client library.
//!
//! - DKG with n = 4, 7 and 10 gives every node the same group keys; any t of n sign.
//! - With n - t nodes stopped signing still works; with one more it fails, clearly.
//! - A corrupted share is named by the client; a node that never got the user's request
//!   does not sign; expired, replayed and unauthorised requests are refused.
//! - Shares survive a restart; tampered or foreign sealed state is refused.
//! - Every signature is checked with the RFC 9591 equation written independently of the
//!   signing library (`keynet_threshold::schnorr`).

use std::process::Command;
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;
use keynet::network::{ClientError, Network};
use keynet_eth::{address_of, eip191_sign};
use keynet_protocol::auth::{AuthMessage, SignedAuth};
use keynet_protocol::request::{Authorised, KeyRef, PermissionsRequest, SignRequest, UserRequest};
use keynet_threshold::derive::derive_public_package;
use keynet_threshold::frost::round2::SignatureShare;

mod common;
use common::cluster::{Cluster, key_file, rt};

fn key(user: &SigningKey, name: &str) -> KeyRef {
    KeyRef::new(address_of(user.verifying_key()), name).unwrap_or_else(|e| panic!("{e}"))
}

/// Signs with exactly `participants` and checks the result with the independent equation.
async fn sign_with(net: &Network, user: &SigningKey, k: &KeyRef, msg: [u8; 32], ps: &[u16]) {
    let answers = net
        .sign_shares(user, k, msg, ps)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut shares = std::collections::BTreeMap::new();
    for (p, a) in answers {
        shares.insert(p, a.unwrap_or_else(|e| panic!("participant {p}: {e}")));
    }
    let (root, _) = net.public_keys().await.unwrap_or_else(|e| panic!("{e}"));
    let public = derive_public_package(&root, &k.key_id()).unwrap_or_else(|e| panic!("{e}"));
    let sig = net
        .combine(&public, &shares)
        .unwrap_or_else(|e| panic!("{ps:?}: {e}"));
    let pk = public
        .verifying_key()
        .serialize()
        .unwrap_or_else(|e| panic!("{e}"));
    keynet_threshold::schnorr::verify(&pk, &msg, &sig)
        .unwrap_or_else(|e| panic!("{ps:?}: RFC 9591 check: {e}"));
    let mut other = msg;
    other[0] ^= 1;
    assert!(
        keynet_threshold::schnorr::verify(&pk, &other, &sig).is_err(),
        "the signature must not verify for another message"
    );
}

/// Every t-subset (n = 4) or a spread of t-subsets (larger n).
fn subsets(n: u16, t: u16) -> Vec<Vec<u16>> {
    if n == 4 {
        return (1..=n)
            .map(|skip| (1..=n).filter(|p| *p != skip).collect())
            .collect();
    }
    let all: Vec<u16> = (1..=n).collect();
    (0..3)
        .map(|off| {
            (0..t)
                .map(|i| all[(usize::from(i) * 2 + off) % usize::from(n)])
                .collect::<std::collections::BTreeSet<u16>>()
        })
        .map(|s| {
            let mut v: Vec<u16> = s.into_iter().collect();
            // Fill up to t if the stride hit a participant twice.
            let mut extra = 1;
            while v.len() < usize::from(t) {
                if !v.contains(&extra) {
                    v.push(extra);
                }
                extra += 1;
            }
            v
        })
        .collect()
}

#[test]
fn dkg_gives_every_node_the_same_keys_and_any_t_of_n_sign() {
    for n in [4usize, 7, 10] {
        let cluster = Cluster::start(n, 5000);
        rt().block_on(async {
            cluster.wait_dkg().await;
            let net = cluster.network();
            let st = net.status().await;
            let g = st[0].group_key.clone();
            assert!(g.is_some());
            assert!(
                st.iter().all(|s| s.group_key == g),
                "n={n}: group keys differ: {st:?}"
            );
            // BLS public key: the same at every node too.
            let mut bls = std::collections::BTreeSet::new();
            for p in 1..=n as u16 {
                let (status, body) = net
                    .request(p, "POST", "/v1/handshake", b"{}".to_vec())
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(status, 200);
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let pk = v["public_keys"]["bls12_381_g2"]["public_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(pk.len(), 192, "n={n}: BLS key of node {p}: {v}");
                bls.insert(pk);
            }
            assert_eq!(bls.len(), 1, "n={n}: BLS public keys differ");
            let t = net.threshold() as u16;
            assert_eq!(t, (2 * n as u16).div_ceil(3));
            let user = cluster.user();
            let k = key(&user, "subsets");
            for (i, ps) in subsets(n as u16, t).iter().enumerate() {
                sign_with(&net, &user, &k, [i as u8 + 1; 32], ps).await;
            }
            // Fewer than t named: every node refuses.
            let short: Vec<u16> = (1..t).collect();
            let answers = net
                .sign_shares(&user, &k, [9; 32], &short)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            for (p, a) in answers {
                let e = a.err().unwrap_or_default();
                assert!(e.contains("below_threshold"), "n={n} node {p}: {e}");
            }
        });
    }
}

#[test]
fn stopped_nodes_restarts_and_sealed_state() {
    let mut cluster = Cluster::start(4, 3000);
    let r = rt();
    r.block_on(cluster.wait_dkg());
    let user = cluster.user();
    let k = key(&user, "restart");
    let msg = [7u8; 32];
    // n - t = 1 node stopped: still signs.
    cluster.stop_node(0);
    let s = r
        .block_on(cluster.network().sign(&user, &k, msg, None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !s.participants
            .iter()
            .any(|p| p.ends_with(&cluster.endpoint(0)))
    );
    // One more: a clear error naming the unreachable nodes, exit code class 3.
    cluster.stop_node(1);
    match r.block_on(cluster.network().sign(&user, &k, msg, None)) {
        Err(e @ ClientError::NotEnoughNodes { .. }) => {
            let text = e.to_string();
            assert!(text.contains("only 2 of 4"), "{text}");
            assert!(text.contains(&cluster.endpoint(0)), "{text}");
            assert!(text.contains(&cluster.endpoint(1)), "{text}");
        }
        other => panic!(
            "expected NotEnoughNodes, got {:?}",
            other.map(|s| s.signature)
        ),
    }
    // Restarted, node 0 unseals its shares (no new DKG) and signs again.
    cluster.start_node(0);
    r.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cluster.log(0).contains("network keys unsealed") {
            assert!(Instant::now() < deadline, "{}", cluster.log(0));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sign_with(&cluster.network(), &user, &k, msg, &[1, 3, 4]).await;
        // Its status says where its keys came from.
        let st = cluster.network().status().await;
        assert_eq!(st[0].dkg.as_deref(), Some("unsealed"), "{st:?}");
    });
    assert!(
        !cluster.log(0).contains("DKG started"),
        "{}",
        cluster.log(0)
    );

    // Tampered sealed keys: the node refuses to start.
    cluster.stop_node(0);
    let state = cluster.path("node-0/state");
    let keys_file = std::fs::read_dir(&state)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("keys-"))
        })
        .unwrap_or_else(|| panic!("no sealed keys in {}", state.display()));
    let good = std::fs::read(&keys_file).unwrap_or_default();
    let mut bad = good.clone();
    let last = bad.len() - 20;
    bad[last] ^= 0x01;
    std::fs::write(&keys_file, &bad).unwrap_or_else(|e| panic!("{e}"));
    refuses_its_sealed_keys(&cluster, 0);
    // Foreign: node 2's (intact) keys under node 0's name: sealed under another chip's key.
    let name = keys_file.file_name().unwrap_or_default().to_owned();
    let foreign = std::fs::read(cluster.path("node-2/state").join(&name)).unwrap_or_default();
    assert!(!foreign.is_empty());
    std::fs::write(&keys_file, &foreign).unwrap_or_else(|e| panic!("{e}"));
    refuses_its_sealed_keys(&cluster, 0);
    // The original file back: the node serves again.
    std::fs::write(&keys_file, &good).unwrap_or_else(|e| panic!("{e}"));
    cluster.start_node(0);
    r.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = cluster.network().status().await;
            if st[0].error.is_none() {
                break;
            }
            assert!(Instant::now() < deadline, "{st:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Node `i`, started in the foreground, stops at once with an error about its sealed keys.
fn refuses_its_sealed_keys(cluster: &Cluster, i: usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_keynode"))
        .args(["run", "--config"])
        .arg(cluster.config(i))
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("reading the sealed network keys"), "{err}");
}

#[test]
fn bad_shares_unverified_requests_and_auth() {
    let cluster = Cluster::start(4, 1500);
    let r = rt();
    r.block_on(async {
        cluster.wait_dkg().await;
        let net = cluster.network();
        let user = cluster.user();
        let k = key(&user, "guarded");
        let msg = [3u8; 32];

        // A corrupted share is named.
        let answers = net
            .sign_shares(&user, &k, msg, &[1, 2, 3])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut shares = std::collections::BTreeMap::new();
        for (p, a) in answers {
            shares.insert(p, a.unwrap_or_else(|e| panic!("{e}")));
        }
        let (root, _) = net.public_keys().await.unwrap_or_else(|e| panic!("{e}"));
        let public = derive_public_package(&root, &k.key_id()).unwrap_or_else(|e| panic!("{e}"));
        if let Some((share, _)) = shares.get_mut(&2) {
            let mut b = share.serialize();
            b[31] ^= 0x01;
            *share = SignatureShare::deserialize(&b).unwrap_or_else(|e| panic!("{e}"));
        }
        match net.combine(&public, &shares) {
            Err(ClientError::BadShares(who)) => {
                assert_eq!(who, vec![cluster.endpoint(1)], "{who:?}")
            }
            other => panic!("expected the bad share named, got {other:?}"),
        }

        // Node 3 is named but never gets the request: it does not sign, the others time
        // out naming it, and it drops the commitments it was sent.
        let answers = net
            .sign_shares_partial(&user, &k, [4; 32], &[1, 2, 3], &[1, 2])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for (p, a) in answers {
            let e = a.err().unwrap_or_default();
            assert!(e.contains("peers_timeout"), "node {p}: {e}");
            assert!(e.contains(&cluster.endpoint(2)), "node {p}: {e}");
        }
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let (_, body) = net
            .request(3, "GET", "/health", vec![])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let h: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(h["signing"]["shares_issued"], 1, "{h}");
        assert!(
            h["signing"]["dropped_unverified"].as_u64() >= Some(2),
            "{h}"
        );

        // Expired authorisation.
        let request = SignRequest::new(
            net.registry().network_id.clone(),
            k.clone(),
            msg,
            net.registry().nodes[..3]
                .iter()
                .map(|e| e.identity_key)
                .collect(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let expired = auth(&user, &request, now - 400, now - 100);
        let (status, body) = net
            .request(1, "POST", "/v1/sign", body_of(&request, expired))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 401, "{text}");
        assert!(
            text.contains("auth_refused") && text.contains("expired"),
            "{text}"
        );

        // Replayed: the same signed request a second time.
        let good = body_of(&request, auth(&user, &request, now, now + 60));
        let firsts = futures_util::future::join_all(
            [1u16, 2, 3].map(|p| net.request(p, "POST", "/v1/sign", good.clone())),
        )
        .await;
        for a in &firsts {
            assert_eq!(a.as_ref().map(|x| x.0).ok(), Some(200), "{a:?}");
        }
        let (status, body) = net
            .request(1, "POST", "/v1/sign", good)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("replayed"), "{text}");

        // Another user, not allowed by the owner: refused; allowed after the owner says so.
        let other = SigningKey::random(&mut rand_core::OsRng);
        let answers = net
            .sign_shares(&other, &k, msg, &[1, 2, 3])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for (p, a) in answers {
            let e = a.err().unwrap_or_default();
            assert!(e.contains("not_allowed"), "node {p}: {e}");
        }
        // Only the owner may change permissions: another user's request for the owner's key
        // is refused by every node.
        let forged = PermissionsRequest::new(
            net.registry().network_id.clone(),
            k.clone(),
            5,
            vec![address_of(other.verifying_key())],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let forged_auth = auth_of(&other, forged.digest(), forged.network(), now, now + 60);
        let body = serde_json::to_vec(&Authorised {
            request: forged,
            auth: forged_auth,
        })
        .unwrap_or_default();
        let (status, answer) = net
            .request(1, "POST", "/v1/pkp/permissions", body)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status, 403, "{text}");
        assert!(text.contains("not_owner"), "{text}");
        // Setting permissions of one's own key "guarded" does not touch the owner's key.
        let by_other = net
            .set_permissions(
                &other,
                "guarded",
                vec![address_of(other.verifying_key())],
                1,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            by_other.iter().all(|(_, r)| r.is_ok()),
            "another user's own key"
        );
        let answers = net
            .sign_shares(&other, &k, msg, &[1, 2, 3])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for (p, a) in &answers {
            let e = a.as_ref().err().cloned().unwrap_or_default();
            assert!(e.contains("not_allowed"), "node {p}: {e}");
        }
        let set = net
            .set_permissions(&user, "guarded", vec![address_of(other.verifying_key())], 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(set.iter().all(|(_, r)| r.is_ok()), "{set:?}");
        sign_with(&net, &other, &k, msg, &[2, 3, 4]).await;
        // An old sequence number is refused.
        let stale = net
            .set_permissions(&user, "guarded", vec![], 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            stale
                .iter()
                .all(|(_, r)| r.as_ref().err().is_some_and(|e| e.contains("stale_seq"))),
            "{stale:?}"
        );

        // Peer routes need an admitted node certificate: a user's connection is refused.
        for route in ["/v1/peer/commitments", "/v1/peer/dkg"] {
            let (status, answer) = net
                .request(1, "POST", route, b"{}".to_vec())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let text = String::from_utf8_lossy(&answer);
            assert_eq!(status, 403, "{route}: {text}");
            assert!(text.contains("peer_only"), "{route}: {text}");
        }

        // An older registry, validly signed by the authority, is not taken back.
        let authority = key_file(&cluster.path("authority.key"));
        let mut old = net.registry().clone();
        old.epoch = 0;
        old.nodes.truncate(3);
        let signed =
            keynet_protocol::registry::sign(old, &authority).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(cluster.path("registry.json"), signed.to_json())
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.log(0).contains("an epoch below the one held") {
            assert!(Instant::now() < deadline, "{}", cluster.log(0));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        sign_with(&net, &user, &k, [5; 32], &[2, 3, 4]).await;
    });
}

fn auth(user: &SigningKey, request: &SignRequest, issued: u64, expires: u64) -> SignedAuth {
    auth_of(user, request.digest(), request.network(), issued, expires)
}

fn auth_of(
    user: &SigningKey,
    digest: [u8; 32],
    network: &str,
    issued: u64,
    expires: u64,
) -> SignedAuth {
    let m = AuthMessage {
        domain: keynode::devnet::AUTH_DOMAIN.into(),
        address: address_of(user.verifying_key()),
        request_digest: digest,
        network: network.to_owned(),
        nonce: format!("n{issued}x{expires}"),
        issued_at: issued,
        expires_at: expires,
    };
    let text = m.to_text();
    let sig = eip191_sign(text.as_bytes(), user).unwrap_or_else(|e| panic!("{e}"));
    SignedAuth {
        message: text,
        signature: format!("0x{}", hex::encode(sig)),
    }
}

fn body_of(request: &SignRequest, auth: SignedAuth) -> Vec<u8> {
    serde_json::to_vec(&Authorised {
        request: request.clone(),
        auth,
    })
    .unwrap_or_default()
}
