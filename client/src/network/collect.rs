//! Collecting BLS signature shares until a threshold of them combine to a verified
//! signature, without any I/O (the network code feeds it answers), so every way nodes can
//! fail is testable here.
//!
//! Every share is checked against its node's public share and the combination against the
//! network key, all in one batched multi-pairing; if the batch fails, each share is checked
//! alone, the bad ones are dropped and named, and the rest are combined again.

use std::collections::BTreeMap;

use blsful::{Signature, SignatureShare};
use keynet_encryption::Bls;
use keynet_protocol::api::BlsShare;
use keynet_threshold::bls_batch::{share_of, verify_same_message};
use keynet_threshold::dkg::Participant;
use keynet_threshold::wire::bls_share_from_hex;

use super::Refusal;
use super::bls::BlsKeys;

/// Shares collected so far, and what went wrong with the others.
pub(super) struct Collector<'k> {
    keys: &'k BlsKeys,
    signed: Vec<u8>,
    t: usize,
    shares: BTreeMap<Participant, SignatureShare<Bls>>,
    /// Nodes whose answer was not a valid share, and why.
    pub(super) bad: Vec<(Participant, String)>,
    /// Nodes that answered with an error or not at all.
    pub(super) refused: Vec<(Participant, Refusal)>,
}

/// A verified signature and the participants whose shares made it.
pub(super) type Done = (Signature<Bls>, Vec<Participant>);

/// Participants whose shares do not verify (empty: the shares verify but their combination
/// does not).
pub(super) struct Culprits(pub(super) Vec<Participant>);

impl<'k> Collector<'k> {
    /// Collects shares over `signed` under `keys`, threshold `t`.
    pub(super) fn new(keys: &'k BlsKeys, signed: Vec<u8>, t: usize) -> Self {
        Collector {
            keys,
            signed,
            t,
            shares: BTreeMap::new(),
            bad: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// Shares held (not yet known to be bad).
    pub(super) fn held(&self) -> usize {
        self.shares.len()
    }

    /// Takes a node's answer: a share (parsed, and carrying the node's own identifier) or
    /// the node's refusal. An answer that is not a share at all counts as a bad share.
    pub(super) fn answer(&mut self, p: Participant, a: Result<BlsShare, Refusal>) {
        match a {
            Ok(answer) => match parse_share(&answer, p) {
                Ok(share) => {
                    self.shares.insert(p, share);
                }
                Err(why) => self.bad.push((p, why)),
            },
            Err(Refusal::BadAnswer(why)) => self.bad.push((p, format!("answer: {why}"))),
            Err(r) => self.refused.push((p, r)),
        }
    }

    /// With at least t shares, the verified signature and the participants combined;
    /// shares found bad on the way are dropped (and recorded). `None` when fewer than t good
    /// shares are held.
    pub(super) fn combine(&mut self) -> Result<Option<Done>, ()> {
        while self.shares.len() >= self.t {
            match combine_checked(self.keys, &self.signed, &self.shares, self.t) {
                Ok(done) => return Ok(Some(done)),
                Err(Culprits(ps)) if !ps.is_empty() => {
                    for p in ps {
                        self.shares.remove(&p);
                        self.bad.push((p, "share does not verify".into()));
                    }
                }
                // Every share verifies but the combination does not: cannot happen with
                // shares of one key; say so rather than guess.
                Err(_) => return Err(()),
            }
        }
        Ok(None)
    }
}

/// A node's share, if its answer parses and the share carries the node's own identifier.
pub(super) fn parse_share(a: &BlsShare, p: Participant) -> Result<SignatureShare<Bls>, String> {
    let share = bls_share_from_hex(&a.share).map_err(|e| e.to_string())?;
    share_of(&share, p)
        .map(|_| share)
        .ok_or_else(|| format!("share carries another participant's identifier than {p}"))
}

/// Combines the first t shares and checks every share and the result in one batch (one
/// multi-pairing); if that fails, checks each share alone to name the bad ones. Returns the
/// verified signature and the participants combined.
pub(super) fn combine_checked(
    keys: &BlsKeys,
    signed: &[u8],
    shares: &BTreeMap<Participant, SignatureShare<Bls>>,
    t: usize,
) -> Result<Done, Culprits> {
    let mut pairs = Vec::with_capacity(shares.len() + 1);
    let mut unknown = Vec::new();
    for (p, s) in shares {
        match (keys.shares.get(p), share_of(s, *p)) {
            (Some(public), Some(point)) => pairs.push((public.0.0.value.0, point)),
            _ => unknown.push(*p),
        }
    }
    if !unknown.is_empty() {
        return Err(Culprits(unknown));
    }
    let used: Vec<Participant> = shares.keys().take(t).copied().collect();
    let list: Vec<SignatureShare<Bls>> = shares.values().take(t).cloned().collect();
    if let Ok(sig) = Signature::from_shares(&list) {
        pairs.push((keys.public.0, *sig.as_raw_value()));
        if verify_same_message(&pairs, signed) {
            return Ok((sig, used));
        }
    }
    // Someone is wrong: find out who, one share at a time.
    let culprits: Vec<Participant> = shares
        .iter()
        .filter(|(p, s)| {
            keys.shares
                .get(p)
                .is_none_or(|public| s.verify(public, signed).is_err())
        })
        .map(|(p, _)| *p)
        .collect();
    Err(Culprits(culprits))
}

#[cfg(test)]
mod tests {
    use blsful::SignatureSchemes;
    use keynet_threshold::bls_dkg::{BlsKey, run_local};
    use keynet_threshold::wire::{bls_public_share, bls_share_hex};

    use super::*;

    fn keys(local: &[BlsKey]) -> BlsKeys {
        BlsKeys {
            public: local[0].public,
            shares: local[0]
                .public_shares
                .iter()
                .map(|(p, v)| (*p, bls_public_share(*p, v)))
                .collect(),
        }
    }

    fn share_answer(share: String) -> BlsShare {
        BlsShare {
            node: keynet_protocol::IdentityKey::from_verifying_key(
                k256::ecdsa::SigningKey::from_bytes(&[1; 32].into())
                    .unwrap_or_else(|e| panic!("{e}"))
                    .verifying_key(),
            ),
            participant: 1,
            share,
            signed: String::new(),
            conditions_hash: String::new(),
        }
    }

    fn answer(local: &[BlsKey], who: usize, msg: &[u8]) -> Result<BlsShare, Refusal> {
        let s = local[who - 1]
            .share
            .sign(SignatureSchemes::Basic, msg)
            .unwrap_or_else(|e| panic!("{e}"));
        Ok(share_answer(
            bls_share_hex(&s).unwrap_or_else(|e| panic!("{e}")),
        ))
    }

    fn unreachable() -> Result<BlsShare, Refusal> {
        Err(Refusal::Unreachable("y".into()))
    }

    fn done(c: &mut Collector<'_>) -> Done {
        c.combine()
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no signature"))
    }

    fn p(i: usize) -> Participant {
        Participant::try_from(i).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn t_good_shares_combine_to_the_network_signature() {
        let local = run_local(4, 3).unwrap_or_else(|e| panic!("{e}"));
        let k = keys(&local);
        let msg = b"m".to_vec();
        let mut c = Collector::new(&k, msg.clone(), 3);
        for i in [2, 3] {
            c.answer(p(i), answer(&local, i, &msg));
        }
        assert!(matches!(c.combine(), Ok(None)), "two shares are not enough");
        c.answer(p(4), answer(&local, 4, &msg));
        let (sig, used) = done(&mut c);
        assert_eq!(used, vec![p(2), p(3), p(4)]);
        assert!(sig.verify(&k.public, &msg).is_ok());
    }

    #[test]
    fn bad_shares_are_dropped_and_named_and_the_rest_still_combine() {
        let local = run_local(7, 5).unwrap_or_else(|e| panic!("{e}"));
        let k = keys(&local);
        let msg = b"the identity".to_vec();
        let mut c = Collector::new(&k, msg.clone(), 5);
        // Wave one: 3 good, one over another message, one relabelled, one unreachable.
        for i in [1, 2, 3] {
            c.answer(p(i), answer(&local, i, &msg));
        }
        c.answer(p(4), answer(&local, 4, b"another message"));
        c.answer(p(5), answer(&local, 6, &msg));
        c.answer(p(6), Ok(share_answer("00".into())));
        c.answer(p(7), unreachable());
        assert!(matches!(c.combine(), Ok(None)));
        assert_eq!(c.held(), 4, "the wrong-message share is held until checked");
        // It is found when t are held: here with node 7's share after a retry.
        c.answer(p(7), answer(&local, 7, &msg));
        assert!(matches!(c.combine(), Ok(None)), "4 good shares of 5 needed");
        let named: Vec<Participant> = c.bad.iter().map(|(q, _)| *q).collect();
        assert_eq!(named, vec![p(5), p(6), p(4)], "{:?}", c.bad);
        assert_eq!(c.held(), 4);
        assert_eq!(c.refused.len(), 1);
    }

    #[test]
    fn a_bad_share_among_more_than_t_is_replaced_by_a_good_one() {
        let local = run_local(4, 3).unwrap_or_else(|e| panic!("{e}"));
        let k = keys(&local);
        let msg = b"x".to_vec();
        let mut c = Collector::new(&k, msg.clone(), 3);
        c.answer(p(1), answer(&local, 1, b"y"));
        for i in [2, 3, 4] {
            c.answer(p(i), answer(&local, i, &msg));
        }
        let (sig, used) = done(&mut c);
        assert_eq!(used, vec![p(2), p(3), p(4)]);
        assert!(sig.verify(&k.public, &msg).is_ok());
        assert_eq!(c.bad.len(), 1);
    }

    #[test]
    fn shares_under_other_keys_never_combine() {
        let local = run_local(4, 3).unwrap_or_else(|e| panic!("{e}"));
        let other = run_local(4, 3).unwrap_or_else(|e| panic!("{e}"));
        let k = keys(&local);
        let msg = b"x".to_vec();
        let mut c = Collector::new(&k, msg.clone(), 3);
        for i in [1, 2, 3, 4] {
            c.answer(p(i), answer(&other, i, &msg));
        }
        assert!(matches!(c.combine(), Ok(None)));
        assert_eq!(c.bad.len(), 4);
    }
}
