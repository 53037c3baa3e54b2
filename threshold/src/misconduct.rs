//! What shows, to anyone, that a FROST DKG member cheated: a round-one package whose
//! commitment has the wrong degree or whose proof of knowledge fails, or a round-two
//! share that contradicts the dealer's own round-one commitment. An honest dealer's
//! packages always pass, so a check that fails on packages the dealer signed (the node
//! layer checks the signatures and that both come from one run) convicts it and nobody
//! else. Silence and equivocation leave no such evidence and are not judged here.

use frost_secp256k1::keys::SecretShare;
use frost_secp256k1::keys::dkg::{round1, round2};
use frost_secp256k1::{Identifier, Secp256K1Sha256};

use crate::dkg::Participant;

/// A fault the packages show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The commitment does not have `t` coefficients.
    #[error("its commitment has {got} coefficients, the threshold is {t}")]
    Degree {
        /// Coefficients committed to.
        got: usize,
        /// The run's threshold.
        t: u16,
    },
    /// The proof of knowledge of the constant term does not verify.
    #[error("its proof of knowledge does not verify")]
    ProofOfKnowledge,
    /// The share it sent does not match its commitment at the receiver.
    #[error("its share to {receiver} does not match its commitment")]
    Share {
        /// Whom the share was for.
        receiver: Participant,
    },
}

/// The fault `dealer`'s packages show, if any: its round-one package for a run with
/// threshold `t`, and optionally the round-two package it sent to `receiver`.
pub fn fault(
    dealer: Participant,
    t: u16,
    round1: &round1::Package,
    share: Option<(Participant, &round2::Package)>,
) -> Option<Fault> {
    let commitment = round1.commitment();
    let got = commitment.coefficients().len();
    if got != usize::from(t) {
        return Some(Fault::Degree { got, t });
    }
    let dealer_id = Identifier::try_from(dealer).ok()?;
    if frost_core::keys::dkg::verify_proof_of_knowledge::<Secp256K1Sha256>(
        dealer_id,
        commitment,
        round1.proof_of_knowledge(),
    )
    .is_err()
    {
        return Some(Fault::ProofOfKnowledge);
    }
    let (receiver, package) = share?;
    let receiver_id = Identifier::try_from(receiver).ok()?;
    let share = SecretShare::new(receiver_id, *package.signing_share(), commitment.clone());
    share.verify().err().map(|_| Fault::Share { receiver })
}
