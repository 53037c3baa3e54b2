//! `snp-verify` as a user runs it: every real case through the CLI, with the exit code,
//! JSON shape and parsed fields checked; offline certificate directories; unusable input.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn snp_verify(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_snp-verify"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run snp-verify: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rfc3339(t: i64) -> String {
    attestation_verifier::verify::rfc3339(t)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn every_case_through_the_cli() {
    let mut ran = 0;
    for case in common::cases() {
        let report = case.dir.join("report.bin");
        if !report.exists() {
            continue;
        }
        let want = &case.expected["report"];
        if case.parse_only() || case.vek_file().is_none() {
            let (code, out, err) = snp_verify(&["parse", &s(&report), "--json"]);
            assert_eq!(code, 0, "{}: {err}", case.name);
            let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
            for k in [
                "measurement",
                "chip_id",
                "report_data",
                "policy",
                "version",
                "current_version",
            ] {
                assert_eq!(v[k], want[k], "{}: {k}", case.name);
            }
            ran += 1;
            continue;
        }
        let Some((vek, vlek)) = case.vek_file() else {
            continue;
        };
        let at = rfc3339(case.at());
        let flag = if vlek { "--vlek" } else { "--vcek" };
        let (code, out, err) = snp_verify(&[
            "report",
            &s(&report),
            flag,
            &s(&vek),
            "--at",
            &at,
            "--allow-debug",
            "--json",
        ]);
        let accept = case.verdict() == "ACCEPT";
        assert_eq!(
            code,
            if accept { 0 } else { 1 },
            "{}: {err}{out}",
            case.name
        );
        let v: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}: {out}", case.name));
        assert_eq!(v["accepted"], accept);
        assert_eq!(v["simulated"], false);
        for c in v["checks"].as_array().unwrap_or(&vec![]) {
            let st = c["status"].as_str().unwrap_or("");
            assert!(
                ["pass", "fail", "skipped"].contains(&st),
                "{}: status {st}",
                case.name
            );
            assert!(!c["detail"].as_str().unwrap_or("").is_empty());
        }
        for (k, val) in want.as_object().into_iter().flatten() {
            assert_eq!(&v["report"][k], val, "{}: report.{k}", case.name);
        }
        ran += 1;

        // Plain output: a verdict line, and each failure names its check.
        let (code2, plain, _) = snp_verify(&[
            "report",
            &s(&report),
            flag,
            &s(&vek),
            "--at",
            &at,
            "--allow-debug",
        ]);
        assert_eq!(code2, code);
        assert!(
            plain.starts_with(if accept { "ACCEPTED" } else { "REJECTED" }),
            "{plain}"
        );
    }
    assert!(ran >= 28, "ran {ran}");
}

#[test]
fn offline_directory_in_snpguest_layout() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let roots = Path::new(env!("CARGO_MANIFEST_DIR")).join("roots/milan");
    let case = common::data().join("virtee-milan-v2");
    for (from, to) in [
        (roots.join("ark.pem"), "ark.pem"),
        (roots.join("ask.pem"), "ask.pem"),
        (case.join("vcek.der"), "vcek.der"),
    ] {
        std::fs::copy(&from, dir.path().join(to)).unwrap_or_else(|e| panic!("{e}"));
    }
    let r = s(&case.join("report.bin"));
    let (code, out, err) = snp_verify(&[
        "report",
        &r,
        "--certs",
        &s(dir.path()),
        "--at",
        "2024-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}{out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
    let ark = v["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["check"] == "ark_pinned"))
        .cloned()
        .unwrap_or_default();
    assert!(
        ark["detail"].as_str().unwrap_or("").contains("byte-equal"),
        "{ark}"
    );

    // Expired at the given time: rejected by cert_validity.
    let (code, out, _) = snp_verify(&[
        "report",
        &r,
        "--certs",
        &s(dir.path()),
        "--at",
        "2031-01-01T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  cert_validity"), "{out}");

    // Another product's ARK in the directory: rejected by ark_pinned.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("roots/genoa/ark.pem"),
        dir.path().join("ark.pem"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, _) = snp_verify(&[
        "report",
        &r,
        "--certs",
        &s(dir.path()),
        "--at",
        "2024-01-01T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  ark_pinned"), "{out}");
}

#[test]
fn unusable_input_exits_2_with_a_message() {
    let case = common::data().join("virtee-milan-v2");
    let r = s(&case.join("report.bin"));
    let v = s(&case.join("vcek.der"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not a report").unwrap_or_else(|e| panic!("{e}"));
    let bad_cert = dir.path().join("bad.der");
    std::fs::write(&bad_cert, [0x30, 0x03, 0x02, 0x01, 0x00]).unwrap_or_else(|e| panic!("{e}"));
    for args in [
        vec!["report", "/nonexistent/report.bin", "--vcek", &v],
        vec!["report", &s(&junk), "--vcek", &v],
        vec!["report", &r],
        vec!["report", &r, "--vcek", &s(&bad_cert)],
        vec!["report", &r, "--vcek", &v, "--at", "yesterday"],
        vec!["report", &r, "--vcek", &v, "--min-tcb", "snp=x"],
        vec!["report", &r, "--vcek", &v, "--report-data", "abc"],
        vec!["report", &r, "--vcek", &v, "--manifest", &s(&junk)],
        vec!["parse", &s(&junk)],
    ] {
        let (code, out, err) = snp_verify(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("unusable input"), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
    }
}

#[test]
fn policy_flags_reach_the_verdict() {
    let case = common::data().join("coco-trustee-milan-v2");
    let r = s(&case.join("report.bin"));
    let v = s(&case.join("vcek.der"));
    let at = "2024-01-01T00:00:00Z";
    let (code, _, _) = snp_verify(&[
        "report",
        &r,
        "--vcek",
        &v,
        "--at",
        at,
        "--min-tcb",
        "bl=3,snp=8",
        "--vmpl",
        "0",
        "--min-guest-svn",
        "4",
        "--family-id",
        "01000000000000000000000000000000",
    ]);
    assert_eq!(code, 0);
    let (code, out, _) = snp_verify(&[
        "report",
        &r,
        "--vcek",
        &v,
        "--at",
        at,
        "--measurement",
        &"00".repeat(48),
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  measurement"), "{out}");
}
