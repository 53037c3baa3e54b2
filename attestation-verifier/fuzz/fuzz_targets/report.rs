//! `abi::parse_evidence`: a raw 1184-byte report, a MSG_REPORT_RSP, or a report followed
//! by its certificate table. Any input must give `Ok` or `Err`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = attestation_verifier::abi::parse_evidence(data);
});
