//! The verdict: every check made, passed, failed or skipped, with its reason. Nothing is
//! left out silently, and acceptance requires every required check to pass.

use serde::Serialize;

use crate::kds::Product;

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// The check was made and passed.
    Pass,
    /// The check was made and failed.
    Fail,
    /// The check was not made; `detail` says why.
    Skipped,
}

/// One check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name, e.g. `report_signature`.
    pub check: String,
    /// Outcome.
    pub status: Status,
    /// What was compared, expected vs actual on failure, or why it was skipped.
    pub detail: String,
    /// Whether acceptance requires this check to pass.
    #[serde(skip)]
    pub required: bool,
}

/// All checks of one verification.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Checks(pub Vec<Check>);

impl Checks {
    fn push(&mut self, check: &str, status: Status, detail: String, required: bool) {
        self.0.push(Check {
            check: check.to_owned(),
            status,
            detail,
            required,
        });
    }

    /// Records a required check.
    pub fn require(&mut self, check: &str, ok: bool, detail: impl Into<String>) {
        let s = if ok { Status::Pass } else { Status::Fail };
        self.push(check, s, detail.into(), true);
    }

    /// Records a required check that could not be made (which rejects).
    pub fn require_skipped(&mut self, check: &str, why: impl Into<String>) {
        self.push(check, Status::Skipped, why.into(), true);
    }

    /// Records an optional check that was not requested or does not apply.
    pub fn skip(&mut self, check: &str, why: impl Into<String>) {
        self.push(check, Status::Skipped, why.into(), false);
    }

    /// True if nothing failed and every required check passed.
    pub fn accepted(&self) -> bool {
        !self.0.is_empty()
            && self
                .0
                .iter()
                .all(|c| c.status != Status::Fail && (!c.required || c.status == Status::Pass))
    }

    /// The check with this name, if made.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.0.iter().find(|c| c.check == name)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.0.iter().filter(|c| c.status == Status::Fail)
    }
}

/// The result of verifying a report.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// True only if every required check passed and none failed.
    pub accepted: bool,
    /// The product whose chain was used.
    pub product: Option<Product>,
    /// True if the report chains to a simulated platform's roots (never AMD's).
    pub simulated: bool,
    /// Every check, in the order made.
    pub checks: Vec<Check>,
    /// Every parsed field of the report.
    pub report: serde_json::Value,
}
