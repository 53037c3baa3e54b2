//! Policy over authentic reports: guest policy bits, VMPL, TCB minimums, identity fields
//! and the published measurement manifest.

pub mod manifest;
pub mod policy;

pub use manifest::Manifest;
pub use policy::{MinTcb, Policy};
