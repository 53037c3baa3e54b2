//! vCPU signatures (CPUID Fn0000_0001_EAX) as QEMU's built-in EPYC models report them.

/// Computes the CPUID signature from family, model and stepping (AMD CPUID spec #25481).
pub fn cpu_sig(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf {
        (0xf, (family - 0xf) & 0xff)
    } else {
        (family, 0)
    };
    let model_low = model & 0xf;
    let model_high = (model >> 4) & 0xf;
    let stepping_low = stepping & 0xf;
    (family_high << 20) | (model_high << 16) | (family_low << 8) | (model_low << 4) | stepping_low
}

/// The vCPU type names sev-snp-measure 0.0.13 accepts, in its order, with (family, model,
/// stepping).
pub const VCPU_TYPES: &[(&str, u32, u32, u32)] = &[
    ("EPYC", 23, 1, 2),
    ("EPYC-v1", 23, 1, 2),
    ("EPYC-v2", 23, 1, 2),
    ("EPYC-IBPB", 23, 1, 2),
    ("EPYC-v3", 23, 1, 2),
    ("EPYC-v4", 23, 1, 2),
    ("EPYC-Rome", 23, 49, 0),
    ("EPYC-Rome-v1", 23, 49, 0),
    ("EPYC-Rome-v2", 23, 49, 0),
    ("EPYC-Rome-v3", 23, 49, 0),
    ("EPYC-Milan", 25, 1, 1),
    ("EPYC-Milan-v1", 25, 1, 1),
    ("EPYC-Milan-v2", 25, 1, 1),
    ("EPYC-Genoa", 25, 17, 0),
    ("EPYC-Genoa-v1", 25, 17, 0),
    ("EPYC-Turin", 26, 0, 0),
];

/// The signature of a named vCPU type, if known.
pub fn vcpu_type_sig(name: &str) -> Option<u32> {
    VCPU_TYPES
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(_, f, m, s)| cpu_sig(f, m, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_signatures() {
        // Values QEMU reports in CPUID 1 EAX for these models.
        assert_eq!(vcpu_type_sig("EPYC-Milan"), Some(0x00a0_0f11));
        assert_eq!(vcpu_type_sig("EPYC-Genoa"), Some(0x00a1_0f10));
        assert_eq!(vcpu_type_sig("EPYC-Rome"), Some(0x0083_0f10));
        assert_eq!(vcpu_type_sig("EPYC"), Some(0x0080_0f12));
        assert_eq!(vcpu_type_sig("EPYC-Turin"), Some(0x00b0_0f00));
        assert_eq!(vcpu_type_sig("Pentium"), None);
    }
}
