//! `abi::certtable::parse`: the extended-report certificate table (GUID, offset, length
//! entries up to an all-zero terminator). Any input must give `Ok` or `Err`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = attestation_verifier::abi::certtable::parse(data);
});
