//! `verify::crl::Crl::parse`: an AMD CRL, DER or PEM. Any input must give `Ok` or `Err`,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = attestation_verifier::verify::crl::Crl::parse(data);
});
