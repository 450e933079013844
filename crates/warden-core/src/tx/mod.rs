//! BOLT-03 transactions.
