//! The auditor's check: a rebuild against the published record. Every artifact and every
//! launch digest must be equal; when something differs, the inputs, toolchain and
//! intermediate components that differ say where to look.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::Record;

/// One compared value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What (`artifact initrd.img`, `digest EPYC-Milan x4`, ...).
    pub what: String,
    /// This build's value.
    pub ours: String,
    /// The published value.
    pub published: String,
}

impl Check {
    /// Equal?
    pub fn pass(&self) -> bool {
        self.ours == self.published
    }
}

/// The comparison.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Comparison {
    /// Artifacts, command line and digests: all must pass.
    pub checks: Vec<Check>,
    /// Inputs, toolchain and components that differ (diagnosis, not a verdict).
    pub differences: Vec<Check>,
}

impl Comparison {
    /// True if every check passes.
    pub fn pass(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(Check::pass)
    }
}

const ABSENT: &str = "(absent)";

/// Pairs values by key; keys in either side appear once, sorted.
fn pair(
    kind: &str,
    ours: impl IntoIterator<Item = (String, String)>,
    theirs: impl IntoIterator<Item = (String, String)>,
) -> Vec<Check> {
    let mut m: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for (k, v) in ours {
        m.entry(k).or_default().0 = Some(v);
    }
    for (k, v) in theirs {
        m.entry(k).or_default().1 = Some(v);
    }
    m.into_iter()
        .map(|(k, (a, b))| Check {
            what: format!("{kind} {k}"),
            ours: a.unwrap_or_else(|| ABSENT.into()),
            published: b.unwrap_or_else(|| ABSENT.into()),
        })
        .collect()
}

fn artifacts(r: &Record) -> Vec<(String, String)> {
    r.artifacts
        .iter()
        .map(|a| (a.name.clone(), a.sha256.clone()))
        .collect()
}

fn digests(r: &Record) -> Vec<(String, String)> {
    r.digests
        .iter()
        .map(|d| (format!("{} x{:<3}", d.vcpu_type, d.vcpus), d.digest.clone()))
        .collect()
}

fn inputs(list: &[crate::record::Input]) -> Vec<(String, String)> {
    list.iter()
        .map(|i| {
            let v = match &i.sha256 {
                Some(h) => format!("{} sha256 {h}", i.version),
                None => i.version.clone(),
            };
            (i.name.clone(), v)
        })
        .collect()
}

fn components(r: &Record) -> Vec<(String, String)> {
    r.components
        .iter()
        .map(|a| (a.name.clone(), a.sha256.clone()))
        .collect()
}

/// Compares `ours` with `published`.
pub fn compare(ours: &Record, published: &Record) -> Comparison {
    let mut checks = pair("artifact", artifacts(ours), artifacts(published));
    checks.push(Check {
        what: "command line".into(),
        ours: ours.launch.cmdline.clone(),
        published: published.launch.cmdline.clone(),
    });
    checks.extend(pair("digest", digests(ours), digests(published)));
    let mut differences = pair("input", inputs(&ours.inputs), inputs(&published.inputs));
    differences.extend(pair(
        "toolchain",
        inputs(&ours.toolchain),
        inputs(&published.toolchain),
    ));
    differences.extend(pair("component", components(ours), components(published)));
    differences.retain(|c| !c.pass());
    Comparison {
        checks,
        differences,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::record::{Artifact, Input, Launch, LaunchEntry, SCHEMA};
    use attestation_verifier::validate::manifest::ImageId;

    fn record() -> Record {
        Record {
            schema: SCHEMA.into(),
            image: ImageId {
                name: "t".into(),
                version: "0".into(),
            },
            inputs: vec![Input {
                name: "kernel".into(),
                version: "1".into(),
                sha256: Some("aa".into()),
            }],
            components: vec![Artifact {
                name: "keynode".into(),
                sha256: "k1".into(),
                size: 1,
            }],
            toolchain: vec![Input {
                name: "rustc".into(),
                version: "1.95.0".into(),
                sha256: None,
            }],
            artifacts: vec![Artifact {
                name: "initrd.img".into(),
                sha256: "i1".into(),
                size: 1,
            }],
            launch: Launch {
                vmm: "QEMU".into(),
                guest_features: "0x1".into(),
                kernel_hashes: true,
                cmdline: "console=ttyS0".into(),
            },
            digests: vec![LaunchEntry {
                vcpu_type: "EPYC-Milan".into(),
                vcpus: 1,
                digest: "d1".into(),
            }],
        }
    }

    #[test]
    fn equal_records_pass() {
        let c = compare(&record(), &record());
        assert!(c.pass());
        assert!(c.differences.is_empty());
        assert_eq!(c.checks.len(), 3);
    }

    #[test]
    fn a_different_component_is_named() {
        let mut other = record();
        other.components[0].sha256 = "k2".into();
        other.artifacts[0].sha256 = "i2".into();
        other.digests[0].digest = "d2".into();
        let c = compare(&record(), &other);
        assert!(!c.pass());
        let failed: Vec<&str> = c
            .checks
            .iter()
            .filter(|x| !x.pass())
            .map(|x| x.what.as_str())
            .collect();
        assert_eq!(failed, ["artifact initrd.img", "digest EPYC-Milan x1  "]);
        assert_eq!(c.differences.len(), 1);
        assert_eq!(c.differences[0].what, "component keynode");
    }

    #[test]
    fn missing_entries_fail() {
        let mut other = record();
        other.digests.clear();
        let c = compare(&record(), &other);
        assert!(!c.pass());
        assert!(c.checks.iter().any(|x| x.published == ABSENT));
    }
}
