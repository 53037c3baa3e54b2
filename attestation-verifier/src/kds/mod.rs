//! AMD key distribution service (KDS) conventions: product names, certificate URLs, an
//! HTTP client with an on-disk cache, and offline certificate directories.

pub mod client;
pub mod error;
pub mod offline;
pub mod product;
pub mod urls;

pub use error::KdsError;
pub use product::Product;
