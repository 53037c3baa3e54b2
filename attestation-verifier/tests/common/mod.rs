//! Loading the real AMD vectors in `tests/data/snp/` (copied from shared/vectors/snp with
//! their provenance) and the ground truth in each case's `expected.json`.
#![allow(dead_code)]

pub mod synth;

use std::path::{Path, PathBuf};

use attestation_verifier::kds::offline::pem_or_der_certs;
use attestation_verifier::verify::{Inputs, Vek};
use serde_json::Value;

pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/snp")
}

pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub expected: Value,
}

impl Case {
    pub fn verdict(&self) -> &str {
        self.expected["expected_verdict"].as_str().unwrap_or("")
    }
    pub fn parse_only(&self) -> bool {
        self.expected["parse_only"].as_bool().unwrap_or(false)
    }
    pub fn report(&self) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join("report.bin")).ok()
    }
    /// The endorsement certificate file and whether it is a VLEK.
    pub fn vek_file(&self) -> Option<(PathBuf, bool)> {
        for (f, vlek) in [
            ("vcek.der", false),
            ("vcek.pem", false),
            ("vlek.der", true),
            ("vlek.pem", true),
        ] {
            let p = self.dir.join(f);
            if p.exists() {
                return Some((p, vlek));
            }
        }
        None
    }
    /// The VEK DER and any certificates that follow it in the same file (ASK, ARK).
    pub fn vek_and_chain(&self) -> Option<(Vec<u8>, bool, Vec<Vec<u8>>)> {
        let (p, vlek) = self.vek_file()?;
        let bytes = std::fs::read(&p).ok()?;
        let mut certs = pem_or_der_certs(&bytes).ok()?;
        if certs.is_empty() {
            return None;
        }
        let vek = certs.remove(0);
        Some((vek, vlek, certs))
    }
    /// A verification time inside every certificate's window: one day after the VEK's
    /// notBefore (AMD roots and intermediates are valid for 25 years around it).
    pub fn at(&self) -> i64 {
        let key = if self.expected.get("vlek").is_some() {
            "vlek"
        } else {
            "vcek"
        };
        let nb = self.expected[key]["validity"][0].as_str().unwrap_or("");
        let t = time::OffsetDateTime::parse(nb, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .unwrap_or(0);
        t + 86_400
    }
    pub fn inputs(&self) -> Option<Inputs> {
        let (vek, vlek, _) = self.vek_and_chain()?;
        Some(Inputs {
            vek: if vlek { Vek::Vlek(vek) } else { Vek::Vcek(vek) },
            ark: None,
            intermediate: None,
            crl: None,
            at: self.at(),
            product: None,
        })
    }
}

pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(data()) else {
        panic!("missing {}", data().display())
    };
    for e in rd.flatten() {
        let dir = e.path();
        let exp = dir.join("expected.json");
        if !exp.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&exp).unwrap_or_default();
        let expected: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", exp.display()));
        out.push(Case {
            name: e.file_name().to_string_lossy().into_owned(),
            dir,
            expected,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 29,
        "expected the 29 shared cases, found {}",
        out.len()
    );
    out
}
