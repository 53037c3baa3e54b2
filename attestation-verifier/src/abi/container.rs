//! The containers a report arrives in: the raw 1184-byte report, the guest driver's
//! MSG_REPORT_RSP (status, size, reserved, report at 0x20), and an extended report (the
//! report followed by its certificate table).

use crate::abi::AbiError;
use crate::abi::certtable::{self, CertEntry};
use crate::abi::report::{MAX_VERSION, MIN_VERSION, REPORT_LEN, Report};

/// Offset of the report inside MSG_REPORT_RSP.
const RSP_REPORT_AT: usize = 0x20;

/// How the report was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum Container {
    /// The report alone.
    Raw,
    /// The guest driver's MSG_REPORT_RSP.
    ReportResponse,
    /// A report followed by a certificate table.
    Extended,
}

/// A report with whatever came with it.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// The parsed report.
    pub report: Report,
    /// How it was wrapped.
    pub container: Container,
    /// Certificate-table entries (extended reports only).
    pub certs: Vec<CertEntry>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn plausible_version(b: &[u8], at: usize) -> bool {
    u32_at(b, at).is_some_and(|v| (MIN_VERSION..=MAX_VERSION).contains(&v))
}

/// Finds and parses the report in `b`, whichever container it is in.
pub fn parse_evidence(b: &[u8]) -> Result<Evidence, AbiError> {
    if b.len() == REPORT_LEN {
        return Ok(Evidence {
            report: Report::parse(b)?,
            container: Container::Raw,
            certs: Vec::new(),
        });
    }
    // MSG_REPORT_RSP: status 0, report_size 0x4a0; a raw report never starts with
    // version 0, so the two cannot be confused.
    if u32_at(b, 0) == Some(0) && u32_at(b, 4) == Some(REPORT_LEN as u32) {
        let report = b
            .get(RSP_REPORT_AT..RSP_REPORT_AT + REPORT_LEN)
            .ok_or(AbiError::Length {
                what: "MSG_REPORT_RSP",
                expected: RSP_REPORT_AT + REPORT_LEN,
                actual: b.len(),
            })?;
        return Ok(Evidence {
            report: Report::parse(report)?,
            container: Container::ReportResponse,
            certs: Vec::new(),
        });
    }
    if b.len() > REPORT_LEN && plausible_version(b, 0) {
        let report = Report::parse(&b[..REPORT_LEN])?;
        let certs = certtable::parse(&b[REPORT_LEN..])?;
        return Ok(Evidence {
            report,
            container: Container::Extended,
            certs,
        });
    }
    if let Some(status) = u32_at(b, 0).filter(|s| *s != 0)
        && u32_at(b, 4) == Some(REPORT_LEN as u32)
    {
        return Err(AbiError::Field {
            field: "MSG_REPORT_RSP status",
            reason: format!("firmware returned error status {status:#x}"),
        });
    }
    Err(AbiError::Container {
        len: b.len(),
        reason: format!(
            "not a {REPORT_LEN}-byte report, a MSG_REPORT_RSP (status 0, size {REPORT_LEN:#x}, report at {RSP_REPORT_AT:#x}), or a report followed by a certificate table"
        ),
    })
}
