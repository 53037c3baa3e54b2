//! The firmware parser and the measurement functions never panic, whatever the bytes:
//! arbitrary data, and valid images with bytes of their footer table or metadata changed.

mod support;

use proptest::prelude::*;
use snp_measure::firmware::{Firmware, ImageKind};
use snp_measure::measure::{
    SnpLaunch, SvsmLaunch, sev_es_launch_digest, sev_launch_digest, snp_launch_digest,
    svsm_launch_digest,
};
use snp_measure::{SevHashes, VmmType};
use support::fwgen::{amdsev_like, amdsev_sections};

fn exercise(data: Vec<u8>) {
    let hashes = SevHashes {
        kernel: [1; 32],
        initrd: [2; 32],
        cmdline: [3; 32],
    };
    let Ok(fw) = Firmware::from_bytes(data.clone()) else {
        return;
    };
    // A corrupted size can describe up to 4 GiB of zero pages: valid, but a million
    // SHA-384s per section; such images are parsed but not measured here.
    if fw.metadata().iter().any(|s| s.size > 1 << 20) {
        return;
    }
    for vmm in [VmmType::Qemu, VmmType::Ec2, VmmType::Gce] {
        for h in [None, Some(&hashes)] {
            let _ = snp_launch_digest(&SnpLaunch {
                firmware: &fw,
                vcpus: 2,
                vcpu_sig: 0xa00f11,
                guest_features: 1,
                vmm,
                hashes: h,
                firmware_digest: None,
            });
            let _ = sev_es_launch_digest(&fw, h, 2, 0xa00f11, vmm);
            let _ = sev_launch_digest(&fw, h);
        }
    }
    if let Ok(svsm) = Firmware::from_bytes_as(data, ImageKind::Svsm, fw.gpa()) {
        let _ = svsm_launch_digest(&SvsmLaunch {
            firmware: &fw,
            svsm: &svsm,
            vcpus: 2,
            vcpu_sig: 1,
        });
    }
}

fn valid_image() -> Vec<u8> {
    let mut img = amdsev_like(5, 0x81_0c00, 0x80_b004, amdsev_sections());
    img.size = 4 * 4096 + 0x1000;
    img.build()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..12288)) {
        exercise(data);
    }

    #[test]
    fn corrupted_tables_never_panic(
        edits in proptest::collection::vec((0usize..512, any::<u8>()), 1..16),
        meta_edits in proptest::collection::vec((0usize..128, any::<u8>()), 0..8),
    ) {
        let mut img = valid_image();
        let len = img.len();
        for (off, b) in edits {
            img[len - 1 - off] = b;
        }
        // The metadata block sits 0x1000 bytes before the end.
        for (off, b) in meta_edits {
            img[len - 0x1000 + off] = b;
        }
        exercise(img);
    }
}

#[test]
fn the_valid_image_really_measures() {
    // Guards the property tests above against exercising only the error paths.
    let fw = Firmware::from_bytes(valid_image()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fw.metadata().len(), amdsev_sections().len());
    let hashes = SevHashes {
        kernel: [1; 32],
        initrd: [2; 32],
        cmdline: [3; 32],
    };
    let d = snp_launch_digest(&SnpLaunch {
        firmware: &fw,
        vcpus: 2,
        vcpu_sig: 0xa00f11,
        guest_features: 1,
        vmm: VmmType::Qemu,
        hashes: Some(&hashes),
        firmware_digest: None,
    });
    assert!(d.is_ok(), "{d:?}");
}
