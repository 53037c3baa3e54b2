//! The pinned inputs: `guest-image/inputs.lock` (kernel, image identity, toolchain) and
//! `ovmf/inputs.lock` (firmware). One record per line, `<key> <field>...`; `#` comments.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// A parsed lock file.
#[derive(Clone, Debug, Default)]
pub struct Lock {
    file: String,
    records: BTreeMap<String, Vec<String>>,
}

impl Lock {
    /// Reads a lock file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses lock text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        let mut records = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut f = line.split_whitespace();
            let Some(key) = f.next() else { continue };
            let fields: Vec<String> = f.map(str::to_owned).collect();
            if records.insert(key.to_owned(), fields).is_some() {
                return Err(Error::Lock {
                    file: file.into(),
                    reason: format!("line {}: record '{key}' appears twice", i + 1),
                });
            }
        }
        Ok(Lock {
            file: file.into(),
            records,
        })
    }

    /// Field `n` (0-based) of record `key`.
    pub fn field(&self, key: &str, n: usize) -> Result<&str> {
        let rec = self.records.get(key).ok_or_else(|| Error::Lock {
            file: self.file.clone(),
            reason: format!("record '{key}' is missing"),
        })?;
        rec.get(n).map(String::as_str).ok_or_else(|| Error::Lock {
            file: self.file.clone(),
            reason: format!("record '{key}' has no field {}", n + 1),
        })
    }

    /// Field `n` of `key`, which must be a sha256 (64 lowercase hex digits).
    pub fn sha256(&self, key: &str, n: usize) -> Result<&str> {
        let v = self.field(key, n)?;
        if v.len() == 64
            && v.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(v)
        } else {
            Err(Error::Lock {
                file: self.file.clone(),
                reason: format!("record '{key}' field {}: '{v}' is not a sha256", n + 1),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn fields_and_errors() {
        let l = Lock::parse("t", "# c\nkernel-deb  f.deb  ab  12 # trailing\n\nempty\n").unwrap();
        assert_eq!(l.field("kernel-deb", 0).unwrap(), "f.deb");
        assert_eq!(l.field("kernel-deb", 2).unwrap(), "12");
        assert!(l.field("kernel-deb", 3).is_err());
        assert!(l.field("missing", 0).is_err());
        assert!(l.field("empty", 0).is_err());
        assert!(l.sha256("kernel-deb", 1).is_err());
        assert!(Lock::parse("t", "a 1\na 2\n").is_err());
        let h = "0".repeat(64);
        assert_eq!(
            Lock::parse("t", &format!("x {h}"))
                .unwrap()
                .sha256("x", 0)
                .unwrap(),
            h
        );
    }
}
