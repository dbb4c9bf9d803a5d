//! The event queue: events ordered by `(time, sequence number)`.
//!
//! A min-heap of [`Event`]s, ordered by the virtual time and then the
//! scheduling sequence (unique), so simultaneous events come out in the
//! order they were scheduled. With many events pending the heap is
//! four-ary: four children per node halve its depth against a binary
//! heap, so a pop, which walks from the root to a leaf, makes half as many
//! moves (each of 24 bytes, the children of a node sharing one or two
//! cache lines) for twice as many comparisons, which are cheap. With few
//! pending it is binary (see [`WIDE_ABOVE`]). (A radix heap over the same keys, which a
//! discrete-event loop allows since it never schedules into the past,
//! measured 5-10% slower than the binary heap this replaces on the
//! small-run benchmark: with about one pending event per call in flight
//! the heap stays shallow.)

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
    /// The ordering key: the time, then the sequence.
    #[inline(always)]
    fn key(&self) -> u128 {
        (u128::from(self.time) << 64) | u128::from(self.seq)
    }

    /// Whether `self` comes out before `other`.
    #[inline(always)]
    fn before(&self, other: &Event) -> bool {
        self.key() < other.key()
    }
}

/// Past this many pending events the heap becomes four-ary, and below
/// [`NARROW_BELOW`] binary again. With few events pending, a binary heap's
/// walk of one comparison per level is the cheaper (the queued workload
/// of reports/BENCHMARKS.md, about ten pending, is 6% faster with it);
/// with many, the four-ary heap's half as many levels are (a run with
/// thousands of calls in flight is 2-12% faster with it). The heap is
/// rearranged in place when it crosses either bound, which the gap
/// between them keeps rare.
const WIDE_ABOVE: usize = 32;

/// See [`WIDE_ABOVE`].
const NARROW_BELOW: usize = 8;

/// A priority queue of [`Event`]s.
pub(crate) struct Queue {
    heap: Vec<Event>,
    /// The one event scheduled with [`Queue::push_next`], held beside the
    /// heap.
    next: Option<Event>,
    seq: u64,
    /// Whether the event at the heap's root was handed out by the last
    /// pop, and waits to be removed or replaced.
    taken: bool,
    /// Whether the heap is four-ary (else binary): see [`WIDE_ABOVE`].
    wide: bool,
}

impl Queue {
    /// An empty queue.
    pub fn new() -> Queue {
        Queue {
            heap: Vec::new(),
            next: None,
            seq: 0,
            taken: false,
            wide: false,
        }
    }

    /// Schedules `kind` for `target` at `time` as [`Queue::push`] does, for
    /// a stream of events of which at most one is ever pending (the next
    /// arrival of an open workload): it waits beside the heap, so it costs
    /// a comparison instead of a heap insertion and removal. Replaces the
    /// pending one if there is one.
    #[inline]
    pub fn push_next(&mut self, time: u64, kind: u8, target: u32) {
        self.seq += 1;
        self.next = Some(Event {
            time,
            seq: self.seq,
            target,
            kind,
        });
    }

    /// Schedules `kind` for `target` at `time`, after every event already
    /// scheduled for the same time.
    #[inline]
    pub fn push(&mut self, time: u64, kind: u8, target: u32) {
        self.seq += 1;
        let event = Event {
            time,
            seq: self.seq,
            target,
            kind,
        };
        if self.taken {
            // The last pop's event still sits at the root: the new one
            // takes its place and sinks, one walk down instead of a walk
            // down for the removal and one up for the insertion.
            self.taken = false;
            self.sift_down(event);
            return;
        }
        // Sift the hole up from the new leaf.
        let shift = if self.wide { 2 } else { 1 };
        let mut hole = self.heap.len();
        self.heap.push(event);
        while hole > 0 {
            let parent = (hole - 1) >> shift;
            let p = self.heap[parent];
            if !event.before(&p) {
                break;
            }
            self.heap[hole] = p;
            hole = parent;
        }
        self.heap[hole] = event;
        if !self.wide && self.heap.len() > WIDE_ABOVE {
            self.rearrange(true);
        }
    }

    /// The sequence number an event scheduled now would get, taken without
    /// scheduling anything: for a step that the loop runs at once, but
    /// that must be ordered as if it had been queued now.
    #[inline]
    pub fn reserve(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The earliest event, removed.
    ///
    /// An event taken from the heap stays at its root until the next push
    /// or pop: most events schedule exactly one more, which then replaces
    /// it in place.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        if self.taken {
            self.taken = false;
            if let Some(last) = self.heap.pop() {
                if !self.heap.is_empty() {
                    self.sift_down(last);
                }
            }
            if self.wide && self.heap.len() < NARROW_BELOW {
                self.rearrange(false);
            }
        }
        if let Some(next) = self.next {
            if self.heap.first().is_none_or(|top| next.before(top)) {
                self.next = None;
                return Some(next);
            }
        }
        let top = *self.heap.first()?;
        self.taken = true;
        Some(top)
    }

    /// Places `event` at the root of the non-empty heap, in place of the
    /// root's event, and sinks it to where it belongs.
    #[inline]
    fn sift_down(&mut self, event: Event) {
        if self.wide {
            sink::<4>(&mut self.heap, 0, event);
        } else {
            sink::<2>(&mut self.heap, 0, event);
        }
    }

    /// Makes the heap four-ary (`wide`) or binary, in place.
    #[cold]
    fn rearrange(&mut self, wide: bool) {
        self.wide = wide;
        let len = self.heap.len();
        if len < 2 {
            return;
        }
        let arity = if wide { 4 } else { 2 };
        for i in (0..=(len - 2) / arity).rev() {
            let event = self.heap[i];
            if wide {
                sink::<4>(&mut self.heap, i, event);
            } else {
                sink::<2>(&mut self.heap, i, event);
            }
        }
    }
}

/// Places `event` at `hole` of an `A`-ary heap whose subtrees below `hole`
/// are heaps, in place of the event there, and sinks it to where it
/// belongs.
#[inline]
fn sink<const A: usize>(heap: &mut [Event], mut hole: usize, event: Event) {
    let len = heap.len();
    let key = event.key();
    loop {
        let first = hole * A + 1;
        let best = if first + A <= len {
            if A == 4 {
                // A full node: the earliest of four children in a tree of
                // three comparisons, chosen by index arithmetic rather
                // than branches, as which child wins is as unpredictable
                // as the events' times.
                let k = [
                    heap[first].key(),
                    heap[first + 1].key(),
                    heap[first + 2].key(),
                    heap[first + 3].key(),
                ];
                let a = usize::from(k[1] < k[0]);
                let b = 2 + usize::from(k[3] < k[2]);
                let pick = usize::from(k[b] < k[a]);
                first + a + pick * (b - a)
            } else {
                let mut best = first;
                for c in first + 1..first + A {
                    best = if heap[c].key() < heap[best].key() {
                        c
                    } else {
                        best
                    };
                }
                best
            }
        } else if first < len {
            let mut best = first;
            for c in first + 1..len {
                if heap[c].key() < heap[best].key() {
                    best = c;
                }
            }
            best
        } else {
            break;
        };
        if heap[best].key() >= key {
            break;
        }
        heap[hole] = heap[best];
        hole = best;
    }
    heap[hole] = event;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    #[test]
    fn a_heap_that_grows_and_shrinks_across_its_shapes_keeps_the_order() {
        // Waves of pushes and pops around both bounds, many times over, so
        // that the heap is rearranged both ways while it holds events.
        let mut q = Queue::new();
        let mut reference = BinaryHeap::new();
        let mut seq = 0u64;
        let mut now = 0u64;
        let mut state = 11u64;
        for wave in 0..200u64 {
            let size = [3, 40, 9, 7, 33, 100, 1, 64][wave as usize % 8];
            while reference.len() < size {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let time = now + (state >> 50);
                seq += 1;
                q.push(time, 0, seq as u32);
                reference.push(Reverse((time, seq)));
            }
            while reference.len() > size / 3 {
                let Reverse((time, seq)) = reference.pop().unwrap();
                let e = q.pop().unwrap();
                assert_eq!((e.time, e.target), (time, seq as u32), "wave {wave}");
                now = time;
            }
        }
    }

    #[test]
    fn pops_in_time_then_scheduling_order() {
        // Random pushes at or after the current time, interleaved with
        // pops, including many ties and huge jumps; some through
        // `push_next`, at most one pending at a time.
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
        let mut pending_next: Option<u32> = None;
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
                if pending_next.is_none() && r % 5 == 0 {
                    q.push_next(time, (step % 6) as u8, step);
                    pending_next = Some(step);
                } else {
                    q.push(time, (step % 6) as u8, step);
                }
                reference.push(Reverse((time, seq, step)));
            } else {
                let Reverse((time, _, target)) = reference.pop().unwrap();
                let e = q.pop().unwrap();
                assert_eq!((e.time, e.target), (time, target), "step {step}");
                if pending_next == Some(target) {
                    pending_next = None;
                }
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
