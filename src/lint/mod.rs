//! The policy doctor: every error and every doubtful setting of a policy at
//! once.
//!
//! [`RetryConfig::lint`](crate::RetryConfig::lint) and
//! [`lint_toml`] check a configuration, and [`Engine::lint`] (or
//! [`RetryPolicy::lint`](crate::RetryPolicy::lint)) a built policy. Each
//! returns a list of [`Diagnostic`]s: errors (a configuration that
//! [`validate`](crate::RetryConfig::validate) refuses) and warnings (a
//! valid policy that probably does not do what was meant), each with the
//! field's dotted path, a stable code and a message that says what to do.
//!
//! ```
//! use reflexio::lint::{lint_toml, Severity};
//!
//! let report = lint_toml("deadline = \"0s\"\nmax_attempts = 0\nmax_unknown_attempts = -1\n");
//! let paths: Vec<&str> = report.diagnostics.iter().map(|d| d.path.as_str()).collect();
//! assert_eq!(paths, ["deadline", "max_attempts", "max_unknown_attempts"]);
//! assert!(report.diagnostics.iter().all(|d| d.severity == Severity::Error && d.span.is_some()));
//! ```
//!
//! # Warnings
//!
//! | code | fires when |
//! | --- | --- |
//! | `cap_never_triggers` | a class cap or `max_unknown_attempts` is at or above `max_attempts`: the global cap always stops the call first |
//! | `never_retried_class` | `auth`, `permission` or `permanent` has a cap or a strategy: those classes are never retried |
//! | `deadline_below_first_delay` | the deadline is shorter than the smallest first delay: the first retry is always cut to start at the deadline, and is the last |
//! | `retry_after_beyond_deadline` | `max_retry_after` is longer than the deadline: a hint that long always ends the call at once |
//! | `attempts_after_deadline` | the worst-case envelope shows that the last attempts can never start before the deadline, even when every attempt fails at once and every delay is its strategy's smallest |
//! | `lockstep` | a strategy without jitter (`constant`, `exponential`) serves a class allowed more than two attempts: clients that fail together retry together |
//! | `decorrelated_saturation` | decorrelated jitter can reach its `max` within the attempt cap; once saturated, about two thirds of its draws are exactly `max` |
//! | `unbounded_unknown` | no deadline and no cap on unknown errors: an error nobody classified is retried up to `max_attempts` with no time limit |
//!
//! Warnings are checked once a configuration has no errors, because they
//! reason about the values the policy would run with. A code listed in the
//! configuration's `allow = [...]` (or passed to [`Diagnostics::allow`])
//! silences that warning; errors cannot be silenced. The `lockstep` rule,
//! for example, is worth silencing for a policy whose callers never fail
//! at the same moment.
//!
//! A built [`Engine`] does not know which of its values were written out
//! and which are defaults, nor which class strategies were set on purpose:
//! its lint checks the unknown cap only when it differs from the default,
//! and names strategies by the classes that use them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::class::ErrorClass;
use crate::engine::{Engine, Envelope};
use crate::strategy::{BackoffKind, Strategy};

#[cfg(feature = "config")]
mod parse;
#[cfg(feature = "config")]
pub use parse::{lint_toml, lint_toml_table, lint_toml_tables, LintReport};

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration is refused.
    Error,
    /// The policy is valid but probably not what was meant.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem found in a policy.
///
/// `#[non_exhaustive]`: only the lint creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code: one of [`WARNINGS`] for warnings; for errors
    /// [`SYNTAX`] (the TOML itself), [`INVALID`] (a field of the wrong
    /// type, an unknown field, a malformed value) or [`REFUSED`] (a
    /// well-formed value the policy does not allow).
    pub code: &'static str,
    /// Dotted path of the field (`classes.rate_limit.max_attempts`); empty
    /// when the problem concerns the document as a whole.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
    /// Byte range of the field in the source, when linted from text.
    pub span: Option<Range<usize>>,
}

impl Diagnostic {
    fn warning(code: &'static str, path: impl Into<String>, message: String) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            code,
            path: path.into(),
            message,
            span: None,
        }
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: ", self.severity, self.code)?;
        if !self.path.is_empty() {
            write!(f, "`{}`: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Error code: the document is not valid TOML.
pub const SYNTAX: &str = "syntax";
/// Error code: a field of the wrong type, an unknown field, or a value
/// that does not parse (a duration without a unit, a negative count).
pub const INVALID: &str = "invalid";
/// Error code: a well-formed value the policy does not allow (zero
/// attempts, a base above its max, an unknown class or strategy).
pub const REFUSED: &str = "refused";

/// Every warning code, with a one-line summary; see the [module
/// docs](self) for when each fires.
pub const WARNINGS: [(&str, &str); 8] = [
    (
        "cap_never_triggers",
        "a class or unknown cap at or above max_attempts never stops a call",
    ),
    (
        "never_retried_class",
        "a cap or strategy on auth, permission or permanent, which are never retried",
    ),
    (
        "deadline_below_first_delay",
        "the deadline is shorter than the smallest first delay",
    ),
    (
        "retry_after_beyond_deadline",
        "max_retry_after is longer than the deadline",
    ),
    (
        "attempts_after_deadline",
        "some attempts can never start before the deadline",
    ),
    (
        "lockstep",
        "a strategy without jitter with more than two attempts",
    ),
    (
        "decorrelated_saturation",
        "decorrelated jitter reaches its max within the attempt cap",
    ),
    (
        "unbounded_unknown",
        "no deadline and no cap on unknown errors",
    ),
];

/// Whether `code` is one of the [`WARNINGS`].
pub fn is_warning_code(code: &str) -> bool {
    WARNINGS.iter().any(|(c, _)| *c == code)
}

/// The warning codes as a comma-separated list, for messages.
pub fn warning_codes() -> String {
    let codes: Vec<&str> = WARNINGS.iter().map(|(c, _)| *c).collect();
    codes.join(", ")
}

/// Checks a list of codes to allow: `Err` names the first one that is not
/// a warning code.
pub fn check_allow(codes: &[String]) -> Result<(), String> {
    match codes.iter().find(|c| !is_warning_code(c)) {
        Some(code) => Err(format!(
            "`{code}` is not a warning code; allowed: {}",
            warning_codes()
        )),
        None => Ok(()),
    }
}

/// Helpers on a list of diagnostics.
pub trait Diagnostics {
    /// Drops the warnings whose code is in `codes`.
    fn allow<S: AsRef<str>>(self, codes: &[S]) -> Self;
    /// How many errors.
    fn errors(&self) -> usize;
    /// How many warnings.
    fn warnings(&self) -> usize;
}

impl Diagnostics for Vec<Diagnostic> {
    fn allow<S: AsRef<str>>(mut self, codes: &[S]) -> Self {
        self.retain(|d| d.is_error() || !codes.iter().any(|c| c.as_ref() == d.code));
        self
    }

    fn errors(&self) -> usize {
        self.iter().filter(|d| d.is_error()).count()
    }

    fn warnings(&self) -> usize {
        self.len() - self.errors()
    }
}

/// What a lint knows beyond the engine: where each setting comes from.
pub(crate) struct Origins {
    /// Per class: the path of the strategy it uses (`strategy` or
    /// `classes.<name>.strategy`).
    pub strategy_path: [String; 8],
    /// Per class: whether it has a strategy of its own, if known.
    pub own_strategy: [Option<bool>; 8],
    /// Whether `max_unknown_attempts` was set explicitly.
    pub unknown_cap_explicit: bool,
}

fn same_strategy(a: &Arc<dyn Strategy>, b: &Arc<dyn Strategy>) -> bool {
    Arc::ptr_eq(a, b) || matches!((a.backoff(), b.backoff()), (Some(x), Some(y)) if x == y)
}

impl Origins {
    /// What can be told from a built engine alone: the strategy shared by
    /// the most classes is the default one.
    fn of_engine(engine: &Engine) -> Origins {
        let shared = |c: ErrorClass| {
            ErrorClass::ALL
                .iter()
                .filter(|o| same_strategy(engine.strategy(c), engine.strategy(**o)))
                .count()
        };
        let default = ErrorClass::ALL
            .into_iter()
            .max_by_key(|c| (shared(*c), std::cmp::Reverse(c.index())))
            .unwrap_or(ErrorClass::Unknown);
        let strategy_path = ErrorClass::ALL.map(|c| {
            if same_strategy(engine.strategy(c), engine.strategy(default)) {
                "strategy".to_owned()
            } else {
                format!("classes.{c}.strategy")
            }
        });
        Origins {
            strategy_path,
            own_strategy: [None; 8],
            unknown_cap_explicit: engine.envelope().max_unknown_attempts
                != Envelope::default().max_unknown_attempts,
        }
    }
}

impl Engine {
    /// The warnings of this policy (a built engine has no errors): see the
    /// [`lint`](crate::lint) module for the rules and their codes.
    pub fn lint(&self) -> Vec<Diagnostic> {
        warnings(self, &Origins::of_engine(self))
    }
}

fn show(d: Duration) -> String {
    crate_format_duration(d)
}

#[cfg(feature = "config")]
fn crate_format_duration(d: Duration) -> String {
    crate::config::format_duration(d)
}

#[cfg(not(feature = "config"))]
fn crate_format_duration(d: Duration) -> String {
    format!("{d:?}")
}

fn strategy_name(strategy: &dyn Strategy) -> String {
    match strategy.backoff() {
        Some(b) => format!("`{}`", b.kind()),
        None => "this strategy".to_owned(),
    }
}

/// Every warning rule, over an engine and what is known of its origins.
pub(crate) fn warnings(engine: &Engine, origins: &Origins) -> Vec<Diagnostic> {
    let env = engine.envelope();
    let max = env.max_attempts;
    let mut out = Vec::new();

    // Caps that never trigger, and settings on classes never retried.
    for class in ErrorClass::ALL {
        let i = class.index();
        if !class.is_retryable() {
            if env.class_max_attempts[i].is_some() {
                out.push(Diagnostic::warning(
                    "never_retried_class",
                    format!("classes.{class}.max_attempts"),
                    format!(
                        "{class} errors are never retried, so this cap never applies; remove it"
                    ),
                ));
            }
            if origins.own_strategy[i] == Some(true) {
                out.push(Diagnostic::warning(
                    "never_retried_class",
                    format!("classes.{class}.strategy"),
                    format!("{class} errors are never retried, so this strategy is never used; remove it"),
                ));
            }
            continue;
        }
        let Some(cap) = env.class_cap(class) else {
            continue;
        };
        if cap < max {
            continue;
        }
        let (path, what) = if class == ErrorClass::Unknown {
            if !origins.unknown_cap_explicit {
                continue;
            }
            (
                "max_unknown_attempts".to_owned(),
                "unknown errors".to_owned(),
            )
        } else {
            (
                format!("classes.{class}.max_attempts"),
                format!("{class} errors"),
            )
        };
        out.push(Diagnostic::warning(
            "cap_never_triggers",
            path,
            format!(
                "{cap} is not below max_attempts ({max}): the global cap always stops the call first, so this cap never changes it. Lower it below {max} to give {what} fewer attempts than other failures, or remove it"
            ),
        ));
    }

    let retryable: Vec<ErrorClass> = ErrorClass::ALL
        .into_iter()
        .filter(|c| env.may_retry(*c))
        .collect();
    let limit = |c: ErrorClass| env.class_cap(c).map_or(max, |cap| cap.min(max));

    // The deadline against the delays and hints.
    let mut deadline_short = false;
    if let Some(deadline) = env.deadline {
        let firsts: Option<Vec<Duration>> = retryable
            .iter()
            .map(|c| engine.strategy(*c).bounds(1, None).map(|(lo, _)| lo))
            .collect();
        if let Some(first) = firsts.and_then(|v| v.into_iter().min()) {
            if deadline < first {
                deadline_short = true;
                out.push(Diagnostic::warning(
                    "deadline_below_first_delay",
                    "deadline",
                    format!(
                        "the deadline ({}) is shorter than the smallest first delay ({}): the first retry is always cut to start at the deadline, and no retry can follow it. Raise the deadline above {} or lower the strategies' base",
                        show(deadline),
                        show(first),
                        show(first)
                    ),
                ));
            }
        }
        if env.max_retry_after > deadline {
            out.push(Diagnostic::warning(
                "retry_after_beyond_deadline",
                "max_retry_after",
                format!(
                    "{} is longer than the deadline ({}): a server hint longer than the time left ends the call at once, so a ceiling this high never turns a long hint into a wait that fits. Lower max_retry_after well below the deadline (longer hints are cut to it)",
                    show(env.max_retry_after),
                    show(deadline)
                ),
            ));
        }
        let worst = engine.worst_case();
        if !deadline_short
            && worst.bounded
            && worst.max_attempts_before_deadline < worst.max_attempts
        {
            let k = worst.max_attempts_before_deadline;
            let never = if k + 1 == worst.max_attempts {
                format!("attempt {} never happens", worst.max_attempts)
            } else {
                format!("attempts {} to {} never happen", k + 1, worst.max_attempts)
            };
            out.push(Diagnostic::warning(
                "attempts_after_deadline",
                "max_attempts",
                format!(
                    "at most {k} of the {} attempts can start before the deadline ({}), even if every attempt fails at once and every delay is its strategy's smallest: {never}. Lower max_attempts to {k}, raise the deadline, or shorten the delays",
                    worst.max_attempts,
                    show(deadline),
                ),
            ));
        }
    }

    // Per strategy: jitter.
    let mut by_path: BTreeMap<&str, (ErrorClass, u32)> = BTreeMap::new();
    for class in &retryable {
        let entry = by_path
            .entry(origins.strategy_path[class.index()].as_str())
            .or_insert((*class, 0));
        entry.1 = entry.1.max(limit(*class));
    }
    for (path, (class, attempts)) in by_path {
        let strategy = engine.strategy(class);
        let retries = attempts.saturating_sub(1);
        let jitter_free = (1..=retries.min(64)).all(|n| {
            // The largest previous delay is what a jitter-free strategy
            // drew last time: its own upper bound.
            strategy.bounds(n, None).is_some_and(|(lo, hi)| lo == hi)
        });
        if attempts > 2 && jitter_free {
            out.push(Diagnostic::warning(
                "lockstep",
                path,
                format!(
                    "{} has no jitter and is allowed up to {attempts} attempts: clients that fail together retry at the same instants and collide again (the contention and rate-limit scenarios show the cost). Use equal_jitter or full_jitter, keep max_attempts at 2, or add \"lockstep\" to `allow` if callers never fail at the same moment",
                    strategy_name(strategy.as_ref())
                ),
            ));
        }
        if let Some(b) = strategy.backoff() {
            if b.kind() == BackoffKind::DecorrelatedJitter && retries > 0 {
                // The largest previous delay grows threefold until it
                // passes max; from then on draws can land exactly on max.
                let mut previous = b.base();
                let saturates_at = (1..=retries).find(|_| {
                    let reach = previous.saturating_mul(3);
                    previous = reach.min(b.max());
                    reach > b.max()
                });
                if let Some(n) = saturates_at {
                    // base × 3^retries; saturated within 64 steps, so a
                    // cap of billions of attempts costs no more.
                    let mut needed = b.base();
                    for _ in 0..retries {
                        if needed == Duration::MAX {
                            break;
                        }
                        needed = needed.saturating_mul(3);
                    }
                    out.push(Diagnostic::warning(
                        "decorrelated_saturation",
                        path,
                        format!(
                            "decorrelated jitter (base {}, max {}) can draw exactly its max from retry {n} on, within the {retries} retries allowed: once saturated, about two thirds of its draws are exactly {}, so clients retry in step again. Use equal_jitter, or raise max to {} (base × 3^{}) or more",
                            show(b.base()),
                            show(b.max()),
                            show(b.max()),
                            show(needed),
                            retries
                        ),
                    ));
                }
            }
        }
    }

    if env.deadline.is_none()
        && env.max_unknown_attempts.is_none()
        && env.may_retry(ErrorClass::Unknown)
    {
        out.push(Diagnostic::warning(
            "unbounded_unknown",
            "max_unknown_attempts",
            format!(
                "there is no deadline and no cap on unknown errors: an error nobody classified is retried up to max_attempts ({max}) times with no time limit. Set max_unknown_attempts (the default is 2) or a deadline"
            ),
        ));
    }
    out
}
