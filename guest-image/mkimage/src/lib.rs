//! Assembling the Keynet guest image reproducibly.
//!
//! Layers: [`cpio`] writes a newc archive from a sorted tree with fixed metadata;
//! [`modules`] picks kernel modules and their dependency order from `modules.dep`;
//! [`initrd`] lays out the initramfs and compresses it deterministically; [`lock`] reads
//! the pinned inputs; [`record`] is the build record (`image.json`) with the SNP launch
//! digests; [`compare`] checks a rebuild against the published record.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod compare;
pub mod cpio;
pub mod error;
pub mod initrd;
pub mod lock;
pub mod modules;
pub mod record;

pub use error::{Error, Result};
