//! Scenario files: parsing, validation and error messages.
//!
//! A scenario is a TOML document; sim/README.md documents every field. It
//! is parsed into raw serde structures (so that type errors and unknown
//! fields are reported by the TOML parser with their exact position), then
//! validated into a [`Scenario`], whose errors name the field's dotted path
//! and are located in the source for a line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use reflexio::config::{
    display_path, join_key, line_col, locate, parse_duration, ConfigError, ConfigWarning,
    RetryConfig,
};
use reflexio::engine::{Engine, Envelope};
use reflexio::strategy::Backoff;
use reflexio::BudgetSpec;
use reflexio::ErrorClass;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::latency::{Anatomy, Latency, RetryLegs, MAX_ROUND_TRIPS};
use crate::limits;
use crate::model::{Model, ModelKind, Outcome, Window};

/// The most calls one scenario may simulate.
pub const MAX_CALLS: u64 = 50_000_000;
/// Bytes of per-call results kept while one policy runs (end-to-end
/// latency, sleep, attempts and outcome).
pub const BYTES_PER_CALL: u64 = 24;
/// Bytes a call takes while in flight (its engine state, the checker's
/// record, its planned attempt and its queued event), rounded up.
pub const BYTES_IN_FLIGHT: u64 = 512;
/// The most memory one policy run may be expected to take.
pub const MAX_MEMORY: u64 = 4 << 30;
/// The most calls that may be in flight at once during a run; a run that
/// gets there stops with an error rather than exhaust memory.
pub const MAX_IN_FLIGHT: u64 = MAX_MEMORY / BYTES_IN_FLIGHT;
/// The most failure models one scenario may chain.
pub const MAX_MODELS: usize = 12;
/// The most runs `--runs` accepts.
pub const MAX_RUNS: u32 = 10_000;

// The whole numbers each count field takes. A value of the wrong type, or
// one its field's type cannot hold, is told its field's range when parsed
// ([`whole`]); the checks after parsing refuse the rest of what lies
// outside, with the same bounds.

/// The runs a scenario's `runs` and `--runs` take.
pub const RUNS: RangeInclusive<u32> = 1..=MAX_RUNS;
/// A workload's `calls`.
const CALLS: RangeInclusive<u64> = 1..=MAX_CALLS;
/// `max_simulated_attempts`.
const SIMULATED_ATTEMPTS: RangeInclusive<u64> = 1..=u64::MAX;
/// `latency.round_trips`.
const ROUND_TRIPS: RangeInclusive<u32> = 1..=MAX_ROUND_TRIPS;
/// A contention model's `rows`.
const ROWS: RangeInclusive<u32> = 1..=limits::MAX_ROWS;
/// A closed loop's `clients`, a rate limiter's `burst`, an overload
/// model's `capacity`.
const AT_LEAST_ONE: RangeInclusive<u32> = 1..=u32::MAX;

/// Reads a whole number into `T`; the wrong type, or a number `T` cannot
/// hold, is an error saying `range`.
struct WholeVisitor<T>(RangeInclusive<T>);

impl<T: TryFrom<i128> + fmt::Display> WholeVisitor<T> {
    fn refuse<E: de::Error>(&self, unexpected: de::Unexpected<'_>) -> E {
        E::invalid_value(unexpected, self)
    }
}

impl<T: TryFrom<i128> + fmt::Display> de::Visitor<'_> for WholeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a whole number from {} to {}",
            self.0.start(),
            self.0.end()
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(i128::from(v)).map_err(|_| self.refuse(de::Unexpected::Signed(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(i128::from(v)).map_err(|_| self.refuse(de::Unexpected::Unsigned(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
        T::try_from(v).map_err(|_| self.refuse(de::Unexpected::Other(&format!("integer `{v}`"))))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
        i128::try_from(v)
            .ok()
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| self.refuse(de::Unexpected::Other(&format!("integer `{v}`"))))
    }
}

/// A whole-number field whose parse errors say `range`.
fn whole<'de, D, T>(d: D, range: RangeInclusive<T>) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128> + fmt::Display,
{
    d.deserialize_any(WholeVisitor(range)).map(Some)
}

fn de_runs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole(d, RUNS)
}

fn de_calls<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    whole(d, CALLS)
}

fn de_simulated_attempts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    whole(d, SIMULATED_ATTEMPTS)
}

fn de_round_trips<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole(d, ROUND_TRIPS)
}

fn de_rows<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole(d, ROWS)
}

fn de_at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole(d, AT_LEAST_ONE)
}

/// A validated scenario, ready to [`run`](crate::run).
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario's name (the file stem unless `name` is set); names the
    /// report folder.
    pub name: String,
    /// What the scenario is about.
    pub description: String,
    /// The seed of every random draw.
    pub seed: u64,
    /// How many runs over derived seeds (`--runs` overrides).
    pub runs: u32,
    /// Width of the time buckets of the load-over-time series.
    pub bucket: Duration,
    /// Calls and their arrivals: the workload under test.
    pub workload: Workload,
    /// Background workloads sharing the service with the workload under
    /// test, each under its own fixed policy or none (`[[background]]`).
    pub background: Vec<Background>,
    /// The legs of one attempt, before any overload: a call's first
    /// attempt's, and its retries' (`[latency.retry]`).
    pub latency: Anatomy,
    /// How the clients' timers behave (`[client]`).
    pub client: Client,
    /// The failure models, consulted in order.
    pub failures: Vec<Model>,
    /// The policies compared, in file order.
    pub policies: Vec<Policy>,
    /// Warnings about valid but doubtful policies, each naming its field.
    pub warnings: Vec<String>,
    /// The budget of simulated attempts over all runs and policies; a
    /// simulation that needs more stops with an error.
    pub max_simulated_attempts: u64,
}

/// How the clients' timers behave: every client of the scenario, the
/// workload under test's and its background's (`[client]`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Client {
    /// How much later than asked a client wakes from a retry's sleep:
    /// drawn for every sleep of positive length (a zero delay sleeps not
    /// at all), from the draws of the attempt that failed. `None`: sleeps
    /// end exactly when asked.
    pub oversleep: Option<Latency>,
}

impl Client {
    /// The `[client]` table, normalised; empty when it sets nothing.
    pub fn to_toml(&self) -> String {
        match &self.oversleep {
            None => String::new(),
            Some(l) => format!(
                "[client]\noversleep = {}\n# a retry's sleep ends on average {} ms after the delay asked for\n",
                l.to_toml(),
                l.mean_sampled_ns().round() / 1e6
            ),
        }
    }
}

/// How many calls are made and when they arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Number of calls.
    pub calls: u64,
    /// How calls arrive.
    pub arrival: Arrival,
    /// Piecewise arrival rates of `fixed_rate` and `poisson` arrivals, in
    /// time order; empty for one rate throughout (the arrival's own).
    pub phases: Vec<Phase>,
    /// The operation name handed to the engine.
    pub operation: String,
}

impl Workload {
    /// The `[workload]` table, normalised: every default written, phases
    /// with the times they cover as comments.
    pub fn to_toml(&self) -> String {
        use reflexio::config::format_duration as d;
        let mut text = format!("[workload]\ncalls = {}\n", self.calls);
        match &self.arrival {
            Arrival::AllAtOnce => text.push_str("arrival = \"all_at_once\"\n"),
            Arrival::ClosedLoop {
                clients,
                think_time,
            } => text.push_str(&format!(
                "arrival = \"closed_loop\"\nclients = {clients}\nthink_time = \"{}\"\n",
                d(*think_time)
            )),
            Arrival::FixedRate { rate } | Arrival::Poisson { rate } => {
                let name = if matches!(self.arrival, Arrival::Poisson { .. }) {
                    "poisson"
                } else {
                    "fixed_rate"
                };
                text.push_str(&format!("arrival = \"{name}\"\n"));
                if self.phases.is_empty() {
                    text.push_str(&format!("rate = {rate:?}\n"));
                } else {
                    text.push_str("phases = [\n");
                    let mut from = Duration::ZERO;
                    for p in &self.phases {
                        match p.length {
                            Some(l) => {
                                text.push_str(&format!(
                                    "  {{ rate = {:?}, for = \"{}\" }}, # {} to {}\n",
                                    p.rate,
                                    d(l),
                                    d(from),
                                    d(from + l)
                                ));
                                from += l;
                            }
                            None => text.push_str(&format!(
                                "  {{ rate = {:?} }}, # from {} until every call has arrived\n",
                                p.rate,
                                d(from)
                            )),
                        }
                    }
                    text.push_str("]\n");
                }
            }
        }
        text.push_str(&format!("operation = {}\n", toml_string(&self.operation)));
        text
    }
}

/// `text` as a TOML string that parses back to exactly `text`, written
/// by the `toml` crate (Rust's `{:?}` is not TOML: it writes `\u{301}`
/// for a combining accent).
pub(crate) fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Why a background workload's policy may not have a retry budget.
pub(crate) const BACKGROUND_BUDGET: &str = "a background workload's policy may not have a retry budget: a budget belongs to the policy under test; drop the `budget` table";

/// The most background workloads one scenario may have.
pub const MAX_BACKGROUND: usize = 16;

/// A background workload (`[[background]]`): traffic that shares the
/// service with the workload under test, the same under every compared
/// policy.
#[derive(Debug, Clone)]
pub struct Background {
    /// Its name, unique among the scenario's background workloads.
    pub name: String,
    /// Its calls and their arrivals (never a closed loop); its operation
    /// name is its name.
    pub workload: Workload,
    /// Its own retry policy (no retry budget), or `None`: one attempt per
    /// call.
    pub policy: Option<Policy>,
    /// The engine its calls run: its policy's, or one that never retries.
    pub engine: Engine,
}

impl Background {
    /// The `[[background]]` table, normalised like [`Workload::to_toml`],
    /// with its policy (if any) as a `[background.policy]` table.
    pub fn to_toml(&self) -> String {
        let workload = self.workload.to_toml();
        let mut text = format!("[[background]]\nname = {}\n", toml_string(&self.name));
        for line in workload.lines().skip(1) {
            if !line.starts_with("operation = ") {
                text.push_str(line);
                text.push('\n');
            }
        }
        match &self.policy {
            None => text.push_str("# no policy: one attempt per call\n"),
            Some(p) => {
                // As `check` prints a policy, nested under the table.
                match crate::cli::describe_policy("background.policy", &p.config, &p.engine) {
                    Ok(body) => text.push_str(&body),
                    Err(e) => text.push_str(&format!("# policy: {e}\n")),
                }
            }
        }
        text
    }
}

/// One phase of piecewise arrival rates.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Calls per second during the phase.
    pub rate: f64,
    /// How long it lasts; `None` for the last phase, which lasts until
    /// every call has arrived.
    pub length: Option<Duration>,
    /// When it ends, in virtual ns from time zero; `None` for the last.
    pub end: Option<u64>,
}

/// The most phases one workload may have.
pub const MAX_PHASES: usize = 64;

/// Arrival processes.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// Every call starts at time zero.
    AllAtOnce,
    /// One call every `1 / rate` seconds.
    FixedRate {
        /// Calls per second.
        rate: f64,
    },
    /// Exponential inter-arrival times with mean `1 / rate` seconds.
    Poisson {
        /// Calls per second.
        rate: f64,
    },
    /// `clients` clients, each making calls back to back.
    ClosedLoop {
        /// Concurrent clients.
        clients: u32,
        /// Pause between a call's end and the same client's next call.
        think_time: Duration,
    },
}

/// One policy under test.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The table name under `[policies]`.
    pub name: String,
    /// The configuration as written.
    pub config: RetryConfig,
    /// The decision engine built from it.
    pub engine: Engine,
    /// The envelope, for the checker.
    pub envelope: Envelope,
    /// Each class's strategy, for the checker's bounds.
    pub backoffs: [Backoff; 8],
    /// The `[budget]` table's retry budget, defaults filled in: shared by
    /// all the policy's calls, fresh for each run.
    pub budget: Option<BudgetSpec>,
}

/// A scenario that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (as named by the caller).
    pub file: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// Dotted path of the field (`failures[1].probability`), or empty.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": `{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Where an error is, before it is located in the source.
struct Err0 {
    path: String,
    message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> Err0 {
    Err0 {
        path: path.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------
// Raw serde structures

/// A point in time or a length of time that may be zero (`"0s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Time(Duration);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_time(&text).map(Time).map_err(de::Error::custom)
    }
}

pub use reflexio::config::parse_time;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    seed: Option<u64>,
    #[serde(default, deserialize_with = "de_runs")]
    runs: Option<u32>,
    bucket: Option<Time>,
    #[serde(default, deserialize_with = "de_simulated_attempts")]
    max_simulated_attempts: Option<u64>,
    workload: Option<RawWorkload>,
    #[serde(default)]
    background: Vec<RawBackground>,
    latency: Option<RawLatency>,
    client: Option<RawClient>,
    #[serde(default)]
    failures: Vec<RawFailure>,
    #[serde(default)]
    policies: BTreeMap<String, toml::Spanned<RetryConfig>>,
}

/// The values `arrival` takes, as a scenario writes them (the variants of
/// `ArrivalKind`, in its order).
pub(crate) const ARRIVALS: [&str; 4] = ["all_at_once", "fixed_rate", "poisson", "closed_loop"];

/// The values a failure model's `model` takes (the variants of
/// `ModelName`, in its order).
pub(crate) const MODELS: [&str; 7] = [
    "random",
    "outage",
    "rate_limit",
    "contention",
    "overload",
    "scripted",
    "trace",
];

/// The values `distribution` takes (the variants of `DistKind`, in its
/// order).
pub(crate) const DISTRIBUTIONS: [&str; 5] =
    ["constant", "uniform", "normal", "exponential", "lognormal"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ArrivalKind {
    AllAtOnce,
    FixedRate,
    Poisson,
    ClosedLoop,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    #[serde(default, deserialize_with = "de_calls")]
    calls: Option<u64>,
    arrival: Option<ArrivalKind>,
    rate: Option<f64>,
    #[serde(default, deserialize_with = "de_at_least_one")]
    clients: Option<u32>,
    think_time: Option<Time>,
    phases: Option<Vec<RawPhase>>,
    operation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackground {
    name: Option<String>,
    #[serde(default, deserialize_with = "de_calls")]
    calls: Option<u64>,
    arrival: Option<ArrivalKind>,
    rate: Option<f64>,
    phases: Option<Vec<RawPhase>>,
    policy: Option<RetryConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    oversleep: Option<RawLeg>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    rate: Option<f64>,
    #[serde(rename = "for")]
    length: Option<Time>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DistKind {
    Constant,
    Uniform,
    Normal,
    Exponential,
    Lognormal,
}

impl DistKind {
    /// The parameters this distribution reads (besides `distribution`).
    fn params(self) -> &'static [&'static str] {
        match self {
            DistKind::Constant => &["value"],
            DistKind::Uniform => &["min", "max"],
            DistKind::Normal => &["mean", "std_dev"],
            DistKind::Exponential => &["mean"],
            DistKind::Lognormal => &["median", "sigma"],
        }
    }
}

/// The parameters of the distribution called `name`, if there is one.
pub(crate) fn distribution_fields(name: &str) -> Option<&'static [&'static str]> {
    DistKind::deserialize(de::value::StrDeserializer::<de::value::Error>::new(name))
        .ok()
        .map(DistKind::params)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    distribution: Option<DistKind>,
    value: Option<Time>,
    min: Option<Time>,
    max: Option<Time>,
    mean: Option<Time>,
    std_dev: Option<Time>,
    median: Option<Time>,
    sigma: Option<f64>,
    request: Option<RawLeg>,
    service: Option<RawLeg>,
    response: Option<RawLeg>,
    #[serde(default, deserialize_with = "de_round_trips")]
    round_trips: Option<u32>,
    retry: Option<RawRetry>,
}

/// `[latency.retry]`: the legs of every attempt after a call's first, in
/// the forms of `[latency]` but for `round_trips` (read only to refuse it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    distribution: Option<DistKind>,
    value: Option<Time>,
    min: Option<Time>,
    max: Option<Time>,
    mean: Option<Time>,
    std_dev: Option<Time>,
    median: Option<Time>,
    sigma: Option<f64>,
    request: Option<RawLeg>,
    service: Option<RawLeg>,
    response: Option<RawLeg>,
    round_trips: Option<toml::Value>,
}

/// One leg's distribution: `request = { distribution = "constant", value = "10ms" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLeg {
    distribution: DistKind,
    value: Option<Time>,
    min: Option<Time>,
    max: Option<Time>,
    mean: Option<Time>,
    std_dev: Option<Time>,
    median: Option<Time>,
    sigma: Option<f64>,
}

/// A distribution's kind and parameters, as written.
struct RawDist {
    distribution: DistKind,
    value: Option<Time>,
    min: Option<Time>,
    max: Option<Time>,
    mean: Option<Time>,
    std_dev: Option<Time>,
    median: Option<Time>,
    sigma: Option<f64>,
}

impl From<RawLeg> for RawDist {
    fn from(l: RawLeg) -> RawDist {
        RawDist {
            distribution: l.distribution,
            value: l.value,
            min: l.min,
            max: l.max,
            mean: l.mean,
            std_dev: l.std_dev,
            median: l.median,
            sigma: l.sigma,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ModelName {
    Random,
    Outage,
    RateLimit,
    Contention,
    Overload,
    Scripted,
    Trace,
}

impl ModelName {
    fn name(self) -> &'static str {
        match self {
            ModelName::Random => "random",
            ModelName::Outage => "outage",
            ModelName::RateLimit => "rate_limit",
            ModelName::Contention => "contention",
            ModelName::Overload => "overload",
            ModelName::Scripted => "scripted",
            ModelName::Trace => "trace",
        }
    }

    /// The fields this model reads (besides `model`).
    fn fields(self) -> &'static [&'static str] {
        match self {
            ModelName::Random => &["probability", "classes", "retry_after", "from", "until"],
            ModelName::Outage => &["start", "end", "class", "retry_after"],
            ModelName::RateLimit => &["rate", "burst", "hint", "from", "until"],
            ModelName::Contention => &["rows", "from", "until"],
            ModelName::Overload => &[
                "capacity",
                "latency_growth",
                "error_rate",
                "error_growth",
                "timeout",
                "class",
                "from",
                "until",
            ],
            ModelName::Scripted => &["outcomes", "then", "from", "until"],
            ModelName::Trace => &["file", "data"],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFailure {
    model: ModelName,
    from: Option<Time>,
    until: Option<Time>,
    probability: Option<f64>,
    classes: Option<BTreeMap<String, f64>>,
    retry_after: Option<Time>,
    start: Option<Time>,
    end: Option<Time>,
    class: Option<String>,
    rate: Option<f64>,
    #[serde(default, deserialize_with = "de_at_least_one")]
    burst: Option<u32>,
    hint: Option<bool>,
    #[serde(default, deserialize_with = "de_rows")]
    rows: Option<u32>,
    #[serde(default, deserialize_with = "de_at_least_one")]
    capacity: Option<u32>,
    latency_growth: Option<f64>,
    error_rate: Option<f64>,
    error_growth: Option<f64>,
    timeout: Option<Time>,
    outcomes: Option<Vec<String>>,
    then: Option<String>,
    file: Option<String>,
    data: Option<String>,
}

impl RawFailure {
    fn set_fields(&self) -> Vec<&'static str> {
        let all: [(&'static str, bool); 21] = [
            ("from", self.from.is_some()),
            ("until", self.until.is_some()),
            ("probability", self.probability.is_some()),
            ("classes", self.classes.is_some()),
            ("retry_after", self.retry_after.is_some()),
            ("start", self.start.is_some()),
            ("end", self.end.is_some()),
            ("class", self.class.is_some()),
            ("rate", self.rate.is_some()),
            ("burst", self.burst.is_some()),
            ("hint", self.hint.is_some()),
            ("rows", self.rows.is_some()),
            ("capacity", self.capacity.is_some()),
            ("latency_growth", self.latency_growth.is_some()),
            ("error_rate", self.error_rate.is_some()),
            ("error_growth", self.error_growth.is_some()),
            ("timeout", self.timeout.is_some()),
            ("outcomes", self.outcomes.is_some()),
            ("then", self.then.is_some()),
            ("file", self.file.is_some()),
            ("data", self.data.is_some()),
        ];
        all.into_iter()
            .filter(|(_, set)| *set)
            .map(|(n, _)| n)
            .collect()
    }
}

/// Why a scenario comparing `count` policies, more than
/// [`limits::MAX_POLICIES`], is refused (at the `policies` table).
pub(crate) fn too_many_policies(count: usize) -> String {
    format!(
        "{count} policies; at most {} may be compared in one scenario",
        limits::MAX_POLICIES
    )
}

/// The fields the failure model named `name` takes besides `model`, or
/// `None` for an unknown model.
pub(crate) fn model_fields(name: &str) -> Option<&'static [&'static str]> {
    ModelName::deserialize(de::value::StrDeserializer::<de::value::Error>::new(name))
        .ok()
        .map(ModelName::fields)
}

// ---------------------------------------------------------------------------
// Loading

impl Scenario {
    /// Reads and validates the scenario file at `path`. Trace files named
    /// in it are read relative to its folder.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::from_file_with_source(path).map(|(scenario, _)| scenario)
    }

    /// [`from_file`](Self::from_file), also handing back the text it read,
    /// for a caller that needs the text too: the file is read once, with
    /// the checks of [`from_file`](Self::from_file) (a regular file, not
    /// too large), and not again later, when it may have changed.
    pub fn from_file_with_source(path: &Path) -> Result<(Scenario, String), ScenarioError> {
        let file = path.display().to_string();
        let bytes =
            limits::read_bytes(path, limits::MAX_SCENARIO_BYTES).map_err(|e| ScenarioError {
                file: file.clone(),
                position: None,
                path: String::new(),
                message: format!("cannot read the scenario: {e}"),
            })?;
        reflexio::config::decode_utf8(&bytes).map_err(|e| ScenarioError {
            file: file.clone(),
            position: e.position,
            path: display_path(&e.path),
            message: e.message,
        })?;
        // UTF-8, as just checked: kept without a copy.
        let source = String::from_utf8(bytes).map_err(|e| ScenarioError {
            file: file.clone(),
            position: None,
            path: String::new(),
            message: format!(
                "not valid UTF-8 at byte {}: TOML documents are UTF-8 text",
                e.utf8_error().valid_up_to()
            ),
        })?;
        let scenario = Scenario::from_source(path, &source)?;
        Ok((scenario, source))
    }

    /// Parses and validates `source`, the text of the scenario file at
    /// `path` (as read by the caller): `path` names it in messages, its
    /// stem is the default scenario name, and trace files named in it are
    /// read relative to its folder.
    pub fn from_source(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".to_owned());
        let dir = path.parent().unwrap_or(Path::new("."));
        Scenario::parse(source, &path.display().to_string(), &stem, Some(dir))
    }

    /// Parses and validates a scenario from TOML text; `file` names it in
    /// error messages and its stem is the default scenario name. Trace
    /// models must use inline `data` (no folder to read files from).
    pub fn from_toml_str(source: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let stem = Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".to_owned());
        Scenario::parse(source, file, &stem, None)
    }

    fn parse(
        source: &str,
        file: &str,
        stem: &str,
        dir: Option<&Path>,
    ) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(source).map_err(|e| {
            if let Some((key, hint)) = crate::suggest::policy_file_hint(source, file) {
                return ScenarioError {
                    file: file.to_owned(),
                    position: locate(source, key).map(|s| line_col(source, s.start)),
                    path: key.to_owned(),
                    message: hint,
                };
            }
            // The library's locator names duplicate keys and positions the
            // parser's span-less errors (its recursion limit).
            let e = ConfigError::from_parser(source, e.message(), e.span());
            ScenarioError {
                file: file.to_owned(),
                position: e.position,
                path: display_path(&e.path),
                message: crate::suggest::improve(&friendly(e.message.trim()), &e.path, source),
            }
        })?;
        build(raw, source, stem, dir).map_err(|e| {
            let position = locate(source, &e.path).map(|s| line_col(source, s.start));
            ScenarioError {
                file: file.to_owned(),
                position,
                path: limits::escape_control(&display_path(&e.path)),
                message: crate::suggest::improve(&e.message, &e.path, source),
            }
        })
    }
}

/// Serde's type names, in words.
fn friendly(message: &str) -> String {
    message
        .replace("expected u64", "expected a whole number (0 or more)")
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected f64", "expected a number")
        .replace("expected a boolean", "expected true or false")
}

fn class_by_name(path: &str, name: &str) -> Result<ErrorClass, Err0> {
    name.parse::<ErrorClass>()
        .map_err(|e| err(path, e.to_string()))
}

fn positive_finite(path: &str, value: f64, what: &str) -> Result<f64, Err0> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(err(
            path,
            format!("{what} must be a finite number greater than 0, not {value}"),
        ))
    }
}

fn non_negative(path: &str, value: f64, what: &str) -> Result<f64, Err0> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(err(
            path,
            format!("{what} must be a finite number of at least 0, not {value}"),
        ))
    }
}

fn probability(path: &str, value: f64) -> Result<f64, Err0> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(err(
            path,
            format!("a probability must lie in [0, 1], not {value}"),
        ))
    }
}

fn build(raw: RawScenario, source: &str, stem: &str, dir: Option<&Path>) -> Result<Scenario, Err0> {
    let name = raw.name.unwrap_or_else(|| stem.to_owned());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        || name.starts_with('.')
    {
        return Err(err(
            "name",
            format!("`{name}` names the report folder: use letters, digits, `-`, `_` and `.` only, not starting with `.`"),
        ));
    }
    if let Some(d) = &raw.description {
        if d.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(err(
                "description",
                "holds a control character other than a line break or a tab",
            ));
        }
        // Embeddings, overrides and isolates reorder whatever is printed
        // after them in every report; the implicit marks (U+200E, U+200F,
        // U+061C) that prose in several scripts needs do not.
        if let Some(c) = d
            .chars()
            .find(|c| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        {
            return Err(err(
                "description",
                format!(
                    "holds the bidirectional formatting character U+{:04X}, which reorders the text after it in every report; the marks U+200E, U+200F and U+061C are allowed",
                    c as u32
                ),
            ));
        }
    }
    let runs = raw.runs.unwrap_or(1);
    if !RUNS.contains(&runs) {
        return Err(err(
            "runs",
            format!("must be between {} and {}", RUNS.start(), RUNS.end()),
        ));
    }
    let bucket = raw.bucket.map_or(Duration::from_secs(1), |t| t.0);
    if bucket.is_zero() {
        return Err(err("bucket", "must be greater than zero, such as \"1s\""));
    }
    let workload = build_workload(raw.workload)?;
    limits::check_timeline(&workload, bucket, raw.bucket.is_some()).map_err(|(p, m)| err(p, m))?;
    let max_simulated_attempts = raw
        .max_simulated_attempts
        .unwrap_or(limits::DEFAULT_MAX_SIMULATED_ATTEMPTS);
    if !SIMULATED_ATTEMPTS.contains(&max_simulated_attempts) {
        return Err(err(
            "max_simulated_attempts",
            format!("must be at least {}", SIMULATED_ATTEMPTS.start()),
        ));
    }
    let latency = match raw.latency {
        Some(l) => build_anatomy(l)?,
        None => Anatomy::plain(Latency::Constant(Duration::from_millis(10))),
    };
    let client = Client {
        oversleep: raw
            .client
            .and_then(|c| c.oversleep)
            .map(|l| build_dist("client.oversleep", l.into()))
            .transpose()?,
    };
    if raw.failures.len() > MAX_MODELS {
        return Err(err(
            format!("failures.{MAX_MODELS}"),
            format!("at most {MAX_MODELS} failure models may be chained"),
        ));
    }
    let mut failures = Vec::new();
    for (i, f) in raw.failures.into_iter().enumerate() {
        failures.push(build_model(i, f, dir)?);
    }
    if latency.round_trips > 1 {
        // A transaction sends one request per round trip; the rate limiter
        // counts requests, and would see only the first. (Overload counts
        // transactions in flight, from the first request's arrival to the
        // end of the last work.)
        if let Some(i) = failures
            .iter()
            .position(|m| matches!(m.kind, ModelKind::RateLimit { .. }))
        {
            return Err(err(
                format!("failures.{i}.model"),
                format!(
                    "the `rate_limit` model counts one request per attempt, but `latency.round_trips = {}` sends {} per attempt; a transaction of several round trips can meet only `contention`, `overload`, `random`, `outage`, `scripted` and `trace`",
                    latency.round_trips, latency.round_trips
                ),
            ));
        }
    }
    if raw.policies.is_empty() {
        return Err(err(
            "policies",
            "the scenario compares no policy: add at least one `[policies.<name>]` table (in the RetryConfig schema; an empty table is the default policy)",
        ));
    }
    if raw.policies.len() > limits::MAX_POLICIES {
        return Err(err("policies", too_many_policies(raw.policies.len())));
    }
    limits::check_work(
        workload.calls,
        0,
        runs,
        raw.policies.len(),
        max_simulated_attempts,
    )
    .map_err(|(p, m)| err(p, m))?;
    let mut ordered: Vec<(String, toml::Spanned<RetryConfig>)> = raw.policies.into_iter().collect();
    ordered.sort_by_key(|(_, c)| c.span().start);
    let mut policies = Vec::new();
    let mut warnings = Vec::new();
    for (pname, spanned) in ordered {
        let prefix = join_key("policies", &pname);
        policies.push(build_policy(
            &prefix,
            pname,
            spanned.into_inner(),
            &mut warnings,
        )?);
    }
    let background = build_background(raw.background, bucket, raw.bucket.is_some(), &mut warnings)?;
    let all_calls = background
        .iter()
        .fold(workload.calls, |n, b| n.saturating_add(b.workload.calls));
    if !background.is_empty() {
        if all_calls > MAX_CALLS {
            return Err(err(
                format!("background.{}.calls", background.len() - 1),
                format!(
                    "the workload and its background make {all_calls} calls; the limit is {MAX_CALLS} calls in all"
                ),
            ));
        }
        let bytes = std::iter::once(&workload)
            .chain(background.iter().map(|b| &b.workload))
            .fold(0u64, |n, w| n.saturating_add(workload_bytes(w)));
        if bytes > MAX_MEMORY {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            return Err(err(
                format!("background.{}.calls", background.len() - 1),
                format!(
                    "too large a workload: with its background it would take about {:.1} GiB of memory; the limit is {:.1} GiB. Use fewer calls, another arrival process, or `--runs` to repeat a smaller workload",
                    gib(bytes),
                    gib(MAX_MEMORY),
                ),
            ));
        }
        limits::check_work(
            workload.calls,
            all_calls - workload.calls,
            runs,
            policies.len(),
            max_simulated_attempts,
        )
        .map_err(|(p, m)| err(p, m))?;
    }
    let _ = source;
    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default().trim().to_owned(),
        seed: raw.seed.unwrap_or(1),
        runs,
        bucket,
        workload,
        background,
        latency,
        client,
        failures,
        policies,
        warnings,
        max_simulated_attempts,
    })
}

/// A policy from its configuration, at table `prefix` (for error paths).
fn build_policy(
    prefix: &str,
    name: String,
    config: RetryConfig,
    warnings: &mut Vec<String>,
) -> Result<Policy, Err0> {
    if name.trim().is_empty() || limits::has_control(&name) {
        return Err(err(
            prefix,
            format!(
                "the policy name `{}` is blank or holds a control character or a bidirectional formatting character; names are printed in tables, plots and terminals",
                limits::escape_control(&name)
            ),
        ));
    }
    let found: Vec<ConfigWarning> = config
        .validate()
        .map_err(|e| err(join(prefix, &e.path), e.message))?;
    for w in found {
        warnings.push(format!("`{}`: {}", join(prefix, &w.path), w.message));
    }
    let engine = config
        .engine()
        .map_err(|e| err(join(prefix, &e.path), e.message))?;
    let worst = engine.worst_case();
    limits::check_attempts_per_call(worst.max_attempts, worst.max_attempts_before_deadline)
        .map_err(|m| {
            let field = if config.max_attempts.is_some() {
                "max_attempts"
            } else {
                ""
            };
            err(join(prefix, field), m)
        })?;
    // Checked by `validate` above; each (policy, run) builds its own
    // fresh budget from it (see `crate::budget`).
    let budget = config
        .budget_spec()
        .map_err(|e| err(join(prefix, &e.path), e.message))?;
    let backoffs = ErrorClass::ALL.map(|c| {
        config
            .backoff(c)
            .unwrap_or_else(reflexio::strategy::default_backoff)
    });
    Ok(Policy {
        name,
        envelope: *engine.envelope(),
        engine,
        budget,
        config,
        backoffs,
    })
}

fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{path}")
    }
}

/// Memory a workload's calls take while one policy runs: their results,
/// and the calls known to be in flight together (all of them when they
/// arrive at once, one per client in a closed loop).
fn workload_bytes(w: &Workload) -> u64 {
    let in_flight = match &w.arrival {
        Arrival::AllAtOnce => w.calls,
        Arrival::ClosedLoop { clients, .. } => u64::from(*clients),
        _ => 0,
    };
    w.calls
        .saturating_mul(BYTES_PER_CALL)
        .saturating_add(in_flight.saturating_mul(BYTES_IN_FLIGHT))
}

/// The `[[background]]` workloads: each a workload table (no closed
/// loop) with a unique `name` and an optional `policy` (no retry budget).
fn build_background(
    list: Vec<RawBackground>,
    bucket: Duration,
    bucket_set: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Background>, Err0> {
    if list.len() > MAX_BACKGROUND {
        return Err(err(
            format!("background.{MAX_BACKGROUND}"),
            format!("at most {MAX_BACKGROUND} background workloads"),
        ));
    }
    let mut out: Vec<Background> = Vec::with_capacity(list.len());
    for (i, raw) in list.into_iter().enumerate() {
        let prefix = format!("background.{i}");
        let name = raw.name.ok_or_else(|| {
            err(
                prefix.as_str(),
                "each background workload needs a `name`, unique among them, such as \"batch\"",
            )
        })?;
        if name.trim().is_empty() || limits::has_control(&name) {
            return Err(err(
                format!("{prefix}.name"),
                format!(
                    "`{}`: a name must not be blank, nor hold a control character or a bidirectional formatting character; it is printed in tables and terminals",
                    limits::escape_control(&name)
                ),
            ));
        }
        if out.iter().any(|b| b.name == name) {
            return Err(err(
                format!("{prefix}.name"),
                format!("`{name}` names another background workload already; names must be unique"),
            ));
        }
        if raw.calls.is_none() {
            return Err(err(
                prefix.as_str(),
                "missing `calls`, the number of background calls to simulate",
            ));
        }
        if raw.arrival == Some(ArrivalKind::ClosedLoop) {
            return Err(err(
                format!("{prefix}.arrival"),
                "background traffic arrives on its own schedule: use `all_at_once`, `fixed_rate` or `poisson` (a closed loop is for the workload under test)",
            ));
        }
        let workload = build_workload_at(
            &prefix,
            Some(RawWorkload {
                calls: raw.calls,
                arrival: raw.arrival,
                rate: raw.rate,
                clients: None,
                think_time: None,
                phases: raw.phases,
                operation: Some(name.clone()),
            }),
        )?;
        limits::check_timeline(&workload, bucket, bucket_set)
            .map_err(|(p, m)| err(p.replacen("workload", &prefix, 1), m))?;
        let policy = match raw.policy {
            None => None,
            Some(config) => {
                let at = format!("{prefix}.policy");
                let policy = build_policy(&at, name.clone(), config, warnings)?;
                if policy.budget.is_some() {
                    return Err(err(format!("{at}.budget"), BACKGROUND_BUDGET));
                }
                Some(policy)
            }
        };
        let engine = match &policy {
            Some(p) => p.engine.clone(),
            None => RetryConfig {
                max_attempts: Some(1),
                ..RetryConfig::default()
            }
            .engine()
            .map_err(|e| err(prefix.as_str(), e.message))?,
        };
        out.push(Background {
            name,
            workload,
            policy,
            engine,
        });
    }
    Ok(out)
}

fn build_workload(raw: Option<RawWorkload>) -> Result<Workload, Err0> {
    build_workload_at("workload", raw)
}

/// [`build_workload`] for the table at `prefix` (`workload` or
/// `background.<i>`), whose fields' paths start with it.
fn build_workload_at(prefix: &str, raw: Option<RawWorkload>) -> Result<Workload, Err0> {
    let Some(raw) = raw else {
        return Err(err(
            "workload",
            "missing `[workload]` table; it needs at least `calls`",
        ));
    };
    let calls = raw.calls.ok_or_else(|| {
        err(
            "workload",
            "missing `calls`, the number of calls to simulate",
        )
    })?;
    if calls < *CALLS.start() {
        return Err(err(
            format!("{prefix}.calls"),
            format!("must be at least {}", CALLS.start()),
        ));
    }
    if calls > *CALLS.end() {
        return Err(err(
            format!("{prefix}.calls"),
            format!(
                "{calls} calls is too large a workload; the limit is {MAX_CALLS} calls. Use fewer calls, or `--runs` to repeat a smaller workload"
            ),
        ));
    }
    let kind = raw.arrival.unwrap_or(ArrivalKind::AllAtOnce);
    let needs_rate = matches!(kind, ArrivalKind::FixedRate | ArrivalKind::Poisson);
    let phases = match raw.phases {
        None => Vec::new(),
        Some(_) if !needs_rate => {
            return Err(err(
                format!("{prefix}.phases"),
                "`phases` applies only to `arrival = \"fixed_rate\"` or `\"poisson\"`",
            ))
        }
        Some(_) if raw.rate.is_some() => {
            return Err(err(
                format!("{prefix}.rate"),
                "give either one `rate` or `phases`, not both",
            ))
        }
        Some(list) => build_phases(prefix, list)?,
    };
    if !needs_rate && raw.rate.is_some() {
        return Err(err(
            format!("{prefix}.rate"),
            "`rate` applies only to `arrival = \"fixed_rate\"` or `\"poisson\"`",
        ));
    }
    let closed = kind == ArrivalKind::ClosedLoop;
    if !closed && raw.clients.is_some() {
        return Err(err(
            format!("{prefix}.clients"),
            "`clients` applies only to `arrival = \"closed_loop\"`",
        ));
    }
    if !closed && raw.think_time.is_some() {
        return Err(err(
            format!("{prefix}.think_time"),
            "`think_time` applies only to `arrival = \"closed_loop\"`",
        ));
    }
    let rate = || -> Result<f64, Err0> {
        if let Some(first) = phases.first() {
            return Ok(first.rate);
        }
        let rate = raw.rate.ok_or_else(|| {
            err(
                format!("{prefix}.arrival"),
                "this arrival process needs `rate`, in calls per second, or `phases`",
            )
        })?;
        positive_finite(
            &format!("{prefix}.rate"),
            rate,
            "the rate (calls per second)",
        )
    };
    let arrival = match kind {
        ArrivalKind::AllAtOnce => Arrival::AllAtOnce,
        ArrivalKind::FixedRate => Arrival::FixedRate { rate: rate()? },
        ArrivalKind::Poisson => Arrival::Poisson { rate: rate()? },
        ArrivalKind::ClosedLoop => {
            let clients = raw.clients.ok_or_else(|| {
                err(
                    format!("{prefix}.arrival"),
                    "`closed_loop` needs `clients`, the number of concurrent clients",
                )
            })?;
            if !AT_LEAST_ONE.contains(&clients) {
                return Err(err(
                    format!("{prefix}.clients"),
                    format!("must be at least {}", AT_LEAST_ONE.start()),
                ));
            }
            if u64::from(clients) > calls {
                return Err(err(
                    format!("{prefix}.clients"),
                    format!("{clients} clients for {calls} calls: there must be no more clients than calls"),
                ));
            }
            Arrival::ClosedLoop {
                clients,
                think_time: raw.think_time.map_or(Duration::ZERO, |t| t.0),
            }
        }
    };
    // Calls known to be in flight together: all of them when they arrive
    // at once, one per client in a closed loop. Open-loop arrivals depend
    // on the policies; the run itself guards against those.
    let in_flight = match &arrival {
        Arrival::AllAtOnce => calls,
        Arrival::ClosedLoop { clients, .. } => u64::from(*clients),
        _ => 0,
    };
    let bytes = calls
        .saturating_mul(BYTES_PER_CALL)
        .saturating_add(in_flight.saturating_mul(BYTES_IN_FLIGHT));
    if bytes > MAX_MEMORY {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let (path, cause) = match &arrival {
            Arrival::AllAtOnce => (
                format!("{prefix}.calls"),
                format!("{calls} calls arriving all at once are all in flight together"),
            ),
            _ => (
                format!("{prefix}.clients"),
                format!("{in_flight} clients keep as many calls in flight"),
            ),
        };
        return Err(err(
            path,
            format!(
                "too large a workload: {cause}, which would take about {:.1} GiB of memory; the limit is {:.1} GiB. Use fewer calls or clients, another arrival process, or `--runs` to repeat a smaller workload",
                gib(bytes),
                gib(MAX_MEMORY),
            ),
        ));
    }
    let operation = raw.operation.unwrap_or_else(|| "call".to_owned());
    if limits::has_control(&operation) {
        return Err(err(
            format!("{prefix}.operation"),
            format!(
                "`{}` holds a control character or a bidirectional formatting character; the operation name goes into every event",
                limits::escape_control(&operation)
            ),
        ));
    }
    Ok(Workload {
        calls,
        arrival,
        phases,
        operation,
    })
}

/// Piecewise rates: every phase but the last lasts `for`; the last lasts
/// until every call has arrived.
fn build_phases(prefix: &str, list: Vec<RawPhase>) -> Result<Vec<Phase>, Err0> {
    if list.is_empty() {
        return Err(err(
            format!("{prefix}.phases"),
            "list at least one phase, such as [{ rate = 40.0, for = \"10s\" }, { rate = 80.0 }]",
        ));
    }
    if list.len() > MAX_PHASES {
        return Err(err(
            format!("{prefix}.phases.{MAX_PHASES}"),
            format!("at most {MAX_PHASES} phases"),
        ));
    }
    let last = list.len() - 1;
    let mut end = 0u64;
    let mut phases = Vec::with_capacity(list.len());
    for (i, p) in list.into_iter().enumerate() {
        let at = |field: &str| format!("{prefix}.phases.{i}.{field}");
        let rate = p.rate.ok_or_else(|| {
            err(
                format!("{prefix}.phases.{i}"),
                "each phase needs `rate`, in calls per second",
            )
        })?;
        let rate = positive_finite(&at("rate"), rate, "the rate (calls per second)")?;
        let length = match (p.length, i == last) {
            (Some(_), true) => {
                return Err(err(
                    at("for"),
                    "the last phase lasts until every call has arrived: drop its `for`",
                ))
            }
            (None, false) => {
                return Err(err(
                    format!("{prefix}.phases.{i}"),
                    "every phase but the last needs `for`, how long it lasts, such as \"5s\"",
                ))
            }
            (Some(t), false) if t.0.is_zero() => {
                return Err(err(at("for"), "a phase must last longer than zero"))
            }
            (length, _) => length.map(|t| t.0),
        };
        let phase_end = match length {
            Some(l) => {
                end = end.saturating_add(nanos(l));
                Some(end)
            }
            None => None,
        };
        phases.push(Phase {
            rate,
            length,
            end: phase_end,
        });
    }
    Ok(phases)
}

/// The legs of an attempt: one `distribution` for the whole attempt (the
/// service's work, with instant network legs), or `request`, `service`
/// and `response` legs (missing ones instant), over `round_trips`.
fn build_anatomy(mut raw: RawLatency) -> Result<Anatomy, Err0> {
    let retry = raw.retry.take();
    let anatomy = build_legs("latency", raw)?;
    let Some(r) = retry else {
        return Ok(anatomy);
    };
    if r.round_trips.is_some() {
        return Err(err(
            "latency.retry.round_trips",
            "the round trips are the attempt's, set in `[latency]`: a retry makes as many as the first attempt; `[latency.retry]` takes one `distribution` with its parameters, or legs: `request`, `service`, `response`",
        ));
    }
    let legs = build_legs(
        "latency.retry",
        RawLatency {
            distribution: r.distribution,
            value: r.value,
            min: r.min,
            max: r.max,
            mean: r.mean,
            std_dev: r.std_dev,
            median: r.median,
            sigma: r.sigma,
            request: r.request,
            service: r.service,
            response: r.response,
            round_trips: None,
            retry: None,
        },
    )?;
    Ok(anatomy.with_retry(RetryLegs::of(&legs)))
}

/// The legs of `[latency]` or, at `at` = `latency.retry`, of a retry
/// (whose `round_trips` the caller has refused).
fn build_legs(at: &str, raw: RawLatency) -> Result<Anatomy, Err0> {
    let legs = [
        ("request", raw.request.is_some()),
        ("service", raw.service.is_some()),
        ("response", raw.response.is_some()),
    ];
    let first_leg = legs.iter().find(|(_, set)| *set).map(|(n, _)| *n);
    let Some(distribution) = raw.distribution else {
        let Some(_) = first_leg else {
            let stray = [
                ("value", raw.value.is_some()),
                ("min", raw.min.is_some()),
                ("max", raw.max.is_some()),
                ("mean", raw.mean.is_some()),
                ("std_dev", raw.std_dev.is_some()),
                ("median", raw.median.is_some()),
                ("sigma", raw.sigma.is_some()),
                ("round_trips", raw.round_trips.is_some()),
            ]
            .into_iter()
            .find(|(_, set)| *set)
            .map_or(at.to_owned(), |(n, _)| format!("{at}.{n}"));
            return Err(err(
                stray,
                format!("`[{at}]` needs either `distribution` (one latency for the whole attempt) or legs: `request`, `service`, `response`, each a table such as {{ distribution = \"constant\", value = \"10ms\" }}"),
            ));
        };
        for (field, set) in [
            ("value", raw.value.is_some()),
            ("min", raw.min.is_some()),
            ("max", raw.max.is_some()),
            ("mean", raw.mean.is_some()),
            ("std_dev", raw.std_dev.is_some()),
            ("median", raw.median.is_some()),
            ("sigma", raw.sigma.is_some()),
        ] {
            if set {
                return Err(err(
                    format!("{at}.{field}"),
                    format!("with legs, `{field}` belongs inside a leg's table, such as `service = {{ distribution = \"...\", {field} = ... }}`"),
                ));
            }
        }
        let round_trips = raw.round_trips.unwrap_or(1);
        if !ROUND_TRIPS.contains(&round_trips) {
            return Err(err(
                "latency.round_trips",
                format!(
                    "must be from {} to {} (2 for a read-then-write transaction)",
                    ROUND_TRIPS.start(),
                    ROUND_TRIPS.end()
                ),
            ));
        }
        let leg = |name: &str, l: Option<RawLeg>| -> Result<Option<Latency>, Err0> {
            l.map(|l| build_dist(&format!("{at}.{name}"), l.into()))
                .transpose()
        };
        return Ok(Anatomy::legs(
            leg("request", raw.request)?,
            leg("service", raw.service)?,
            leg("response", raw.response)?,
            round_trips,
        ));
    };
    if let Some(leg) = first_leg {
        return Err(err(
            format!("{at}.{leg}"),
            "give either one `distribution` for the whole attempt or legs (`request`, `service`, `response`), not both",
        ));
    }
    if raw.round_trips.is_some() {
        return Err(err(
            "latency.round_trips",
            "round trips cross the network: describe them with legs (`request`, `service`, `response`) instead of one `distribution`",
        ));
    }
    let dist = build_dist(
        at,
        RawDist {
            distribution,
            value: raw.value,
            min: raw.min,
            max: raw.max,
            mean: raw.mean,
            std_dev: raw.std_dev,
            median: raw.median,
            sigma: raw.sigma,
        },
    )?;
    Ok(Anatomy::plain(dist))
}

/// One distribution at dotted `at` (`latency` or `latency.request`).
fn build_dist(at: &str, raw: RawDist) -> Result<Latency, Err0> {
    let fields = [
        ("value", raw.value.is_some()),
        ("min", raw.min.is_some()),
        ("max", raw.max.is_some()),
        ("mean", raw.mean.is_some()),
        ("std_dev", raw.std_dev.is_some()),
        ("median", raw.median.is_some()),
        ("sigma", raw.sigma.is_some()),
    ];
    let dist = DISTRIBUTIONS[raw.distribution as usize];
    let allowed = raw.distribution.params();
    for (field, set) in fields {
        if set && !allowed.contains(&field) {
            return Err(err(
                format!("{at}.{field}"),
                format!(
                    "`{field}` is not a parameter of the `{dist}` distribution; it takes: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let need = |v: Option<Time>, field: &str| -> Result<Duration, Err0> {
        v.map(|t| t.0).ok_or_else(|| {
            err(
                format!("{at}.distribution"),
                format!(
                    "the `{dist}` distribution needs `{field}`; it takes: {}",
                    allowed.join(", ")
                ),
            )
        })
    };
    Ok(match raw.distribution {
        DistKind::Constant => Latency::Constant(need(raw.value, "value")?),
        DistKind::Uniform => {
            let (min, max) = (need(raw.min, "min")?, need(raw.max, "max")?);
            if min > max {
                return Err(err(format!("{at}.min"), "`min` must not be above `max`"));
            }
            Latency::Uniform { min, max }
        }
        DistKind::Normal => Latency::Normal {
            mean: need(raw.mean, "mean")?,
            std_dev: need(raw.std_dev, "std_dev")?,
        },
        DistKind::Exponential => {
            let mean = need(raw.mean, "mean")?;
            if mean.is_zero() {
                return Err(err(format!("{at}.mean"), "must be greater than zero"));
            }
            Latency::Exponential { mean }
        }
        DistKind::Lognormal => {
            let median = need(raw.median, "median")?;
            if median.is_zero() {
                return Err(err(format!("{at}.median"), "must be greater than zero"));
            }
            let sigma = raw.sigma.ok_or_else(|| {
                err(
                    format!("{at}.distribution"),
                    "the `lognormal` distribution needs `sigma`, the shape (standard deviation of the log), such as 0.5",
                )
            })?;
            let sigma = non_negative(&format!("{at}.sigma"), sigma, "sigma")?;
            if sigma > 10.0 {
                return Err(err(
                    format!("{at}.sigma"),
                    format!("{sigma} is too wide a shape; allowed: 0 to 10"),
                ));
            }
            Latency::Lognormal { median, sigma }
        }
    })
}

fn build_model(i: usize, raw: RawFailure, dir: Option<&Path>) -> Result<Model, Err0> {
    let at = |field: &str| format!("failures.{i}.{field}");
    let name = raw.model.name();
    let allowed = raw.model.fields();
    for field in raw.set_fields() {
        if !allowed.contains(&field) {
            return Err(err(
                at(field),
                format!(
                    "`{field}` is not a field of the `{name}` model; it takes: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let missing = |field: &str, what: &str| {
        err(
            format!("failures.{i}.model"),
            format!("the `{name}` model needs `{field}` ({what})"),
        )
    };
    let mut window = Window::ALWAYS;
    if let Some(from) = raw.from {
        window.from = nanos(from.0);
    }
    if let Some(until) = raw.until {
        if until.0.is_zero() {
            return Err(err(at("until"), "must be greater than zero"));
        }
        window.until = nanos(until.0);
    }
    if window.from >= window.until {
        return Err(err(at("until"), "`until` must be after `from`"));
    }
    let hint = match raw.retry_after {
        Some(t) if t.0.is_zero() => {
            return Err(err(
                at("retry_after"),
                "a retry-after hint must be greater than zero",
            ))
        }
        Some(t) => Some(t.0),
        None => None,
    };
    let kind = match raw.model {
        ModelName::Random => {
            let p = raw
                .probability
                .ok_or_else(|| missing("probability", "the chance that an attempt fails"))?;
            let p = probability(&at("probability"), p)?;
            let classes = raw.classes.ok_or_else(|| {
                missing(
                    "classes",
                    "the class mix, such as { server_error = 0.7, transient = 0.3 }",
                )
            })?;
            let mut mix = Vec::new();
            let mut total = 0.0;
            for (cname, weight) in &classes {
                let path = format!("failures.{i}.classes.{cname}");
                let class = class_by_name(&path, cname)?;
                let w = non_negative(&path, *weight, "a class weight")?;
                total += w;
                mix.push((class, w));
            }
            if total <= 0.0 {
                return Err(err(at("classes"), "the class weights must not all be zero"));
            }
            // Cumulative thresholds; the last is exactly 1.
            let mut acc = 0.0;
            let n = mix.len();
            let cumulative = mix
                .into_iter()
                .enumerate()
                .map(|(k, (c, w))| {
                    acc += w / total;
                    (c, if k + 1 == n { 1.0 } else { acc })
                })
                .collect();
            ModelKind::Random {
                probability: p,
                classes: cumulative,
                retry_after: hint,
            }
        }
        ModelName::Outage => {
            let start = raw
                .start
                .ok_or_else(|| missing("start", "when the outage begins"))?;
            let end = raw
                .end
                .ok_or_else(|| missing("end", "when the service is back"))?;
            if end.0 <= start.0 {
                return Err(err(at("end"), "the outage must end after it starts"));
            }
            window = Window {
                from: nanos(start.0),
                until: nanos(end.0),
            };
            let class = match &raw.class {
                Some(c) => class_by_name(&at("class"), c)?,
                None => ErrorClass::ServerError,
            };
            ModelKind::Outage {
                class,
                retry_after: hint,
            }
        }
        ModelName::RateLimit => {
            let rate = raw
                .rate
                .ok_or_else(|| missing("rate", "tokens per second"))?;
            let rate = positive_finite(&at("rate"), rate, "the rate (tokens per second)")?;
            let interval = (1e9 / rate).round();
            if !(1.0..=1e18).contains(&interval) {
                return Err(err(
                    at("rate"),
                    "allowed: from one token every 30 years to one every nanosecond",
                ));
            }
            let burst = raw.burst.unwrap_or(1);
            if !AT_LEAST_ONE.contains(&burst) {
                return Err(err(
                    at("burst"),
                    format!("must be at least {}", AT_LEAST_ONE.start()),
                ));
            }
            ModelKind::RateLimit {
                interval: interval as u64,
                burst,
                hint: raw.hint.unwrap_or(true),
            }
        }
        ModelName::Contention => {
            let rows = raw
                .rows
                .ok_or_else(|| missing("rows", "how many shared rows calls write to"))?;
            if !ROWS.contains(&rows) {
                return Err(err(
                    at("rows"),
                    format!("{rows} rows; allowed: {} to {}", ROWS.start(), ROWS.end()),
                ));
            }
            ModelKind::Contention { rows }
        }
        ModelName::Overload => {
            let capacity = raw.capacity.ok_or_else(|| {
                missing("capacity", "attempts in flight served at nominal latency")
            })?;
            if !AT_LEAST_ONE.contains(&capacity) {
                return Err(err(
                    at("capacity"),
                    format!("must be at least {}", AT_LEAST_ONE.start()),
                ));
            }
            let latency_growth = non_negative(
                &at("latency_growth"),
                raw.latency_growth.unwrap_or(1.0),
                "latency_growth",
            )?;
            let error_rate = probability(&at("error_rate"), raw.error_rate.unwrap_or(0.0))?;
            let error_growth = non_negative(
                &at("error_growth"),
                raw.error_growth.unwrap_or(0.0),
                "error_growth",
            )?;
            let timeout = match raw.timeout {
                Some(t) if t.0.is_zero() => {
                    return Err(err(at("timeout"), "must be greater than zero"))
                }
                Some(t) => Some(nanos(t.0)),
                None => None,
            };
            let class = match &raw.class {
                Some(c) => class_by_name(&at("class"), c)?,
                None => ErrorClass::ServerError,
            };
            ModelKind::Overload {
                capacity,
                latency_growth,
                error_rate,
                error_growth,
                timeout,
                class,
            }
        }
        ModelName::Scripted => {
            let outcomes = raw.outcomes.ok_or_else(|| {
                missing(
                    "outcomes",
                    "each attempt's outcome in order, such as [\"server_error\", \"ok\"]",
                )
            })?;
            if outcomes.is_empty() {
                return Err(err(at("outcomes"), "must list at least one outcome"));
            }
            let parsed = outcomes
                .iter()
                .enumerate()
                .map(|(k, o)| {
                    parse_outcome(o).map_err(|m| err(format!("failures.{i}.outcomes.{k}"), m))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let then = match &raw.then {
                Some(t) => parse_outcome(t).map_err(|m| err(at("then"), m))?,
                None => None,
            };
            ModelKind::Scripted {
                outcomes: parsed,
                then,
            }
        }
        ModelName::Trace => {
            let (text, origin) = match (&raw.file, &raw.data) {
                (Some(_), Some(_)) => {
                    return Err(err(at("data"), "give either `file` or `data`, not both"))
                }
                (None, None) => {
                    return Err(missing(
                        "file",
                        "a CSV file of `time,class` rows; or inline `data`",
                    ))
                }
                (None, Some(data)) => (data.clone(), "inline data".to_owned()),
                (Some(f), None) => {
                    let Some(dir) = dir else {
                        return Err(err(
                            at("file"),
                            "trace files can be read only from a scenario file; use inline `data`",
                        ));
                    };
                    let path = dir.join(f);
                    let text = limits::read_text(&path, limits::MAX_TRACE_BYTES).map_err(|e| {
                        err(at("file"), format!("cannot read `{}`: {e}", path.display()))
                    })?;
                    (text, path.display().to_string())
                }
            };
            let points = parse_trace(&text).map_err(|(line, m)| {
                err(
                    at(if raw.file.is_some() { "file" } else { "data" }),
                    format!("{origin}, line {line}: {m}"),
                )
            })?;
            ModelKind::Trace { points }
        }
    };
    Ok(Model { window, kind })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Parses a scripted or traced outcome: `ok`, a class name, or a class
/// name and a retry-after hint, `rate_limit/2s`.
pub fn parse_outcome(text: &str) -> Result<Outcome, String> {
    let text = text.trim();
    if text == "ok" {
        return Ok(None);
    }
    let (class, hint) = match text.split_once('/') {
        Some((c, h)) => (c.trim(), Some(h.trim())),
        None => (text, None),
    };
    let class: ErrorClass = class
        .parse()
        .map_err(|e: reflexio::class::UnknownClassName| {
            format!("`{text}`: {e}; or `ok`; a hint may follow a class, as in `rate_limit/2s`")
        })?;
    let mut c = reflexio::Classification::new(class);
    if let Some(h) = hint {
        c = c.with_retry_after(parse_duration(h).map_err(|e| format!("hint in `{text}`: {e}"))?);
    }
    Ok(Some(c))
}

/// Parses a trace: CSV rows `time,outcome`, time in seconds (`12.5`) or as a
/// duration (`12.5s`), non-decreasing; an optional header row starting with
/// `time`; `#` comments and blank lines skipped; a leading byte order
/// mark (spreadsheets write one) ignored. Errors carry the line.
pub fn parse_trace(text: &str) -> Result<Vec<(u64, Outcome)>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut points: Vec<(u64, Outcome)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split(',').map(str::trim);
        let (Some(time), Some(outcome)) = (cols.next(), cols.next()) else {
            return Err((line_no, format!("expected `time,class`, found `{line}`")));
        };
        if points.is_empty() && time.eq_ignore_ascii_case("time") {
            continue;
        }
        if let Some(extra) = cols.next() {
            return Err((
                line_no,
                format!("unexpected third column `{extra}`; rows are `time,class` (a hint is written `rate_limit/2s`)"),
            ));
        }
        let t = match time.parse::<f64>() {
            // Below 2^64 ns: `as` would clamp a larger time to the largest.
            Ok(secs) if secs >= 0.0 && (secs * 1e9).round() < u64::MAX as f64 => {
                (secs * 1e9).round() as u64
            }
            Ok(secs) if secs > 0.0 => {
                return Err((
                    line_no,
                    format!("time `{time}` is too large; times go up to 18446744073.709551615 seconds (about 584 years)"),
                ))
            }
            Ok(_) => return Err((line_no, format!("time `{time}` must be 0 or more seconds"))),
            Err(_) => nanos(parse_time(time).map_err(|e| (line_no, format!("time: {e}")))?),
        };
        if points.last().is_some_and(|(prev, _)| *prev > t) {
            return Err((
                line_no,
                format!("time `{time}` goes backwards; rows must be in time order"),
            ));
        }
        let outcome = parse_outcome(outcome).map_err(|e| (line_no, e))?;
        points.push((t, outcome));
    }
    if points.is_empty() {
        return Err((1, "the trace has no rows".to_owned()));
    }
    Ok(points)
}
