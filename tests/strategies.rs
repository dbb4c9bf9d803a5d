//! The built-in backoff strategies at known points: defaults, formulas,
//! precision below a millisecond, extreme inputs and how draws spread.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use reflexio::strategy::default_backoff;
use reflexio::{Backoff, BackoffKind, DelayContext, ErrorClass, Strategy};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ctx(attempt: u32, previous: Option<Duration>) -> DelayContext {
    DelayContext::new(attempt, ErrorClass::Transient, previous)
}

fn draws(backoff: &Backoff, attempt: u32, previous: Option<Duration>, n: usize) -> Vec<Duration> {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    (0..n)
        .map(|_| backoff.delay(&ctx(attempt, previous), &mut rng))
        .collect()
}

#[test]
fn defaults_match_the_documentation() {
    let expect = [
        (BackoffKind::DecorrelatedJitter, ms(250), ms(30_000)),
        (BackoffKind::EqualJitter, ms(250), ms(30_000)),
        (BackoffKind::TokenBackoff, ms(250), ms(20_000)),
        (BackoffKind::FullJitter, ms(250), ms(30_000)),
        (BackoffKind::Exponential, ms(250), ms(30_000)),
        (BackoffKind::Constant, ms(250), ms(250)),
    ];
    for (kind, base, max) in expect {
        let backoff = Backoff::with_defaults(kind);
        assert_eq!((backoff.base(), backoff.max()), (base, max), "{kind}");
        assert_eq!(kind.defaults(), (base, max));
    }
    assert_eq!(
        default_backoff(),
        Backoff::decorrelated_jitter(ms(250), ms(5000))
    );
}

#[test]
fn formulas_at_known_attempts() {
    let equal = Backoff::equal_jitter(ms(250), ms(30_000));
    assert_eq!(equal.bounds(1, None), (ms(250), ms(500)));
    assert_eq!(equal.bounds(2, None), (ms(500), ms(1000)));
    // 250 ms × 2^7 = 32 s, capped at 30 s.
    assert_eq!(equal.bounds(7, None), (ms(15_000), ms(30_000)));

    let token = Backoff::token_backoff(ms(250), ms(20_000));
    assert_eq!(
        token.bounds(1, None),
        (Duration::from_micros(187_500), ms(375))
    );

    let full = Backoff::full_jitter(ms(100), ms(1000));
    assert_eq!(full.bounds(1, None), (Duration::ZERO, ms(200)));
    assert_eq!(full.bounds(4, None), (Duration::ZERO, ms(1000)));

    let exponential = Backoff::exponential(ms(100), ms(10_000));
    let sequence: Vec<_> = (1..=8)
        .map(|a| exponential.delay(&ctx(a, None), &mut ChaCha8Rng::seed_from_u64(0)))
        .collect();
    assert_eq!(
        sequence,
        [
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            ms(1600),
            ms(3200),
            ms(6400),
            ms(10_000)
        ]
    );

    let constant = Backoff::constant(ms(700));
    assert_eq!(constant.max(), ms(700));
    assert!(draws(&constant, 9, Some(ms(1)), 20)
        .iter()
        .all(|d| *d == ms(700)));

    let decorrelated = Backoff::decorrelated_jitter(ms(250), ms(5000));
    // Previous starts at base: [base, 3 × base].
    assert_eq!(decorrelated.bounds(1, None), (ms(250), ms(750)));
    assert_eq!(decorrelated.bounds(5, Some(ms(1000))), (ms(250), ms(3000)));
    assert_eq!(decorrelated.bounds(5, Some(ms(4000))), (ms(250), ms(5000)));
}

#[test]
fn base_above_max_is_lowered_and_huge_durations_saturate() {
    let backoff = Backoff::equal_jitter(ms(5000), ms(1000));
    assert_eq!(backoff.base(), ms(1000));
    assert_eq!(backoff.max(), ms(1000));

    let huge = Backoff::full_jitter(Duration::MAX, Duration::MAX);
    assert_eq!(huge.max(), Duration::from_nanos(u64::MAX));
    for attempt in [1, 64, 10_000, u32::MAX] {
        let (lo, hi) = huge.bounds(attempt, Some(Duration::MAX));
        assert!(lo <= hi && hi <= huge.max());
        for d in draws(&huge, attempt, Some(Duration::MAX), 5) {
            assert!(d <= hi);
        }
    }
}

#[test]
fn every_kind_survives_extreme_attempts() {
    for kind in BackoffKind::ALL {
        for (base, max) in [
            (Duration::from_nanos(1), Duration::from_nanos(3)),
            (ms(250), ms(30_000)),
            (Duration::from_secs(3600), Duration::MAX),
        ] {
            let backoff = Backoff::new(kind, base, max);
            for attempt in [1, 2, 63, 64, 65, 128, 10_000, u32::MAX - 1, u32::MAX] {
                let (lo, hi) = backoff.bounds(attempt, None);
                for d in draws(&backoff, attempt, Some(hi), 3) {
                    assert!(lo <= d && d <= backoff.max(), "{kind} at {attempt}");
                }
            }
        }
    }
}

#[test]
fn sub_millisecond_delays_keep_their_nanoseconds() {
    for kind in [
        BackoffKind::DecorrelatedJitter,
        BackoffKind::EqualJitter,
        BackoffKind::TokenBackoff,
        BackoffKind::FullJitter,
    ] {
        let backoff = Backoff::new(kind, Duration::from_nanos(1500), ms(1));
        let all = draws(&backoff, 2, None, 50);
        assert!(all.iter().all(|d| *d < ms(1)), "{kind}");
        assert!(
            all.iter().any(|d| d.subsec_nanos() % 1000 != 0),
            "{kind} rounds to microseconds: {all:?}"
        );
    }
    let exponential = Backoff::exponential(Duration::from_nanos(1001), ms(1));
    assert_eq!(exponential.bounds(2, None).0, Duration::from_nanos(2002));
    let token = Backoff::token_backoff(Duration::from_nanos(1000), ms(1));
    assert_eq!(token.bounds(1, None).1, Duration::from_nanos(1500));
}

#[test]
fn jitter_spreads_over_its_whole_range() {
    for backoff in [
        Backoff::equal_jitter(ms(100), ms(10_000)),
        Backoff::token_backoff(ms(100), ms(10_000)),
        Backoff::full_jitter(ms(100), ms(10_000)),
        Backoff::decorrelated_jitter(ms(100), ms(10_000)),
    ] {
        let (lo, hi) = backoff.bounds(3, Some(ms(800)));
        let all = draws(&backoff, 3, Some(ms(800)), 2000);
        let min = *all.iter().min().unwrap();
        let max = *all.iter().max().unwrap();
        let width = hi - lo;
        assert!(
            min - lo < width / 20,
            "{backoff}: lowest {min:?} of {lo:?}..{hi:?}"
        );
        assert!(
            hi - max < width / 20,
            "{backoff}: highest {max:?} of {lo:?}..{hi:?}"
        );
        let mean = all.iter().sum::<Duration>() / all.len() as u32;
        let middle = lo + width / 2;
        let off = mean.abs_diff(middle);
        assert!(
            off < width / 10,
            "{backoff}: mean {mean:?}, middle {middle:?}"
        );
    }
}

/// The documented weakness of decorrelated jitter, and the formula
/// ("uniform in [base, 3 × previous], capped at max"): once saturated,
/// about two thirds of all draws land exactly on max.
#[test]
fn saturated_decorrelated_jitter_lands_on_max_as_documented() {
    let (base, max) = (ms(250), ms(5000));
    let backoff = Backoff::decorrelated_jitter(base, max);
    let all = draws(&backoff, 20, Some(max), 3000);
    let on_cap = all.iter().filter(|d| **d == max).count() as f64 / all.len() as f64;
    // P(uniform[base, 3 max] >= max) = (3 max - max) / (3 max - base) ≈ 0.68.
    assert!(
        (0.6..0.75).contains(&on_cap),
        "{:.3} of saturated draws land on max",
        on_cap
    );
}

#[test]
fn closures_are_strategies() {
    let linear = reflexio::strategy::from_fn(|ctx, _rng| ms(10) * ctx.attempt);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert_eq!(linear.delay(&ctx(3, None), &mut rng), ms(30));
    // A closure documents no bounds.
    assert_eq!(Strategy::bounds(&linear, 3, None), None);
    assert_eq!(
        Strategy::bounds(&Backoff::constant(ms(5)), 3, None),
        Some((ms(5), ms(5)))
    );
}

#[test]
fn kind_names_are_the_configuration_names() {
    let names: Vec<_> = BackoffKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "decorrelated_jitter",
            "equal_jitter",
            "token_backoff",
            "full_jitter",
            "exponential",
            "constant"
        ]
    );
    for kind in BackoffKind::ALL {
        assert_eq!(BackoffKind::from_name(kind.name()), Some(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    assert_eq!(BackoffKind::from_name("EqualJitter"), None);
}
