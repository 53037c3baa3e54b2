//! SEV, SEV-ES and SEV-SNP launch measurements, computed from the firmware, kernel, initrd
//! and command line exactly as the AMD secure processor computes them, plus SNP ID blocks.
//!
//! Drop-in compatible with sev-snp-measure 0.0.13 (same digests, same CLI), but inputs are
//! streamed: memory does not grow with the size of the kernel or initrd.
//!
//! Layers: [`firmware`] parses images (footer table, SEV metadata); [`gctx`] extends the SNP
//! launch digest page by page; [`vmsa`] builds initial vCPU state; [`hashes`] builds QEMU's
//! kernel-hashes table; [`measure`] combines them per mode; [`id_block`] builds and signs
//! the SNP ID block.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cpu;
pub mod error;
pub mod firmware;
pub mod gctx;
pub mod guid;
pub mod hashes;
pub mod id_block;
pub mod launch;
pub mod measure;
pub mod vmsa;

pub use error::{Error, Result};
pub use firmware::Firmware;
pub use gctx::LaunchDigest;
pub use hashes::SevHashes;
pub use launch::{SevMode, VmmType};
