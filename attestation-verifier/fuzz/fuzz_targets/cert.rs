//! `verify::cert::AmdCert::parse`: a DER X.509 certificate (VCEK/VLEK/ASK/ARK). Any input
//! must give `Ok` or `Err`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = attestation_verifier::verify::cert::AmdCert::parse("VCEK", data);
});
