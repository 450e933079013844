//! Test support shared by several test files.
pub mod channel_fixture;
