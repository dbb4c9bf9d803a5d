//! The event queue: a radix heap of events ordered by `(time, sequence
//! number)`.
//!
//! A discrete-event simulation never schedules into the past: every event
//! pushed is later, in `(time, sequence)` order, than the last one popped.
//! A radix heap exploits that. Keys are `time × 2^64 + sequence`, unique;
//! bucket `b > 0` holds the keys whose highest bit differing from the last
//! key popped is bit `b − 1`, bucket 0 the key equal to it. A push is a
//! bit scan and a `Vec::push`; a pop takes bucket 0's single key, or first
//! moves the smallest non-empty bucket's keys down into lower buckets
//! around its minimum. Each key moves down a few times at most, so both
//! cost about a constant, where a binary heap's pop costs two comparisons
//! and a move per level of its depth.

/// A scheduled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    /// Virtual time, ns.
    pub time: u64,
    /// Scheduling order, unique: breaks ties between simultaneous events.
    pub seq: u64,
    /// The call id (arrivals), slot (attempt steps) or model (server done).
    pub target: u32,
    /// What happens.
    pub kind: u8,
}

impl Event {
    #[inline]
    fn key(&self) -> u128 {
        (u128::from(self.time) << 64) | u128::from(self.seq)
    }
}

const BUCKETS: usize = 129;

/// A monotone priority queue of [`Event`]s.
pub(crate) struct Queue {
    buckets: Vec<Vec<Event>>,
    /// Bit `b` set: bucket `b` is not empty.
    occupied: [u64; 3],
    /// The key last popped (or moved down around).
    last: u128,
    seq: u64,
}

impl Queue {
    /// An empty queue.
    pub fn new() -> Queue {
        Queue {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: [0; 3],
            last: 0,
            seq: 0,
        }
    }

    #[inline]
    fn bucket(&self, key: u128) -> usize {
        (128 - (key ^ self.last).leading_zeros()) as usize
    }

    #[inline]
    fn put(&mut self, e: Event) {
        let b = self.bucket(e.key());
        self.occupied[b >> 6] |= 1 << (b & 63);
        self.buckets[b].push(e);
    }

    /// Schedules `kind` for `target` at `time`, after every event already
    /// scheduled for the same time. `time` must not be before the last
    /// event popped.
    #[inline]
    pub fn push(&mut self, time: u64, kind: u8, target: u32) {
        self.seq += 1;
        let e = Event {
            time,
            seq: self.seq,
            target,
            kind,
        };
        debug_assert!(e.key() > self.last, "an event scheduled in the past");
        self.put(e);
    }

    /// The earliest event, removed.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        if self.occupied[0] & 1 == 0 {
            let b = self.first_occupied()?;
            let mut items = std::mem::take(&mut self.buckets[b]);
            self.occupied[b >> 6] &= !(1 << (b & 63));
            self.last = items.iter().map(Event::key).min().unwrap_or(self.last);
            for e in items.drain(..) {
                self.put(e);
            }
            self.buckets[b] = items;
        }
        let e = self.buckets[0].pop();
        self.occupied[0] &= !1;
        e
    }

    fn first_occupied(&self) -> Option<usize> {
        self.occupied
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    #[test]
    fn pops_in_time_then_scheduling_order_like_a_binary_heap() {
        // Random pushes at or after the current time, interleaved with
        // pops, including many ties and huge jumps.
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut q = Queue::new();
        let mut reference = BinaryHeap::new();
        let mut seq = 0u64;
        let mut now = 0u64;
        for step in 0..200_000u32 {
            let r = next();
            if r % 3 != 0 || reference.is_empty() {
                let delta = match r % 7 {
                    0 => 0,
                    1 => r >> 60,
                    2 => r >> 40,
                    3 => u64::MAX - now,
                    _ => r >> 20,
                };
                let time = now.saturating_add(delta);
                seq += 1;
                q.push(time, (step % 6) as u8, step);
                reference.push(Reverse((time, seq, step)));
            } else {
                let Reverse((time, _, target)) = reference.pop().unwrap();
                let e = q.pop().unwrap();
                assert_eq!((e.time, e.target), (time, target), "step {step}");
                now = time;
            }
        }
        while let Some(Reverse((time, _, target))) = reference.pop() {
            let e = q.pop().unwrap();
            assert_eq!((e.time, e.target), (time, target));
        }
        assert!(q.pop().is_none());
    }
}
