//! Every real case in tests/data/snp gets the expected parsed fields and the expected
//! verdict, with each individual check agreeing with the independently established ground
//! truth in its expected.json.

mod common;

use attestation_verifier::abi::{self, Container};
use attestation_verifier::kds::Product;
use attestation_verifier::validate::Policy;
use attestation_verifier::verdict::Status;
use attestation_verifier::verify::roots::TrustStore;
use attestation_verifier::verify_report;
use serde_json::Value;

/// Every field of expected.json's "report" must equal ours.
#[test]
fn parsed_fields_match_ground_truth() {
    let mut compared = 0;
    for case in common::cases() {
        let Some(bytes) = case.report() else { continue };
        let ev = abi::parse_evidence(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(ev.container, Container::Raw);
        let product: Option<Product> = case.expected["product"]
            .as_str()
            .and_then(|p| p.parse().ok());
        let ours = abi::json::report_json(&ev.report, product);
        let want = case.expected["report"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: no report", case.name));
        for (k, v) in want {
            assert_eq!(ours.get(k), Some(v), "{}: field {k}", case.name);
            compared += 1;
        }
    }
    assert!(compared > 700, "only {compared} fields compared");
}

/// Wrapped forms (the guest driver's response, an extended report with a certificate
/// table) give the same report as report.bin.
#[test]
fn wrappers_give_the_same_report() {
    let d = common::data();
    let raw =
        std::fs::read(d.join("lit-milan-v2-msgrsp-parse-only/report.bin")).unwrap_or_default();
    let rsp = std::fs::read(d.join("lit-milan-v2-msgrsp-parse-only/snp_report_msg_resp.bin"))
        .unwrap_or_default();
    let ev = abi::parse_evidence(&rsp).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev.container, Container::ReportResponse);
    assert_eq!(&ev.report.raw[..], &raw[..]);

    let raw = std::fs::read(d.join("cocos-v2-certtable-parse-only/report.bin")).unwrap_or_default();
    let ext =
        std::fs::read(d.join("cocos-v2-certtable-parse-only/attestation.bin")).unwrap_or_default();
    let ev = abi::parse_evidence(&ext).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev.container, Container::Extended);
    assert_eq!(&ev.report.raw[..], &raw[..]);
    assert_eq!(ev.certs.len(), 1);
    assert_eq!(
        ev.certs[0].data,
        hex::decode("08000000020f8000").unwrap_or_default()
    );
    assert!(matches!(
        ev.certs[0].kind,
        abi::certtable::CertKind::Other(_)
    ));
}

fn check_status(v: &attestation_verifier::verdict::Verdict, name: &str) -> Option<Status> {
    v.checks.iter().find(|c| c.check == name).map(|c| c.status)
}

/// The verdict and each check agree with the ground truth.
#[test]
fn verdicts_match_ground_truth() {
    let trust = TrustStore::amd();
    // Authenticity is what the ground truth covers; policy defaults are tested elsewhere.
    let permissive = Policy {
        allow_debug: true,
        ..Policy::default()
    };
    let (mut accepted, mut rejected) = (0, 0);
    for case in common::cases() {
        let (Some(bytes), Some(inputs)) = (case.report(), case.inputs()) else {
            continue;
        };
        if case.parse_only() {
            continue;
        }
        let report = abi::Report::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let v = verify_report(&report, &inputs, &permissive, &trust)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let expect_accept = case.verdict() == "ACCEPT";
        assert_eq!(
            v.accepted,
            expect_accept,
            "{}: verdict; checks: {:#?}",
            case.name,
            v.checks
                .iter()
                .filter(|c| c.status != Status::Pass)
                .collect::<Vec<_>>()
        );
        if expect_accept {
            accepted += 1;
        } else {
            rejected += 1;
        }
        let vlek = matches!(inputs.vek, attestation_verifier::verify::Vek::Vlek(_));
        let map: [(&str, &str); 6] = [
            ("report_signature", "report_signature"),
            (
                "vcek_signed_by_ask",
                if vlek {
                    "vlek_signed_by_asvk"
                } else {
                    "vcek_signed_by_ask"
                },
            ),
            (
                "ask_signed_by_ark",
                if vlek {
                    "asvk_signed_by_ark"
                } else {
                    "ask_signed_by_ark"
                },
            ),
            ("ark_self_signed", "ark_self_signed"),
            ("reported_tcb_matches_vcek", "reported_tcb_matches_vek"),
            ("chip_id_matches_hwID", "chip_id_matches_hwid"),
        ];
        for (theirs, ours) in map {
            let Some(Value::String(want)) = case.expected["checks"].get(theirs) else {
                continue;
            };
            let want = if want.starts_with("PASS") {
                Status::Pass
            } else if want.starts_with("FAIL") {
                Status::Fail
            } else {
                Status::Skipped
            };
            assert_eq!(
                check_status(&v, ours),
                Some(want),
                "{}: check {ours}",
                case.name
            );
        }
        assert_eq!(
            v.product.map(|p| p.name()),
            case.expected["product"].as_str(),
            "{}: product",
            case.name
        );
    }
    assert!(
        accepted >= 20 && rejected >= 2,
        "accepted {accepted}, rejected {rejected}"
    );
}
