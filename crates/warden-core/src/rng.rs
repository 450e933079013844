//! Injected randomness.
//!
//! The core never reads the operating system's random number generator. Whoever needs fresh
//! randomness (a new mnemonic, an ephemeral key) receives an [`EntropySource`] from its caller;
//! the daemons pass one backed by the OS, tests pass a deterministic one.

/// A source of cryptographically strong random bytes, supplied by the caller.
pub trait EntropySource {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);

    /// Returns 32 random bytes.
    fn random_32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.fill_bytes(&mut out);
        out
    }
}
