//! Random draws: independent ChaCha8 streams per purpose, keyed so that
//! every policy sees the same numbers for the same call and attempt.
//!
//! ChaCha is a counter-mode generator: any position of its key stream can
//! be reached directly. Each purpose has its own stream (ChaCha's nonce):
//!
//! * [`STREAM_ARRIVALS`]: inter-arrival times, drawn in call order;
//! * [`STREAM_OUTCOMES`]: per `(call, attempt)`, a block of 32 words for
//!   the attempt's latency and every failure model's draws (attempt 0 holds
//!   the call's own draws, such as its contended row);
//! * [`STREAM_JITTER`]: per `(call, attempt)`, the policy's jitter, handed
//!   to the engine as an RNG positioned at that key.
//!
//! So a call's third attempt gets the same latency and the same failure
//! dice under every policy that reaches it (common random numbers), and
//! neither depends on how many draws other calls made.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Stream of inter-arrival draws.
pub const STREAM_ARRIVALS: u64 = 1;
/// Stream of per-attempt latency and failure draws.
pub const STREAM_OUTCOMES: u64 = 2;
/// Stream of per-attempt policy jitter.
pub const STREAM_JITTER: u64 = 3;

/// Draws per key: 32 × 64 bits, one ChaCha8 refill.
pub const WORDS: usize = 32;
/// Index of the first latency draw; latency uses `0..8`.
pub const LATENCY: usize = 0;
/// Index of failure model `k`'s two draws: `MODEL + 2k` and `MODEL + 2k + 1`.
pub const MODEL: usize = 8;

/// Attempt numbers are folded into 24 bits of the key.
const ATTEMPT_BITS: u32 = 24;

/// The 32-bit word position of key `(call, attempt)`; each key owns 64
/// words (one four-block refill).
pub fn word_pos(call: u64, attempt: u32) -> u128 {
    let attempt = u128::from(attempt & ((1 << ATTEMPT_BITS) - 1));
    (((call as u128) << ATTEMPT_BITS) | attempt) * 64
}

/// A generator on stream `stream` of `seed`.
pub fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The draws of one `(call, attempt)` key.
#[derive(Debug, Clone)]
pub struct Draws {
    words: [u64; WORDS],
}

impl Draws {
    /// Reads the block of `(call, attempt)` from `rng` (the outcomes stream).
    pub fn at(rng: &mut ChaCha8Rng, call: u64, attempt: u32) -> Draws {
        let mut draws = Draws { words: [0; WORDS] };
        draws.fill(rng, call, attempt);
        draws
    }

    /// Overwrites these draws with the block of `(call, attempt)`, in place.
    #[inline]
    pub fn fill(&mut self, rng: &mut ChaCha8Rng, call: u64, attempt: u32) {
        rng.set_word_pos(word_pos(call, attempt));
        for w in &mut self.words {
            *w = rng.next_u64();
        }
    }

    /// Draws made of given words, for tests.
    pub fn from_words(words: [u64; WORDS]) -> Draws {
        Draws { words }
    }

    /// The raw 64-bit draw `i`.
    pub fn raw(&self, i: usize) -> u64 {
        self.words[i]
    }

    /// Draw `i` as a uniform number in `[0, 1)`, 53 bits.
    pub fn unit(&self, i: usize) -> f64 {
        unit(self.words[i])
    }
}

/// A 64-bit draw as a uniform number in `[0, 1)`.
pub fn unit(word: u64) -> f64 {
    (word >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The jitter RNG of one `(call, attempt)`: positioned on first use, so
/// decisions that draw nothing cost nothing.
pub struct KeyedRng<'a> {
    rng: &'a mut ChaCha8Rng,
    pos: u128,
    ready: bool,
}

impl<'a> KeyedRng<'a> {
    /// The jitter of `(call, attempt)` on `rng` (the jitter stream).
    pub fn new(rng: &'a mut ChaCha8Rng, call: u64, attempt: u32) -> Self {
        KeyedRng {
            rng,
            pos: word_pos(call, attempt),
            ready: false,
        }
    }

    fn ready(&mut self) -> &mut ChaCha8Rng {
        if !self.ready {
            self.rng.set_word_pos(self.pos);
            self.ready = true;
        }
        self.rng
    }
}

impl RngCore for KeyedRng<'_> {
    fn next_u32(&mut self) -> u32 {
        self.ready().next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.ready().next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.ready().fill_bytes(dest)
    }
}

/// SplitMix64: derives the seeds of `--runs` from the scenario seed.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of run `run` (0-based): run 0 uses `seed` itself, so one run
/// reproduces the scenario's plain result.
pub fn run_seed(seed: u64, run: u32) -> u64 {
    if run == 0 {
        seed
    } else {
        splitmix64(seed ^ splitmix64(u64::from(run)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_independent_of_access_order() {
        let mut a = stream(9, STREAM_OUTCOMES);
        let mut b = stream(9, STREAM_OUTCOMES);
        let x1 = Draws::at(&mut a, 5, 2).raw(3);
        let _ = Draws::at(&mut b, 7, 1);
        let _ = Draws::at(&mut b, 0, 9);
        assert_eq!(Draws::at(&mut b, 5, 2).raw(3), x1);
        assert_ne!(Draws::at(&mut a, 5, 3).raw(3), x1);
    }

    #[test]
    fn streams_differ() {
        let mut a = stream(9, STREAM_OUTCOMES);
        let mut b = stream(9, STREAM_JITTER);
        assert_ne!(
            Draws::at(&mut a, 1, 1).raw(0),
            Draws::at(&mut b, 1, 1).raw(0)
        );
    }

    #[test]
    fn units_are_in_range() {
        assert_eq!(unit(0), 0.0);
        assert!(unit(u64::MAX) < 1.0);
    }
}
