//! Which kernel module files go into the initramfs, and the order init loads them in.
//!
//! Init has no modprobe: it loads files in the order given. That order comes from
//! `modules.dep` (written by `depmod -b` for the pinned kernel): every module's
//! dependencies before it, the requested order kept otherwise.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The name of a module file: base name without `.ko[.xz|.zst|.gz]`, `-` read as `_`
/// (the kernel treats them alike).
pub fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .unwrap_or(base);
    stem.replace('-', "_")
}

/// `modules.dep`: for each module name, its file and its dependencies' files.
#[derive(Clone, Debug, Default)]
pub struct ModulesDep {
    by_name: BTreeMap<String, (String, Vec<String>)>,
}

impl ModulesDep {
    /// Parses `modules.dep` text (`path: dep dep ...` per line).
    pub fn parse(text: &str) -> Result<Self> {
        let mut by_name = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let syntax = |reason: &str| Error::Syntax {
                file: "modules.dep".into(),
                line: i + 1,
                reason: reason.into(),
            };
            let (path, deps) = line.split_once(':').ok_or_else(|| syntax("no ':'"))?;
            let path = path.trim();
            if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == "..") {
                return Err(syntax("module path must be relative, without '..'"));
            }
            let deps: Vec<String> = deps.split_whitespace().map(str::to_owned).collect();
            if by_name
                .insert(module_name(path), (path.to_owned(), deps))
                .is_some()
            {
                return Err(syntax("module listed twice"));
            }
        }
        Ok(ModulesDep { by_name })
    }

    /// The files to load for `wanted` (module names), dependencies first, each once.
    pub fn load_order(&self, wanted: &[String]) -> Result<Vec<String>> {
        let mut order = Vec::new();
        let mut state: BTreeMap<String, bool> = BTreeMap::new(); // false: visiting, true: done
        for w in wanted {
            self.visit(&w.replace('-', "_"), &mut state, &mut order)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        state: &mut BTreeMap<String, bool>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        match state.get(name) {
            Some(true) => return Ok(()),
            Some(false) => return Err(Error::DependencyCycle(name.to_owned())),
            None => {}
        }
        let (path, deps) = self
            .by_name
            .get(name)
            .ok_or_else(|| Error::UnknownModule(name.to_owned()))?;
        state.insert(name.to_owned(), false);
        for d in deps {
            self.visit(&module_name(d), state, order)?;
        }
        state.insert(name.to_owned(), true);
        order.push(path.clone());
        Ok(())
    }
}

/// Parses the list of wanted modules: one name per line, `#` comments.
pub fn parse_list(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::Syntax {
                file: "modules list".into(),
                line: i + 1,
                reason: format!("'{name}' is not a module name"),
            });
        }
        out.push(name.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test
mod tests {
    use super::*;

    // A slice of the pinned kernel's real modules.dep.
    const DEP: &str = "\
kernel/fs/configfs/configfs.ko.xz:
kernel/drivers/virt/coco/tsm.ko.xz: kernel/fs/configfs/configfs.ko.xz
kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz: kernel/drivers/virt/coco/tsm.ko.xz kernel/fs/configfs/configfs.ko.xz
kernel/crypto/gcm.ko.xz: kernel/crypto/crypto_null.ko.xz
kernel/crypto/crypto_null.ko.xz:
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
";

    #[test]
    fn names() {
        assert_eq!(module_name("kernel/a/sev-guest.ko.xz"), "sev_guest");
        assert_eq!(module_name("x.ko"), "x");
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let d = ModulesDep::parse(DEP).unwrap();
        let order = d
            .load_order(&["sev-guest".into(), "configfs".into(), "virtio_net".into()])
            .unwrap();
        let names: Vec<String> = order.iter().map(|p| module_name(p)).collect();
        assert_eq!(
            names,
            [
                "configfs",
                "tsm",
                "sev_guest",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let d = ModulesDep::parse(DEP).unwrap();
        assert!(matches!(
            d.load_order(&["nope".into()]),
            Err(Error::UnknownModule(n)) if n == "nope"
        ));
        let cyc = ModulesDep::parse("a.ko: b.ko\nb.ko: a.ko\n").unwrap();
        assert!(matches!(
            cyc.load_order(&["a".into()]),
            Err(Error::DependencyCycle(_))
        ));
        assert!(ModulesDep::parse("no colon here\n").is_err());
        assert!(ModulesDep::parse("/abs.ko:\n").is_err());
        assert!(ModulesDep::parse("a.ko:\na.ko:\n").is_err());
        assert!(parse_list("ok # comment\n\nbad name\n").is_err());
        assert_eq!(
            parse_list("# head\nconfigfs\n sev-guest # x\n").unwrap(),
            ["configfs", "sev-guest"]
        );
    }
}
