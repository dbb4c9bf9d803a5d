//! The violation checker, fed deliberately broken decision sequences: it
//! must report every breach, with its call.

use std::time::Duration;

use reflexio::engine::{Decision, Envelope, Retry, StopReason};
use reflexio::strategy::Backoff;
use reflexio::{Classification, ErrorClass};
use reflexio_sim::check::{Audit, Checker, ViolationKind};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn checker() -> Checker {
    let mut envelope = Envelope::default();
    envelope.deadline = Some(ms(1000));
    envelope.max_attempts = 3;
    envelope.max_unknown_attempts = Some(2);
    envelope.class_max_attempts[ErrorClass::RateLimit.index()] = Some(2);
    envelope.max_retry_after = ms(500);
    Checker::new(envelope, [Backoff::equal_jitter(ms(100), ms(400)); 8])
}

fn retry(delay: u64, strategy: u64, next: u32) -> Decision {
    Decision::Retry(Retry {
        delay: ms(delay),
        strategy_delay: ms(strategy),
        next_attempt: next,
    })
}

fn kinds(c: &Checker) -> Vec<ViolationKind> {
    c.violations().iter().map(|v| v.kind).collect()
}

fn failure(class: ErrorClass) -> Classification {
    Classification::new(class)
}

#[test]
fn a_well_behaved_sequence_passes() {
    let mut c = checker();
    let mut audit = Audit::default();
    c.attempt_started(7, 1, ms(0));
    // equal jitter, attempt 1: [100, 200] ms.
    c.decided(
        &mut audit,
        7,
        1,
        failure(ErrorClass::Transient),
        ms(10),
        &retry(150, 150, 2),
    );
    c.attempt_started(7, 2, ms(160));
    c.decided(
        &mut audit,
        7,
        2,
        failure(ErrorClass::Transient),
        ms(170),
        &retry(300, 300, 3),
    );
    c.attempt_started(7, 3, ms(470));
    c.decided(
        &mut audit,
        7,
        3,
        failure(ErrorClass::Transient),
        ms(480),
        &Decision::Stop(StopReason::MaxAttemptsExceeded),
    );
    audit.event(true);
    c.finished(&audit, 7, 3);
    assert_eq!(c.count(), 0, "{:?}", c.violations());
}

#[test]
fn retrying_a_permanent_error_is_reported() {
    let mut c = checker();
    let mut audit = Audit::default();
    c.decided(
        &mut audit,
        1,
        1,
        failure(ErrorClass::Permanent),
        ms(5),
        &retry(150, 150, 2),
    );
    assert_eq!(kinds(&c), [ViolationKind::RetryOfNeverRetryClass]);
    assert_eq!(c.violations()[0].call, 1);
}

#[test]
fn attempts_over_the_global_and_class_caps_are_reported() {
    let mut c = checker();
    let mut audit = Audit::default();
    c.attempt_started(2, 4, ms(100));
    assert_eq!(kinds(&c), [ViolationKind::AttemptOverCap]);

    let mut c = checker();
    c.decided(
        &mut audit,
        3,
        1,
        failure(ErrorClass::RateLimit),
        ms(5),
        &retry(150, 150, 2),
    );
    assert_eq!(c.count(), 0);
    // The second rate_limit failure reaches the class cap of 2: no retry.
    c.decided(
        &mut audit,
        3,
        2,
        failure(ErrorClass::RateLimit),
        ms(200),
        &retry(300, 300, 3),
    );
    assert_eq!(kinds(&c), [ViolationKind::AttemptOverCap]);
    assert!(c.violations()[0]
        .detail
        .contains("classes.rate_limit.max_attempts"));

    let mut c = checker();
    let mut audit = Audit::default();
    c.decided(
        &mut audit,
        4,
        1,
        failure(ErrorClass::Unknown),
        ms(5),
        &retry(150, 150, 2),
    );
    c.decided(
        &mut audit,
        4,
        2,
        failure(ErrorClass::Unknown),
        ms(200),
        &retry(300, 300, 3),
    );
    assert_eq!(kinds(&c), [ViolationKind::AttemptOverCap]);
    assert!(c.violations()[0].detail.contains("max_unknown_attempts"));

    let mut c = checker();
    let mut audit = Audit::default();
    c.decided(
        &mut audit,
        5,
        3,
        failure(ErrorClass::Transient),
        ms(5),
        &retry(500, 500, 4),
    );
    assert!(kinds(&c).contains(&ViolationKind::AttemptOverCap));
}

#[test]
fn deadline_breaches_are_reported() {
    let mut c = checker();
    let mut audit = Audit::default();
    c.attempt_started(8, 2, ms(1001));
    assert_eq!(kinds(&c), [ViolationKind::AttemptAfterDeadline]);

    let mut c = checker();
    c.decided(
        &mut audit,
        9,
        1,
        failure(ErrorClass::Transient),
        ms(900),
        &retry(150, 150, 2),
    );
    assert_eq!(kinds(&c), [ViolationKind::SleepPastDeadline]);
}

#[test]
fn delays_outside_the_strategy_bounds_are_reported() {
    let mut c = checker();
    let mut audit = Audit::default();
    // equal jitter, attempt 1: [100, 200] ms; 250 is out.
    c.decided(
        &mut audit,
        10,
        1,
        failure(ErrorClass::Transient),
        ms(5),
        &retry(250, 250, 2),
    );
    assert_eq!(
        kinds(&c),
        [
            ViolationKind::DelayOutOfBounds,
            ViolationKind::DelayOutOfBounds
        ]
    );

    // A fine draw but a slept delay that neither the draw nor a hint explains.
    let mut c = checker();
    let mut audit = Audit::default();
    c.decided(
        &mut audit,
        11,
        1,
        failure(ErrorClass::Transient),
        ms(5),
        &retry(450, 150, 2),
    );
    assert_eq!(kinds(&c), [ViolationKind::DelayOutOfBounds]);

    // The same delay explained by a server hint is fine.
    let mut c = checker();
    let mut audit = Audit::default();
    let hinted = failure(ErrorClass::RateLimit).with_retry_after(ms(450));
    c.decided(&mut audit, 12, 1, hinted, ms(5), &retry(450, 150, 2));
    assert_eq!(c.count(), 0, "{:?}", c.violations());
}

#[test]
fn a_call_without_exactly_one_terminal_event_is_reported() {
    let mut c = checker();
    let audit = Audit::default();
    c.finished(&audit, 13, 1);
    let mut twice = Audit::default();
    twice.event(true);
    twice.event(true);
    c.finished(&twice, 14, 2);
    assert_eq!(
        kinds(&c),
        [ViolationKind::TerminalEvents, ViolationKind::TerminalEvents]
    );
    assert_eq!(c.violations()[1].call, 14);
}
