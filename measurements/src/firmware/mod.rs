//! Firmware images (OVMF, COCONUT-SVSM): their footer table and SEV metadata, read without
//! loading the whole image into memory.

pub mod layout;
mod parse;

pub use layout::{MetadataSection, SectionType};
pub use parse::{Firmware, ImageKind};
