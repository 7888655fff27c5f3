//! [`Rng`]: the machine's source of randomness (restart jitter), a splitmix64 generator seeded
//! at construction, so that a test given a seed sees the same delays on every run.

/// splitmix64 (Steele, Lea and Flood): one 64-bit state, a well-spread output per step.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator that starts from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn fraction(&mut self) -> f64 {
        // The top 53 bits: every value a double holds exactly in [0, 1).
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers_and_fractions_stay_below_one() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let drawn: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        assert!(drawn.iter().all(|n| *n == b.next_u64()));
        assert_ne!(drawn[0], Rng::new(8).next_u64());
        let mut rng = Rng::new(1);
        assert!(
            (0..10_000)
                .map(|_| rng.fraction())
                .all(|f| (0.0..1.0).contains(&f))
        );
    }
}
