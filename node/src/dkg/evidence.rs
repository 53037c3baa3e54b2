//! DKG messages as evidence: every message is signed by its sender's identity key, and a
//! member's own signed packages that show it cheated (see
//! [`keynet_threshold::misconduct`]) are a proof anyone holding the registry can check.
//! A node excludes a member from the next attempt only on such a proof, and carries the
//! proofs in every message of that attempt, so the other members check them and follow.
//!
//! What a proof must hold so that nobody can frame an honest member: each message signed
//! by the accused under its registry key, for this network and epoch; both messages (a
//! round-one package and the round-two share it sent to the accuser) from one run of the
//! accused (same attempt, exclusions and session, the session being fresh randomness the
//! accused drew for that run, so packages of two of its runs, before and after a restart,
//! are never paired); and a fault the packages show by themselves. An honest member's
//! packages of one run never show a fault.

use std::sync::Arc;

use k256::ecdsa::Signature;
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use keynet_protocol::api::{DkgBody, Misconduct, PeerDkg};
use keynet_protocol::registry::Registry;
use keynet_threshold::dkg::{Message, Participant};
use keynet_threshold::misconduct::{Fault, fault};
use keynet_threshold::wire::FrostWire;

/// Signs a digest with the node's identity key (64 bytes, r || s); `None` if it cannot.
pub type Sign = Arc<dyn Fn(&[u8; 32]) -> Option<[u8; 64]> + Send + Sync>;

/// Most messages a proof may hold: a round-one package and one share.
const MAX_EVIDENCE: usize = 2;

/// Signs `msg` as its sender.
pub fn sign(msg: &mut PeerDkg, sign: &Sign) {
    msg.signature = sign(&msg.signing_digest()).map_or_else(String::new, hex::encode);
}

/// The session's length in hex: 16 random bytes.
const SESSION_HEX: usize = 32;

/// Checks what bounds a message, and so every proof made of messages: a session of 16 bytes
/// in hex, and a body no larger than a DKG message of this registry can be (its largest
/// is a BLS commitment of t points, or a list naming every member), so a member cannot
/// grow the proofs every later message must carry past what a peer takes.
pub fn well_formed(registry: &Registry, msg: &PeerDkg) -> Result<(), String> {
    if msg.session.len() != SESSION_HEX || !msg.session.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("session: {SESSION_HEX} hex digits"));
    }
    let items = registry.nodes.len().max(registry.threshold() as usize);
    let most = 1024 + 256 * items;
    let len = serde_json::to_vec(&msg.body).map_or(usize::MAX, |b| b.len());
    if len > most {
        return Err(format!(
            "a body of {len} bytes; a DKG message of this registry has at most {most}"
        ));
    }
    Ok(())
}

/// Checks that `msg` is signed by the registry's member `msg.from`.
pub fn check_signature(registry: &Registry, msg: &PeerDkg) -> Result<(), String> {
    let entry = registry
        .entry(msg.from)
        .ok_or_else(|| format!("signed by participant {}, not a member", msg.from))?;
    let mut raw = [0u8; 64];
    hex::decode_to_slice(&msg.signature, &mut raw)
        .map_err(|e| format!("signature: 64 bytes of hex: {e}"))?;
    let signature =
        Signature::from_slice(&raw).map_err(|e| format!("signature: not ECDSA r || s: {e}"))?;
    entry
        .identity_key
        .verifying_key()
        .verify_prehash(&msg.signing_digest(), &signature)
        .map_err(|_| format!("signature: not by participant {}", msg.from))
}

/// The proof that `accused` cheated, from the messages it sent this node in one run
/// (`round1`, and `round2` for this node), if they show a fault.
pub fn build(
    registry: &Registry,
    accused: Participant,
    round1: &PeerDkg,
    round2: Option<&PeerDkg>,
) -> Option<Misconduct> {
    let strip = |m: &PeerDkg| PeerDkg {
        proofs: vec![],
        ..m.clone()
    };
    let mut evidence = vec![strip(round1)];
    evidence.extend(round2.map(strip));
    let proof = Misconduct { evidence };
    // Only what would convince a peer is sent; with the share it must show a fault that
    // the round-one package alone may not.
    match verify(registry, &proof) {
        Ok((who, _)) if who == accused => Some(proof),
        _ => None,
    }
}

/// Whom `proof` convicts, and of what; or why it convicts nobody.
pub fn verify(registry: &Registry, proof: &Misconduct) -> Result<(Participant, Fault), String> {
    let t = u16::try_from(registry.threshold()).unwrap_or(u16::MAX);
    if proof.evidence.is_empty() || proof.evidence.len() > MAX_EVIDENCE {
        return Err(format!(
            "a proof holds 1 to {MAX_EVIDENCE} messages, not {}",
            proof.evidence.len()
        ));
    }
    let first = &proof.evidence[0];
    let accused = first.from;
    let mut round1 = None;
    let mut share = None;
    for m in &proof.evidence {
        if (m.network.as_str(), m.epoch) != (registry.network_id.as_str(), registry.epoch) {
            return Err(format!(
                "evidence of {} epoch {}, not of this registry",
                m.network, m.epoch
            ));
        }
        if !m.proofs.is_empty() {
            return Err("evidence carries proofs of its own".into());
        }
        well_formed(registry, m)?;
        if (m.from, m.attempt, &m.excluded, &m.session)
            != (accused, first.attempt, &first.excluded, &first.session)
        {
            return Err("evidence from more than one run or sender".into());
        }
        check_signature(registry, m)?;
        let DkgBody::Frost(wire) = &m.body else {
            return Err("evidence is not a FROST package".into());
        };
        match (wire.decode().map_err(|e| e.to_string())?, m.to) {
            (Message::Round1(p), None) if round1.is_none() => round1 = Some(p),
            (Message::Round2(p), Some(to)) if share.is_none() => share = Some((to, p)),
            _ => return Err("evidence is one round-one package and at most one share".into()),
        }
    }
    let round1 = round1.ok_or("evidence without the round-one package")?;
    let share = share.as_ref().map(|(to, p)| (*to, p.as_ref()));
    match fault(accused, t, &round1, share) {
        Some(f) => Ok((accused, f)),
        None => Err(format!("participant {accused}'s packages show no fault")),
    }
}

/// Whether `body` is a package worth keeping as evidence (FROST round one or two).
pub fn is_package(body: &DkgBody) -> bool {
    matches!(
        body,
        DkgBody::Frost(FrostWire::Round1(_) | FrostWire::Round2(_))
    )
}
