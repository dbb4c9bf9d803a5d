//! The random source of unseeded calls' jitter.
//!
//! Jitter only has to spread clients apart; it needs neither cryptographic
//! strength nor reproducibility (a seeded policy has its own ChaCha stream).
//! What it must not do is cost a retry more than the retry itself: rand's
//! `ThreadRng` is a reseeding ChaCha12 behind a reference count, several
//! times the price of a whole engine decision. This is wyrand, a 64-bit
//! generator whose state is one word per thread, seeded once per thread
//! from the operating system's entropy (through `rand::rng()`), and
//! advanced in place: nothing to set up per call, nothing allocated, and
//! safe to re-enter (a strategy may itself retry something).

use std::cell::Cell;

use rand::RngCore;

thread_local! {
    /// This thread's generator state; 0 until first used.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Odd increment of wyrand's Weyl sequence.
const INCREMENT: u64 = 0xa076_1d64_78bd_642f;
/// wyrand's output mixing constant.
const MIX: u64 = 0xe703_7ed1_a0b4_28db;

/// A handle on the current thread's jitter generator. Zero-sized: making
/// one costs nothing; the state lives in a thread local.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JitterRng;

fn seed() -> u64 {
    // Entropy from the OS, once per thread. `| 1` keeps the state off the
    // 0 that marks "not seeded yet" (any state is a valid wyrand state).
    rand::rng().next_u64() | 1
}

impl RngCore for JitterRng {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        STATE
            .try_with(|cell| {
                let mut s = cell.get();
                if s == 0 {
                    s = seed();
                }
                s = s.wrapping_add(INCREMENT);
                cell.set(s);
                wymix(s)
            })
            // The thread is being torn down: fall back to the OS source.
            .unwrap_or_else(|_| rand::rng().next_u64())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[inline]
fn wymix(s: u64) -> u64 {
    let t = u128::from(s).wrapping_mul(u128::from(s ^ MIX));
    ((t >> 64) as u64) ^ (t as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_look_uniform() {
        let mut rng = JitterRng;
        // Each of the 64 bits is set about half the time, and no two
        // consecutive words repeat.
        let n = 20_000u32;
        let mut ones = [0u32; 64];
        let mut last = rng.next_u64();
        for _ in 0..n {
            let w = rng.next_u64();
            assert_ne!(w, last);
            last = w;
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += u32::from((w >> bit) & 1 == 1);
            }
        }
        for (bit, &count) in ones.iter().enumerate() {
            let share = f64::from(count) / f64::from(n);
            assert!((0.47..0.53).contains(&share), "bit {bit}: {share}");
        }
    }

    #[test]
    fn threads_draw_different_streams() {
        let here: Vec<u64> = (0..4).map(|_| JitterRng.next_u64()).collect();
        let there = std::thread::spawn(|| (0..4).map(|_| JitterRng.next_u64()).collect::<Vec<_>>())
            .join()
            .unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn fills_odd_lengths() {
        let mut buf = [0u8; 13];
        JitterRng.fill_bytes(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
    }
}
