//! Mutation suite: for every accepted real case, each kind of tampering is rejected, and by
//! the check that should catch it. Prints the number of mutations tried (zero may be
//! accepted).

mod common;

use attestation_verifier::abi::Report;
use attestation_verifier::validate::Policy;
use attestation_verifier::verdict::{Status, Verdict};
use attestation_verifier::verify::roots::TrustStore;
use attestation_verifier::verify::{Inputs, Vek};
use attestation_verifier::{Verifier, verify_report};

fn permissive() -> Policy {
    Policy {
        allow_debug: true,
        ..Policy::default()
    }
}

fn failed(v: &Verdict, check: &str) -> bool {
    v.checks
        .iter()
        .any(|c| c.check == check && c.status == Status::Fail)
}

struct Tally {
    tried: usize,
}

impl Tally {
    /// Records one mutation that must be rejected, by `check` when given.
    fn rejected(&mut self, what: &str, v: &Verdict, check: Option<&str>) {
        self.tried += 1;
        assert!(!v.accepted, "FALSE ACCEPT: {what}");
        if let Some(c) = check {
            assert!(
                failed(v, c),
                "{what}: expected check {c} to fail; failures: {:?}",
                v.checks
                    .iter()
                    .filter(|c| c.status == Status::Fail)
                    .map(|c| &c.check)
                    .collect::<Vec<_>>()
            );
        }
    }
}

fn accepted_cases() -> Vec<(common::Case, Vec<u8>, Inputs)> {
    common::cases()
        .into_iter()
        .filter(|c| c.verdict() == "ACCEPT")
        .filter_map(|c| {
            let r = c.report()?;
            let i = c.inputs()?;
            Some((c, r, i))
        })
        .collect()
}

#[test]
fn every_signed_byte_and_signature_byte_flip_is_rejected() {
    let verifier = Verifier::new(TrustStore::amd(), permissive());
    let mut t = Tally { tried: 0 };
    let cases = accepted_cases();
    assert!(cases.len() >= 20);
    for (case, report, inputs) in &cases {
        let ok = verifier.verify(
            &Report::parse(report).unwrap_or_else(|e| panic!("{e}")),
            inputs,
        );
        assert!(
            ok.map(|v| v.accepted).unwrap_or(false),
            "{}: baseline must be accepted",
            case.name
        );
        for i in 0..report.len() {
            let mut m = report.clone();
            m[i] ^= 0x01;
            match Report::parse(&m) {
                // A version outside 2-5 is refused by the parser: also a rejection.
                Err(_) => t.tried += 1,
                Ok(r) => {
                    let v = verifier
                        .verify(&r, inputs)
                        .unwrap_or_else(|e| panic!("{e}"));
                    t.rejected(
                        &format!("{} byte {i:#x}", case.name),
                        &v,
                        Some("report_signature"),
                    );
                }
            }
        }
    }
    eprintln!(
        "byte flips: {} mutations over {} cases, 0 accepted",
        t.tried,
        cases.len()
    );
    assert!(t.tried >= cases.len() * 0x4a0);
}

#[test]
fn wrong_certificates_times_and_roots_are_rejected() {
    let trust = TrustStore::amd();
    let mut t = Tally { tried: 0 };
    let cases = accepted_cases();
    let other_ark = |p: &str| {
        let pem = std::fs::read(format!("{}/roots/{p}/ark.pem", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_default();
        attestation_verifier::kds::offline::pem_or_der_certs(&pem)
            .unwrap_or_default()
            .remove(0)
    };
    let ask_of = |p: &str| {
        let pem = std::fs::read(format!("{}/roots/{p}/ask.pem", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_default();
        attestation_verifier::kds::offline::pem_or_der_certs(&pem)
            .unwrap_or_default()
            .remove(0)
    };
    let synth = common::synth::build();
    for (case, bytes, inputs) in &cases {
        let report = Report::parse(bytes).unwrap_or_else(|e| panic!("{e}"));
        let product = case.expected["product"]
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase();
        let run = |i: &Inputs| {
            verify_report(&report, i, &permissive(), &trust)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name))
        };

        // Another chip's VCEK of the same product, AMD-signed.
        for (other, _, oi) in cases.iter().filter(|(o, _, _)| {
            o.name != case.name && o.expected["product"] == case.expected["product"]
        }) {
            if matches!((&oi.vek, &inputs.vek), (Vek::Vcek(a), Vek::Vcek(b)) if a == b) {
                continue; // the same chip and TCB published twice
            }
            let i = Inputs {
                vek: oi.vek.clone(),
                ..inputs.clone()
            };
            t.rejected(
                &format!("{} with {}'s VEK", case.name, other.name),
                &run(&i),
                Some("report_signature"),
            );
        }
        // Another product's chain: its ASK as intermediate, its ARK as root.
        for p in ["milan", "genoa", "turin"]
            .iter()
            .filter(|p| **p != product)
        {
            let i = Inputs {
                intermediate: Some(ask_of(p)),
                ..inputs.clone()
            };
            let name = if matches!(inputs.vek, Vek::Vlek(_)) {
                "vlek_signed_by_asvk"
            } else {
                "vcek_signed_by_ask"
            };
            t.rejected(
                &format!("{} with the {p} ASK", case.name),
                &run(&i),
                Some(name),
            );
            let i = Inputs {
                ark: Some(other_ark(p)),
                ..inputs.clone()
            };
            t.rejected(
                &format!("{} with the {p} ARK", case.name),
                &run(&i),
                Some("ark_pinned"),
            );
        }
        // Outside the validity window: after the VEK expires, before it was issued.
        let i = Inputs {
            at: inputs.at + 20 * 365 * 86_400,
            ..inputs.clone()
        };
        t.rejected(
            &format!("{} 20 years later", case.name),
            &run(&i),
            Some("cert_validity"),
        );
        let i = Inputs {
            at: inputs.at - 2 * 86_400,
            ..inputs.clone()
        };
        t.rejected(
            &format!("{} before issue", case.name),
            &run(&i),
            Some("cert_validity"),
        );
        // A self-made ARK supplied as the root.
        let i = Inputs {
            ark: Some(synth.ark_der.clone()),
            ..inputs.clone()
        };
        t.rejected(
            &format!("{} with a self-made ARK", case.name),
            &run(&i),
            Some("ark_pinned"),
        );
        // A self-made ASK.
        let i = Inputs {
            intermediate: Some(synth.ask_der.clone()),
            ..inputs.clone()
        };
        t.rejected(
            &format!("{} with a self-made ASK", case.name),
            &run(&i),
            None,
        );
    }
    eprintln!(
        "certificate/time/root mutations: {} over {} cases, 0 accepted",
        t.tried,
        cases.len()
    );
    assert!(t.tried >= cases.len() * 8);
}

#[test]
fn self_made_chain_is_rejected_unless_trusted_explicitly_and_revocation_bites() {
    let s = common::synth::build();
    let report = Report::parse(&s.report).unwrap_or_else(|e| panic!("{e}"));
    let at = 1_735_689_600; // 2025-01-01
    let inputs = Inputs {
        vek: Vek::Vcek(s.vcek_der.clone()),
        ark: Some(s.ark_der.clone()),
        intermediate: Some(s.ask_der.clone()),
        crl: None,
        at,
        product: None,
    };
    // AMD roots only: the self-made ARK is refused.
    let v = verify_report(&report, &inputs, &permissive(), &TrustStore::amd())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!v.accepted);
    assert!(failed(&v, "ark_pinned"));
    assert!(!v.simulated);

    // Trusted explicitly: accepted, and flagged simulated.
    let trust = TrustStore::amd().with_simulated(s.anchor());
    let v =
        verify_report(&report, &inputs, &permissive(), &trust).unwrap_or_else(|e| panic!("{e}"));
    assert!(v.accepted, "{:#?}", v.checks);
    assert!(v.simulated);

    // A clean CRL passes; one revoking the ASK in use rejects, by the CRL check.
    let clean = Inputs {
        crl: Some(s.crl_clean.clone()),
        ..inputs.clone()
    };
    let v = verify_report(&report, &clean, &permissive(), &trust).unwrap_or_else(|e| panic!("{e}"));
    assert!(v.accepted, "{:#?}", v.checks);
    let revoked = Inputs {
        crl: Some(s.crl_revoking_ask.clone()),
        ..inputs.clone()
    };
    let v =
        verify_report(&report, &revoked, &permissive(), &trust).unwrap_or_else(|e| panic!("{e}"));
    assert!(!v.accepted);
    assert!(failed(&v, "crl"));
    assert!(
        v.checks
            .iter()
            .any(|c| c.check == "crl" && c.detail.contains("revoked"))
    );
    // A stale CRL rejects too.
    let stale = Inputs {
        at: 1_924_992_000,
        ..clean
    }; // 2031, after nextUpdate (and VCEK expiry)
    let v = verify_report(&report, &stale, &permissive(), &trust).unwrap_or_else(|e| panic!("{e}"));
    assert!(failed(&v, "crl"));
}

#[test]
fn real_crls_are_checked() {
    let d = common::data();
    let trust = TrustStore::amd();
    let case = common::cases()
        .into_iter()
        .find(|c| c.name == "coco-trustee-e2e-genoa-zen4c-v3")
        .unwrap_or_else(|| panic!("case"));
    let report =
        Report::parse(&case.report().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let genoa_crl = std::fs::read(d.join("amd-roots/genoa/crl-2024-10-23.pem")).unwrap_or_default();
    let milan_crl = std::fs::read(d.join("amd-roots/milan/crl-2025-05-06.pem")).unwrap_or_default();
    let inside = 1_748_736_000; // 2025-06-01: inside the Genoa CRL and VCEK windows
    let base = Inputs {
        at: inside,
        ..case.inputs().unwrap_or_else(|| panic!("inputs"))
    };
    // The Genoa CRL revokes only the retired ASK 0x020001, not SEV-Genoa 0x020002.
    let i = Inputs {
        crl: Some(genoa_crl.clone()),
        ..base.clone()
    };
    let v = verify_report(&report, &i, &permissive(), &trust).unwrap_or_else(|e| panic!("{e}"));
    assert!(v.accepted, "{:#?}", v.checks);
    // Another product's CRL is not signed by this ARK.
    let i = Inputs {
        crl: Some(milan_crl),
        ..base.clone()
    };
    let v = verify_report(&report, &i, &permissive(), &trust).unwrap_or_else(|e| panic!("{e}"));
    assert!(failed(&v, "crl"));
    // Past nextUpdate (2025-11-03) the CRL is stale.
    let i = Inputs {
        crl: Some(genoa_crl),
        at: 1_767_225_600,
        ..base
    };
    let v = verify_report(&report, &i, &permissive(), &trust).unwrap_or_else(|e| panic!("{e}"));
    assert!(failed(&v, "crl"));
}

#[test]
fn hwid_is_accepted_raw_and_as_octet_string() {
    for wrap in [false, true] {
        let s = common::synth::build_with(wrap);
        let report = Report::parse(&s.report).unwrap_or_else(|e| panic!("{e}"));
        let inputs = Inputs {
            vek: Vek::Vcek(s.vcek_der.clone()),
            ark: None,
            intermediate: None,
            crl: None,
            at: 1_735_689_600,
            product: None,
        };
        let trust = TrustStore::amd().with_simulated(s.anchor());
        let v = verify_report(&report, &inputs, &permissive(), &trust)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(v.accepted, "{:#?}", v.checks);
        let c = v
            .checks
            .iter()
            .find(|c| c.check == "chip_id_matches_hwid")
            .unwrap_or_else(|| panic!("no check"));
        assert!(
            c.detail.contains(if wrap { "OctetString" } else { "Raw" }),
            "{}",
            c.detail
        );
        // And a different chip ID is still caught in either encoding.
        let mut other = s.report.clone();
        other[0x1a0] ^= 1;
        let r = Report::parse(&other).unwrap_or_else(|e| panic!("{e}"));
        let v = verify_report(&r, &inputs, &permissive(), &trust).unwrap_or_else(|e| panic!("{e}"));
        assert!(failed(&v, "chip_id_matches_hwid"));
    }
}
