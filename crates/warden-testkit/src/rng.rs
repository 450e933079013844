//! A small seeded generator (SplitMix64) for reproducible random HTLC traffic: the same seed
//! gives the same flow on every machine and every run.

/// SplitMix64 (Steele, Lea and Flood, 2014): not for secrets, only for test scenarios.
#[derive(Clone, Debug)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> TestRng {
        TestRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "test code")]
    use super::*;

    #[test]
    fn is_reproducible() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = TestRng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = TestRng::new(7);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(TestRng::new(8).next_u64(), a[0]);
    }
}

/// The entropy of a signer started on an existing `hsm_secret`: `init` draws none, and a test
/// that makes it draw fails loudly.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEntropy;

impl warden_core::rng::EntropySource for NoEntropy {
    fn fill_bytes(&mut self, _: &mut [u8]) {
        panic!("an existing secret needs no entropy");
    }
}
