//! The throwaway PostgreSQL server of the conformance tests: the crate's own test support
//! (feature `test-support`, see `src/test_support.rs`), shared with other crates' tests.

pub use warden_store::test_support::{server, PgServer};
