//! Random draws: independent streams per purpose, keyed so that every
//! policy sees the same numbers for the same call and attempt.
//!
//! * [`STREAM_ARRIVALS`]: inter-arrival times, drawn in call order from
//!   ChaCha8 ([`stream`]);
//! * [`STREAM_OUTCOMES`]: per `(call, attempt)`, the attempt's latency and
//!   every failure model's dice ([`Outcomes`], [`Draws`]; attempt 0 holds
//!   the call's own draws, such as its contended row), and per
//!   `(call, attempt, leg)` the latency of each leg ([`Draws::leg`]);
//! * [`STREAM_JITTER`]: per `(call, attempt)`, the policy's jitter, handed
//!   to the engine as a ChaCha8 generator positioned at that key
//!   ([`KeyedRng`]). Strategies draw from ChaCha in simulation, as they do
//!   in a seeded production policy. A decision reads two to four words of
//!   its key, all in the key's first block, and positioning `ChaCha8Rng`
//!   computes four consecutive blocks: so the first words of a key are
//!   computed by ChaCha8's block function itself, for four keys (the
//!   call's next attempts) at once, and kept ([`Jitter`], [`KeyMemo`]) for
//!   the next job on the same thread: the other policies of the same run,
//!   which reach the same keys, read them back instead. The draws and
//!   legs of every attempt are kept the same way.
//!
//! So a call's third attempt gets the same latency and the same failure
//! dice under every policy that reaches it (common random numbers), and
//! neither depends on how many draws other calls made.
//!
//! The outcome dice are read at random positions, several per attempt, and
//! only a few words per key are ever used. Positioning a ChaCha stream
//! costs a four-block refill each time: drawing the dice that way took
//! about half of the simulator's run time (flaky.toml: 3.56 ms per run
//! with it, 1.87 ms without, by its criterion benchmark), so they come from
//! a counter-based generator instead: word `i` of key `k` is the SplitMix64
//! output function applied to `k + (i + 1) × γ`, where the key is itself
//! mixed from the seed, the call and the attempt. It is specified in full
//! below, uses only integer arithmetic, and so gives the same numbers on
//! every platform; it is computed on demand, so an attempt pays only for
//! the dice it reads.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Stream of inter-arrival draws.
pub const STREAM_ARRIVALS: u64 = 1;
/// Stream of per-attempt latency and failure draws.
pub const STREAM_OUTCOMES: u64 = 2;
/// Stream of per-attempt policy jitter.
pub const STREAM_JITTER: u64 = 3;
/// Arrival streams of background workloads (`[[background]]`): workload
/// `k` draws its inter-arrival times from stream `STREAM_BACKGROUND + k`.
/// Its calls take the ids after the workload under test's (and the
/// earlier background workloads'), so their `(call, attempt)` draws of
/// the other streams are their own too.
pub const STREAM_BACKGROUND: u64 = 1 << 32;

/// Index of the first latency draw; latency uses `0..8`.
pub const LATENCY: usize = 0;
/// Index of failure model `k`'s two draws: `MODEL + 2k` and `MODEL + 2k + 1`.
pub const MODEL: usize = 8;
/// Words per leg: leg `k` of an attempt reads words `LEG × k ..` of its
/// draws ([`Draws::leg`]); past `MODEL + 2 × 12`, the last model's.
pub const LEG: usize = 64;

/// The leg whose draws give a client's oversleep after the attempt fails
/// (`[client] oversleep`): past every leg an attempt's latency reads
/// (`3 × MAX_ROUND_TRIPS` of them).
pub const OVERSLEEP_LEG: u32 = 1 << 16;

/// Attempt numbers are folded into 24 bits of a ChaCha jitter key.
const ATTEMPT_BITS: u32 = 24;

/// SplitMix64's increment, the golden ratio in 64 bits.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijection of 64-bit words whose every
/// output bit depends on every input bit.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 32-bit word position of jitter key `(call, attempt)`; each key owns
/// 64 words (one four-block refill).
pub fn word_pos(call: u64, attempt: u32) -> u128 {
    let attempt = u128::from(attempt & ((1 << ATTEMPT_BITS) - 1));
    (((call as u128) << ATTEMPT_BITS) | attempt) * 64
}

/// A ChaCha8 generator on stream `stream` of `seed`.
pub fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The outcome stream of one seed: gives the [`Draws`] of any
/// `(call, attempt)` directly.
#[derive(Debug, Clone, Copy)]
pub struct Outcomes {
    key: u64,
}

impl Outcomes {
    /// The outcome stream of `seed`.
    pub fn new(seed: u64) -> Outcomes {
        Outcomes {
            key: mix(mix(seed).wrapping_add(STREAM_OUTCOMES.wrapping_mul(GAMMA))),
        }
    }

    /// The draws of `(call, attempt)`. Distinct keys of one seed are
    /// distinct: `(call, attempt)` packs into 64 bits without loss, and
    /// SplitMix64's output function is a bijection.
    #[inline]
    pub fn at(&self, call: u32, attempt: u32) -> Draws {
        let packed = (u64::from(call) << 32) | u64::from(attempt);
        Draws {
            key: mix(mix(packed) ^ self.key),
        }
    }
}

/// The draws of one `(call, attempt)` key, computed when read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Draws {
    key: u64,
}

impl Draws {
    /// The raw 64-bit draw `i`.
    #[inline]
    pub fn raw(&self, i: usize) -> u64 {
        mix(self
            .key
            .wrapping_add((i as u64).wrapping_add(1).wrapping_mul(GAMMA)))
    }

    /// The draws of leg `k` of the same `(call, attempt)`: word `i` of
    /// leg `k` is word `LEG × k + i` of these draws, so leg 0 is these
    /// draws themselves and each other leg (an attempt's request, service
    /// and response each draw their own latency) has words of its own,
    /// past the failure models' (legs read at most 8 words each).
    #[inline]
    pub fn leg(&self, k: u32) -> Draws {
        Draws {
            key: self
                .key
                .wrapping_add((LEG as u64 * u64::from(k)).wrapping_mul(GAMMA)),
        }
    }

    /// Draw `i` as a uniform number in `[0, 1)`, 53 bits.
    #[inline]
    pub fn unit(&self, i: usize) -> f64 {
        unit(self.raw(i))
    }
}
/// A 64-bit draw as a uniform number in `[0, 1)`.
#[inline]
pub fn unit(word: u64) -> f64 {
    // Through i64: the same value (below 2^53, exact either way), but one
    // signed conversion instruction instead of the unsigned sequence.
    ((word >> 11) as i64) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Words of a key's jitter that [`Jitter`] keeps: more than a decision
/// reads (two to four).
const KEPT_WORDS: usize = 8;

/// The most calls of a run whose keys a [`KeyMemo`] keeps (64 attempts
/// each).
const KEPT_CALLS: u64 = 512;

/// Attempts per call whose keys a [`KeyMemo`] keeps.
const KEPT_ATTEMPTS: u32 = 64;

/// Values computed per `(call, attempt)` key of one seed.
pub struct Memo<T> {
    seed: u64,
    calls: u64,
    /// What else the values depend on, as a fingerprint (for an
    /// attempt's legs: the scenario's latency).
    context: u64,
    /// Keys kept: `calls × 64` for runs of at most 512 calls, else none.
    keys: usize,
    /// An entry holds a value when its stamp is this generation, so a new
    /// seed costs one increment rather than clearing every entry.
    generation: u32,
    /// Each entry's stamp beside its value: one cache line to read.
    entries: Vec<(u32, T)>,
}

impl<T> Memo<T> {
    /// A memo that keeps nothing yet.
    const fn empty() -> Memo<T> {
        Memo {
            seed: 0,
            calls: 0,
            context: 0,
            keys: 0,
            generation: 0,
            entries: Vec::new(),
        }
    }
}

/// Where a thread keeps a [`Memo`] between jobs.
pub type MemoHome<T> = std::thread::LocalKey<std::cell::Cell<Option<Memo<T>>>>;

/// Values that are pure functions of `(seed, call, attempt)` and a
/// context (the scenario's latency, for an attempt's legs), kept for one
/// (run, policy) job and then handed to the next job on the same thread:
/// the other policies of the same run reach the same keys (common random
/// numbers) and read them back instead of computing them again. What a
/// key gives does not depend on it; only the work does.
pub struct KeyMemo<T: 'static> {
    memo: Memo<T>,
    home: &'static MemoHome<T>,
}

impl<T: Copy + Default + 'static> KeyMemo<T> {
    /// The memo the last job on this thread left in `home`, for a run of
    /// `calls` calls with `seed` in `context` (emptied if it was for
    /// another run, or another scenario's).
    pub fn new(home: &'static MemoHome<T>, seed: u64, calls: u64, context: u64) -> KeyMemo<T> {
        let mut memo = home.take().unwrap_or_else(Memo::empty);
        if memo.generation == 0
            || memo.seed != seed
            || memo.calls != calls
            || memo.context != context
        {
            memo.seed = seed;
            memo.calls = calls;
            memo.context = context;
            memo.keys = if calls <= KEPT_CALLS {
                (calls * u64::from(KEPT_ATTEMPTS)) as usize
            } else {
                0
            };
            if memo.entries.len() < memo.keys {
                memo.entries.resize(memo.keys, (0, T::default()));
            }
            memo.generation = memo.generation.wrapping_add(1);
            if memo.generation == 0 {
                memo.entries.iter_mut().for_each(|e| e.0 = 0);
                memo.generation = 1;
            }
        }
        KeyMemo { memo, home }
    }

    /// The entry of `(call, attempt)`, if the memo keeps that key.
    #[inline]
    pub fn entry(&self, call: u64, attempt: u32) -> Option<usize> {
        let e = call
            .checked_mul(u64::from(KEPT_ATTEMPTS))?
            .checked_add(u64::from(attempt))?;
        (attempt < KEPT_ATTEMPTS && e < self.memo.keys as u64).then_some(e as usize)
    }

    /// The value kept in `entry`, if one is.
    #[inline]
    pub fn get(&self, entry: usize) -> Option<&T> {
        let (stamp, value) = &self.memo.entries[entry];
        (*stamp == self.memo.generation).then_some(value)
    }

    /// Keeps `value` in `entry`.
    #[inline]
    pub fn set(&mut self, entry: usize, value: T) {
        self.memo.entries[entry] = (self.memo.generation, value);
    }
}

impl<T: 'static> Drop for KeyMemo<T> {
    fn drop(&mut self) {
        self.home
            .set(Some(std::mem::replace(&mut self.memo, Memo::empty())));
    }
}

thread_local! {
    /// The jitter words kept by the last job on this thread.
    static KEPT_JITTER: std::cell::Cell<Option<Memo<[u32; KEPT_WORDS]>>> =
        const { std::cell::Cell::new(None) };
}

/// The jitter stream of one seed, for one (run, policy) job. The first
/// words of every key read are kept ([`KeyMemo`]), so the run's other
/// policies do not position ChaCha again.
pub struct Jitter {
    rng: ChaCha8Rng,
    blocks: Blocks,
    kept: KeyMemo<[u32; KEPT_WORDS]>,
}

/// Keys whose first words [`Jitter::keep`] computes at once.
const KEYS_AT_ONCE: u32 = 4;

impl Jitter {
    /// The jitter stream of `seed`, for a run of `calls` calls.
    pub fn new(seed: u64, calls: u64) -> Jitter {
        let rng = stream(seed, STREAM_JITTER);
        Jitter {
            blocks: Blocks::of(&rng),
            rng,
            // Jitter words depend on the seed and key alone.
            kept: KeyMemo::new(&KEPT_JITTER, seed, calls, 0),
        }
    }

    /// Keeps the first words of key `(call, attempt)`, kept in `entry`, and
    /// of the same call's next three attempts: the four blocks cost what
    /// one costs (a call that fails once is likely to fail again, under
    /// this policy or the run's others). Returns the key's words.
    #[cold]
    fn keep(&mut self, call: u64, attempt: u32, entry: usize) -> [u32; KEPT_WORDS] {
        let block = |k: u32| (word_pos(call, attempt + k) / 16) as u64;
        let words = self
            .blocks
            .first_words([block(0), block(1), block(2), block(3)]);
        for k in 1..KEYS_AT_ONCE {
            if let Some(e) = self.kept.entry(call, attempt + k) {
                if self.kept.get(e).is_none() {
                    self.kept.set(e, words[k as usize]);
                }
            }
        }
        self.kept.set(entry, words[0]);
        words[0]
    }
}

/// The ChaCha8 block function of one key and stream (RFC 8439's ChaCha
/// with 8 rounds, a 64-bit block counter in words 12 and 13 and the
/// 64-bit stream in words 14 and 15, as `ChaCha8Rng` lays them out), four
/// blocks at a time at any counters: the first words of four jitter keys
/// for the price of `ChaCha8Rng`'s one positioning, which computes four
/// consecutive blocks of which a key reads the first.
#[derive(Debug, Clone, Copy)]
struct Blocks {
    key: [u32; 8],
    stream: u64,
}

/// ChaCha's constant words, "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Four lanes of one state word, one lane per block.
type Lanes = [u32; 4];

/// The rounds of ChaCha8 on four blocks, in plain integer arithmetic (the
/// reference for the vector version, and the version on targets without
/// one).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
// Four words of each lane at once: the lane index is the natural loop.
#[allow(clippy::needless_range_loop)]
fn rounds_plain(init: &[Lanes; 16]) -> [Lanes; 16] {
    let mut x = *init;
    let mut quarter = |a: usize, b: usize, c: usize, d: usize| {
        for l in 0..4 {
            let [mut va, mut vb, mut vc, mut vd] = [x[a][l], x[b][l], x[c][l], x[d][l]];
            va = va.wrapping_add(vb);
            vd = (vd ^ va).rotate_left(16);
            vc = vc.wrapping_add(vd);
            vb = (vb ^ vc).rotate_left(12);
            va = va.wrapping_add(vb);
            vd = (vd ^ va).rotate_left(8);
            vc = vc.wrapping_add(vd);
            vb = (vb ^ vc).rotate_left(7);
            [x[a][l], x[b][l], x[c][l], x[d][l]] = [va, vb, vc, vd];
        }
    };
    for _ in 0..4 {
        quarter(0, 4, 8, 12);
        quarter(1, 5, 9, 13);
        quarter(2, 6, 10, 14);
        quarter(3, 7, 11, 15);
        quarter(0, 5, 10, 15);
        quarter(1, 6, 11, 12);
        quarter(2, 7, 8, 13);
        quarter(3, 4, 9, 14);
    }
    x
}

/// The rounds of ChaCha8 on four blocks, one SSE2 vector per state word
/// (SSE2 is part of every x86-64 processor).
#[cfg(target_arch = "x86_64")]
// The intrinsics used are safe to call on x86-64 with recent compilers and
// need `unsafe` on older ones.
#[allow(unused_unsafe)]
fn rounds_sse2(init: &[Lanes; 16]) -> [Lanes; 16] {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_or_si128, _mm_set_epi32, _mm_slli_epi32, _mm_srli_epi32,
        _mm_xor_si128,
    };
    #[inline(always)]
    fn rotate<const L: i32, const R: i32>(v: __m128i) -> __m128i {
        unsafe { _mm_or_si128(_mm_slli_epi32::<L>(v), _mm_srli_epi32::<R>(v)) }
    }
    let mut x: [__m128i; 16] = std::array::from_fn(|w| {
        let [a, b, c, d] = init[w].map(|v| v as i32);
        unsafe { _mm_set_epi32(d, c, b, a) }
    });
    #[inline(always)]
    fn quarter(x: &mut [__m128i; 16], a: usize, b: usize, c: usize, d: usize) {
        unsafe {
            x[a] = _mm_add_epi32(x[a], x[b]);
            x[d] = rotate::<16, 16>(_mm_xor_si128(x[d], x[a]));
            x[c] = _mm_add_epi32(x[c], x[d]);
            x[b] = rotate::<12, 20>(_mm_xor_si128(x[b], x[c]));
            x[a] = _mm_add_epi32(x[a], x[b]);
            x[d] = rotate::<8, 24>(_mm_xor_si128(x[d], x[a]));
            x[c] = _mm_add_epi32(x[c], x[d]);
            x[b] = rotate::<7, 25>(_mm_xor_si128(x[b], x[c]));
        }
    }
    for _ in 0..4 {
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 1, 5, 9, 13);
        quarter(&mut x, 2, 6, 10, 14);
        quarter(&mut x, 3, 7, 11, 15);
        quarter(&mut x, 0, 5, 10, 15);
        quarter(&mut x, 1, 6, 11, 12);
        quarter(&mut x, 2, 7, 8, 13);
        quarter(&mut x, 3, 4, 9, 14);
    }
    // SAFETY: `__m128i` and `[u32; 4]` are both 16 plain bytes, lane 0
    // first on little-endian x86-64, and every bit pattern is valid for
    // both.
    x.map(|v| unsafe { std::mem::transmute::<__m128i, Lanes>(v) })
}

impl Blocks {
    /// The block function of `rng`'s key and stream.
    fn of(rng: &ChaCha8Rng) -> Blocks {
        let seed = rng.get_seed();
        let key = std::array::from_fn(|i| {
            u32::from_le_bytes([
                seed[4 * i],
                seed[4 * i + 1],
                seed[4 * i + 2],
                seed[4 * i + 3],
            ])
        });
        Blocks {
            key,
            stream: rng.get_stream(),
        }
    }

    /// The first [`KEPT_WORDS`] words of the blocks at `counters`.
    fn first_words(&self, counters: [u64; 4]) -> [[u32; KEPT_WORDS]; 4] {
        let init: [Lanes; 16] = std::array::from_fn(|w| match w {
            0..4 => [SIGMA[w]; 4],
            4..12 => [self.key[w - 4]; 4],
            12 => counters.map(|c| c as u32),
            13 => counters.map(|c| (c >> 32) as u32),
            14 => [self.stream as u32; 4],
            _ => [(self.stream >> 32) as u32; 4],
        });
        #[cfg(target_arch = "x86_64")]
        let x = rounds_sse2(&init);
        #[cfg(not(target_arch = "x86_64"))]
        let x = rounds_plain(&init);
        std::array::from_fn(|l| std::array::from_fn(|w| x[w][l].wrapping_add(init[w][l])))
    }
}

/// The jitter RNG of one `(call, attempt)`: the ChaCha8 jitter stream from
/// [`word_pos`]`(call, attempt)` on. Nothing is computed until the first
/// draw, so decisions that draw nothing cost nothing.
pub struct KeyedRng<'a> {
    jitter: &'a mut Jitter,
    call: u64,
    attempt: u32,
    /// Words read so far.
    read: u32,
    /// Whether ChaCha is positioned where the next word stands.
    direct: bool,
}

impl<'a> KeyedRng<'a> {
    /// The jitter of `(call, attempt)` on `jitter`.
    #[inline]
    pub fn new(jitter: &'a mut Jitter, call: u64, attempt: u32) -> Self {
        // Where the key's words are kept, if they are, is found at the
        // first draw: decisions that draw nothing (constant and
        // exponential backoffs, stops) pay for the key alone.
        KeyedRng {
            jitter,
            call,
            attempt,
            read: 0,
            direct: false,
        }
    }

    /// The next 32-bit word of the key's stream.
    #[inline]
    fn word(&mut self) -> u32 {
        let j = &mut *self.jitter;
        if self.direct {
            return j.rng.next_u32();
        }
        let i = self.read as usize;
        self.read += 1;
        if i < KEPT_WORDS {
            if let Some(e) = j.kept.entry(self.call, self.attempt) {
                if let Some(words) = j.kept.get(e) {
                    return words[i];
                }
                return j.keep(self.call, self.attempt, e)[i];
            }
        }
        // Past the kept words, or a key not kept: ChaCha itself, from here.
        j.rng
            .set_word_pos(word_pos(self.call, self.attempt) + i as u128);
        self.direct = true;
        j.rng.next_u32()
    }
}

impl RngCore for KeyedRng<'_> {
    fn next_u32(&mut self) -> u32 {
        self.word()
    }

    fn next_u64(&mut self) -> u64 {
        // Two words, low first, as ChaCha's own generator joins them.
        let low = u64::from(self.word());
        let high = u64::from(self.word());
        (high << 32) | low
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Whole words, little-endian, as ChaCha's own generator fills.
        for chunk in dest.chunks_mut(4) {
            let bytes = self.word().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// SplitMix64: derives the seeds of `--runs` from the scenario seed.
pub fn splitmix64(z: u64) -> u64 {
    mix(z.wrapping_add(GAMMA))
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
    use rand::Rng;

    #[test]
    fn keys_are_independent_of_access_order() {
        let a = Outcomes::new(9);
        let b = Outcomes::new(9);
        let x1 = a.at(5, 2).raw(3);
        let _ = b.at(7, 1).raw(3);
        let _ = b.at(0, 9).raw(0);
        assert_eq!(b.at(5, 2).raw(3), x1);
        assert_ne!(a.at(5, 3).raw(3), x1);
        assert_ne!(a.at(6, 2).raw(3), x1);
        assert_ne!(a.at(5, 2).raw(4), x1);
    }

    #[test]
    fn seeds_and_streams_differ() {
        assert_ne!(
            Outcomes::new(9).at(1, 1).raw(0),
            Outcomes::new(10).at(1, 1).raw(0)
        );
        let mut jitter = stream(9, STREAM_JITTER);
        let mut arrivals = stream(9, STREAM_ARRIVALS);
        assert_ne!(jitter.next_u64(), arrivals.next_u64());
    }

    #[test]
    fn the_generator_is_pinned() {
        // The reference values of SplitMix64 seeded with 1234567, and the
        // first outcome draws of seed 1, so that a change to either shows.
        let mut state = 1_234_567u64;
        let mut next = || {
            state = state.wrapping_add(GAMMA);
            mix(state)
        };
        assert_eq!(next(), 6_457_827_717_110_365_317);
        assert_eq!(next(), 3_203_168_211_198_807_973);
        // Computed independently of this code, from the formulas above.
        let d = Outcomes::new(1).at(0, 1);
        assert_eq!(d.raw(0), 9_459_778_095_439_575_880);
        assert_eq!(d.raw(1), 7_197_866_368_195_992_639);
    }

    #[test]
    fn dice_are_uniform_and_uncorrelated_across_keys() {
        // 20 bins over 100,000 keys (same word, consecutive calls): the
        // chi-square statistic with 19 degrees of freedom stays far below
        // its 99.9% point, 43.8; and neighbouring keys are uncorrelated.
        let o = Outcomes::new(42);
        let n = 100_000u32;
        let mut bins = [0u64; 20];
        let mut sum_xy = 0.0;
        let mut prev = o.at(0, 1).unit(MODEL);
        for call in 0..n {
            let x = o.at(call, 1).unit(MODEL);
            bins[(x * 20.0) as usize] += 1;
            sum_xy += (x - 0.5) * (prev - 0.5);
            prev = x;
        }
        let expected = n as f64 / 20.0;
        let chi2: f64 = bins
            .iter()
            .map(|&b| (b as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 43.8, "chi-square {chi2}");
        // Correlation of neighbours: variance of a uniform is 1/12; the
        // standard error of the mean product is about 1/(12 sqrt n).
        let correlation = (sum_xy / n as f64) * 12.0;
        assert!(correlation.abs() < 0.02, "correlation {correlation}");
    }

    #[test]
    fn legs_read_words_of_their_own() {
        let d = Outcomes::new(3).at(4, 2);
        assert_eq!(d.leg(0).raw(5), d.raw(5));
        assert_eq!(d.leg(2).raw(3), d.raw(2 * LEG + 3));
        // Past every failure model's dice.
        const { assert!(LEG > MODEL + 2 * 12) };
        assert_ne!(d.leg(1).raw(0), d.raw(0));
    }

    #[test]
    fn keyed_jitter_is_the_chacha_stream_from_its_key() {
        // Every (call, attempt) reads the ChaCha8 stream from its own
        // position, in any mix of widths, past the kept words too, whether
        // the key was kept by this job, an earlier job of the same seed,
        // or not at all.
        let mut state = 1u64;
        // Too many calls to keep; kept, then found by the next job of the
        // same seed; another seed; the first again.
        for (seed, calls) in [(5, 700), (5, 300), (5, 300), (6, 300), (5, 300)] {
            let mut jitter = Jitter::new(seed, calls);
            let mut reference = stream(seed, STREAM_JITTER);
            for round in 0..300u32 {
                state = splitmix64(state);
                let call = state % (calls + 50);
                let attempt = ((state >> 20) % 80) as u32 + 1;
                let reads = 1 + (round % 12) as usize;
                let mut rng = KeyedRng::new(&mut jitter, call, attempt);
                reference.set_word_pos(word_pos(call, attempt));
                for r in 0..reads {
                    match (state >> (r % 60)) % 3 {
                        0 => assert_eq!(rng.next_u32(), reference.next_u32()),
                        1 => assert_eq!(rng.next_u64(), reference.next_u64()),
                        _ => {
                            let (mut a, mut b) = ([0u8; 7], [0u8; 7]);
                            rng.fill_bytes(&mut a);
                            reference.fill_bytes(&mut b);
                            assert_eq!(a, b);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn blocks_are_chacha8_at_any_counters() {
        // Counters far apart, next to each other, and across the carry
        // from the low word into the high one; several seeds and streams.
        let mut state = 11u64;
        for round in 0..200u64 {
            state = splitmix64(state);
            let seed = state % 7;
            let mut rng = stream(seed, 1 + round % 4);
            let blocks = Blocks::of(&rng);
            let base = match round % 3 {
                0 => state >> 3,
                1 => u64::from(u32::MAX) - 1,
                _ => state % 1000,
            };
            let counters = [
                base,
                base.wrapping_add(1),
                state >> 20,
                base.wrapping_add(3),
            ];
            let words = blocks.first_words(counters);
            for (lane, counter) in counters.into_iter().enumerate() {
                rng.set_word_pos(u128::from(counter) * 16);
                let mut expected = [0u32; KEPT_WORDS];
                rng.fill(&mut expected[..]);
                assert_eq!(words[lane], expected, "round {round}, counter {counter}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_rounds_equal_plain_ones() {
        let mut state = 3u64;
        for _ in 0..100 {
            let init: [Lanes; 16] = std::array::from_fn(|_| {
                std::array::from_fn(|_| {
                    state = splitmix64(state);
                    state as u32
                })
            });
            assert_eq!(rounds_sse2(&init), rounds_plain(&init));
        }
    }

    #[test]
    fn a_key_memo_keeps_values_for_its_run_only() {
        thread_local! {
            static HOME: std::cell::Cell<Option<Memo<u64>>> = const { std::cell::Cell::new(None) };
        }
        let mut memo = KeyMemo::new(&HOME, 5, 10, 0);
        assert_eq!(memo.entry(9, 63), Some(9 * 64 + 63));
        assert_eq!(memo.entry(10, 0), None, "past the run's calls");
        assert_eq!(memo.entry(0, 64), None, "past the kept attempts");
        assert_eq!(memo.entry(u64::MAX, 1), None);
        let e = memo.entry(3, 2).unwrap();
        assert_eq!(memo.get(e), None);
        memo.set(e, 42);
        assert_eq!(memo.get(e), Some(&42));
        drop(memo);
        // The next job of the same run finds it; a job of another run (or
        // of as many calls under another seed) does not, nor does the
        // first run once it was replaced.
        let memo = KeyMemo::new(&HOME, 5, 10, 0);
        assert_eq!(memo.get(e), Some(&42));
        drop(memo);
        let mut memo = KeyMemo::new(&HOME, 6, 10, 0);
        assert_eq!(memo.get(e), None);
        memo.set(e, 7);
        drop(memo);
        assert_eq!(KeyMemo::new(&HOME, 5, 10, 0).get(e), None);
        // Nor does a job of the same seed and calls in another context
        // (another scenario's latency).
        let mut memo = KeyMemo::new(&HOME, 5, 10, 0);
        memo.set(e, 9);
        drop(memo);
        assert_eq!(KeyMemo::new(&HOME, 5, 10, 1).get(e), None);
        // Too many calls: nothing kept.
        let memo = KeyMemo::new(&HOME, 5, KEPT_CALLS + 1, 0);
        assert_eq!(memo.entry(0, 1), None);
    }

    #[test]
    fn units_are_in_range() {
        assert_eq!(unit(0), 0.0);
        assert!(unit(u64::MAX) < 1.0);
    }
}
