//! Parsers never panic, whatever the bytes: reports and their containers, certificate
//! tables, certificates, CRLs and manifests, on arbitrary input and on real input with
//! bytes changed.

mod common;

use attestation_verifier::abi::{self, certtable};
use attestation_verifier::validate::Manifest;
use attestation_verifier::verify::cert::AmdCert;
use attestation_verifier::verify::crl::Crl;
use attestation_verifier::verify::ext::VekExtensions;
use proptest::prelude::*;

fn real(name: &str) -> Vec<u8> {
    std::fs::read(common::data().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn mutate(mut b: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    if !b.is_empty() {
        for (at, v) in edits {
            let i = at % b.len();
            b[i] = *v;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn evidence_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = abi::parse_evidence(&data);
        let _ = certtable::parse(&data);
    }

    #[test]
    fn mutated_containers_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..12),
        cut in proptest::option::of(any::<usize>()),
    ) {
        for f in ["cocos-v2-certtable-parse-only/attestation.bin", "lit-milan-v2-msgrsp-parse-only/snp_report_msg_resp.bin"] {
            let _ = abi::parse_evidence(&mutate(real(f), &edits, cut));
        }
        // The certificate table alone, with offsets and lengths disturbed.
        let table = real("cocos-v2-certtable-parse-only/attestation.bin")[0x4a0..].to_vec();
        let _ = certtable::parse(&mutate(table, &edits, cut));
    }

    #[test]
    fn certificate_and_crl_parsers_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        for f in ["virtee-milan-v2/vcek.der", "mstav-turin-v5/report.bin", "coco-trustee-milan-v2-badvcek-new/vcek.der"] {
            if let Ok(c) = AmdCert::parse("VCEK", &mutate(real(f), &edits, cut)) {
                let e = VekExtensions::read(&c);
                let _ = e.product().map(|p| e.hwid(p));
            }
        }
        let _ = Crl::parse(&mutate(real("amd-roots/turin/crl-2026-08-19.der"), &edits, cut));
        let _ = Crl::parse(&mutate(real("amd-roots/genoa/crl-2024-10-23.pem"), &edits, cut));
    }

    #[test]
    fn manifest_parser_never_panics(s in ".{0,300}") {
        let _ = Manifest::parse(s.as_bytes());
    }
}
