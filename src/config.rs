//! Policies loaded from TOML configuration.
//!
//! [`RetryConfig`] is the one configuration schema of reflexio: a service
//! loads it with [`RetryPolicy::from_config`](crate::RetryPolicy::from_config),
//! and the simulator's scenarios embed it unchanged, so a policy blessed in
//! simulation ships byte for byte.
//!
//! ```toml
//! deadline = "30s"             # or "off"; default 60s
//! max_attempts = 6             # attempts per call, counting the first; default 6
//! max_unknown_attempts = 2     # or "off"; default 2
//! max_retry_after = "10s"      # longest server hint honoured; default 60s
//! seed = 42                    # optional: reproducible jitter
//! allow = ["lockstep"]         # optional: warning codes to silence (see crate::lint)
//!
//! [strategy]                   # the default strategy
//! kind = "decorrelated_jitter" # decorrelated_jitter, equal_jitter, token_backoff,
//!                              # full_jitter, exponential, constant
//! base = "250ms"
//! max = "5s"
//!
//! [classes.rate_limit]         # auth, permission, permanent, concurrency,
//! max_attempts = 4             # rate_limit, server_error, transient, unknown
//! strategy = { kind = "token_backoff", base = "500ms", max = "20s" }
//!
//! [budget]                     # optional: a retry budget shared by all calls
//! kind = "ratio"               # ratio or token_bucket
//! window = "10s"               # ratio: sliding window, 1s to 1h; default 10s
//! min_per_sec = 10             # ratio: retries/s allowed whatever the traffic; default 10
//! percent = 20                 # ratio: retries per 100 calls, 0 to 1000; default 20
//! # capacity = 500             # token_bucket: tokens in a full bucket; default 500
//! # retry_cost = 5             # token_bucket: tokens per retry; default 5
//! # timeout_cost = 10          # token_bucket: per retry after a transient failure; default 10
//! # success_refund = 1         # token_bucket: tokens back per first-attempt success; default 1
//! ```
//!
//! A `[budget]` table sets only the fields of its kind; see
//! [`crate::budget`] for what each kind does and the bound it keeps.
//!
//! Durations are a number and a unit (`ns`, `us`, `ms`, `s`, `m`, `h`),
//! possibly fractional (`1.5s`) or compound (`1m30s`), in whole
//! nanoseconds up to `u64::MAX` of them (about 584 years). Validation is strict:
//! unknown fields, zero or negative durations, a base above its max, and
//! unknown class or strategy names are errors that name the field and what
//! is allowed. One zero is allowed because it means something: a
//! `constant` strategy with `base = "0s"` retries immediately.
//!
//! # Errors and paths
//!
//! Every [`ConfigError`] of [`RetryConfig::from_toml_str`] and
//! [`RetryConfig::from_toml_bytes`] carries the byte span of the offending
//! text, its line and column, and the path of the field. This holds for the
//! TOML parser's own errors too: a duplicate key is named, a document nested
//! past the parser's recursion limit points at its deepest key, and invalid
//! UTF-8 gives its byte offset.
//!
//! # Paths
//!
//! A path names a field the way TOML writes a dotted key:
//! `classes.rate_limit.strategy.base`. Keys that are not bare TOML keys are
//! quoted, so a key holding a dot stays one segment (`classes."a.b"`), and
//! array elements are numeric segments (`failures.2.rate`, shown as
//! `failures[2].rate` by [`display_path`]). [`locate`], [`path_at`],
//! [`line_col`], [`path_segment`], [`join_key`] and [`split_path`] are the
//! one TOML locator of the project: the simulator positions the errors of
//! its scenario files with them, and any program that embeds a
//! configuration in a larger TOML document can do the same.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::budget::{format_ppm_percent, percent_ppm, BudgetSpec, TOKEN_COUNTS};
use crate::class::ErrorClass;
use crate::engine::{Engine, Envelope};
use crate::strategy::{default_backoff, Backoff, BackoffKind, ClassStrategy};

/// A retry policy's configuration. See the [module docs](self) for the
/// schema; every field is optional and defaults as documented there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Deadline of the whole call; `Some(None)` is `"off"`. Default 60 s.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_limit_duration",
        serialize_with = "ser_limit_duration"
    )]
    pub deadline: Option<Option<Duration>>,
    /// Attempts per call, counting the first. Default 6.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_attempts"
    )]
    pub max_attempts: Option<u32>,
    /// Cap on attempts ending with an unknown error; `Some(None)` is
    /// `"off"`. Default 2.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_limit_count",
        serialize_with = "ser_limit_count"
    )]
    pub max_unknown_attempts: Option<Option<u32>>,
    /// The longest server delay hint honoured. Default 60 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_after: Option<HumanDuration>,
    /// Seed for reproducible jitter. Default: unseeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Warning codes to silence, e.g. `["lockstep"]`; see [`crate::lint`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// The default strategy. Default: [`default_backoff`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategyConfig>,
    /// Per-class settings, keyed by class name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, ClassConfig>,
    /// A retry budget shared by all the policy's calls. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetConfig>,
}

/// The values a `[budget]` table's `kind` takes.
const BUDGET_KINDS: [&str; 2] = ["token_bucket", "ratio"];

/// A `[budget]` table: `kind` and the settings of that kind (see
/// [`crate::budget`]); unset settings take the kind's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// `"token_bucket"` or `"ratio"`.
    pub kind: String,
    /// token_bucket: tokens in a full bucket. Default 500.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_tokens"
    )]
    pub capacity: Option<u32>,
    /// token_bucket: tokens a retry costs. Default 5.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_tokens"
    )]
    pub retry_cost: Option<u32>,
    /// token_bucket: tokens a retry after a transient failure costs.
    /// Default 10.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_tokens"
    )]
    pub timeout_cost: Option<u32>,
    /// token_bucket: tokens given back per call that succeeds at its first
    /// attempt. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_refund: Option<u32>,
    /// ratio: the sliding window, 1 s to 1 h. Default 10 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// ratio: retries per second allowed whatever the traffic. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_per_sec: Option<u32>,
    /// ratio: retries per hundred calls started, 0 to 1000. Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
}

/// A percentage written as a TOML integer or float (`20`, `12.5`), kept
/// exactly in parts per million of one (`20` is 200_000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Percent(pub u32);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PercentVisitor;
        impl Visitor<'_> for PercentVisitor {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percent from 0 to 1000, such as 20 or 12.5")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
                percent_ppm(v)
                    .map(Percent)
                    .map_err(|e| E::custom(e.message))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                if !(0..=1000).contains(&v) {
                    return Err(E::custom(format!(
                        "must be a number from 0 to 1000, got {v}"
                    )));
                }
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        deserializer.deserialize_any(PercentVisitor)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 10_000 == 0 {
            serializer.serialize_u32(self.0 / 10_000)
        } else {
            // Exact in decimal: at most four fractional digits.
            let text = format_ppm_percent(self.0);
            serializer.serialize_f64(text.parse().unwrap_or_default())
        }
    }
}

impl BudgetConfig {
    /// The budget this table describes, defaults filled in, or an error
    /// naming the field (relative to the table) and what is allowed.
    pub fn spec(&self) -> Result<BudgetSpec, ConfigError> {
        let token_fields = [
            ("capacity", self.capacity.is_some()),
            ("retry_cost", self.retry_cost.is_some()),
            ("timeout_cost", self.timeout_cost.is_some()),
            ("success_refund", self.success_refund.is_some()),
        ];
        let ratio_fields = [
            ("window", self.window.is_some()),
            ("min_per_sec", self.min_per_sec.is_some()),
            ("percent", self.percent.is_some()),
        ];
        let foreign = |fields: &[(&'static str, bool)], kind: &str, own: &str| {
            match fields.iter().find(|(_, set)| *set) {
                Some((field, _)) => Err(ConfigError::at(
                    *field,
                    format!("`{field}` is a setting of kind = \"{other}\", not of kind = \"{kind}\"; {kind} takes {own}",
                        other = if kind == "ratio" { "token_bucket" } else { "ratio" }),
                )),
                None => Ok(()),
            }
        };
        let spec = match self.kind.as_str() {
            "token_bucket" => {
                foreign(
                    &ratio_fields,
                    "token_bucket",
                    "capacity, retry_cost, timeout_cost and success_refund",
                )?;
                BudgetSpec::TokenBucket {
                    capacity: self.capacity.unwrap_or(500),
                    retry_cost: self.retry_cost.unwrap_or(5),
                    timeout_cost: self.timeout_cost.unwrap_or(10),
                    success_refund: self.success_refund.unwrap_or(1),
                }
            }
            "ratio" => {
                foreign(&token_fields, "ratio", "window, min_per_sec and percent")?;
                BudgetSpec::Ratio {
                    window: self.window.map_or(Duration::from_secs(10), |d| d.0),
                    min_per_sec: self.min_per_sec.unwrap_or(10),
                    percent_ppm: self.percent.map_or(200_000, |p| p.0),
                }
            }
            other => {
                return Err(ConfigError::at(
                    "kind",
                    format!(
                        "unknown budget kind `{other}`; allowed: {}",
                        BUDGET_KINDS.join(", ")
                    ),
                ))
            }
        };
        spec.validate()
            .map_err(|e| ConfigError::at(e.field, e.message))?;
        Ok(spec)
    }
}

impl From<BudgetSpec> for BudgetConfig {
    fn from(spec: BudgetSpec) -> Self {
        let mut config = BudgetConfig {
            kind: spec.kind_name().to_owned(),
            capacity: None,
            retry_cost: None,
            timeout_cost: None,
            success_refund: None,
            window: None,
            min_per_sec: None,
            percent: None,
        };
        match spec {
            BudgetSpec::TokenBucket {
                capacity,
                retry_cost,
                timeout_cost,
                success_refund,
            } => {
                config.capacity = Some(capacity);
                config.retry_cost = Some(retry_cost);
                config.timeout_cost = Some(timeout_cost);
                config.success_refund = Some(success_refund);
            }
            BudgetSpec::Ratio {
                window,
                min_per_sec,
                percent_ppm,
            } => {
                config.window = Some(HumanDuration(window));
                config.min_per_sec = Some(min_per_sec);
                config.percent = Some(Percent(percent_ppm));
            }
        }
        config
    }
}

/// A strategy table: `{ kind = "...", base = "...", max = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// The strategy's name, e.g. `"equal_jitter"`.
    pub kind: String,
    /// Base delay (the delay itself for `constant`). Default 250 ms. May
    /// be zero (`"0s"`) for `constant` only: retrying immediately.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_delay"
    )]
    pub base: Option<HumanDuration>,
    /// Largest delay. Default 30 s (20 s for `token_backoff`); not allowed
    /// for `constant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<HumanDuration>,
}

/// A per-class table: `[classes.<name>]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClassConfig {
    /// Cap on attempts ending with this class.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_attempts"
    )]
    pub max_attempts: Option<u32>,
    /// This class's strategy instead of the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategyConfig>,
}

/// A configuration error: where it is and what is allowed.
///
/// `#[non_exhaustive]`: only this module creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// Dotted path of the offending field (`classes.rate_limit.strategy.base`);
    /// empty when the error concerns the document as a whole.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
    /// Byte range of the offending text in the source, when known.
    pub span: Option<Range<usize>>,
    /// The 1-based line and column (in characters) where
    /// [`span`](Self::span) starts, when known.
    pub position: Option<(usize, usize)>,
}

impl ConfigError {
    fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
            span: None,
            position: None,
        }
    }

    /// Positions an error of the TOML parser, given its message and byte
    /// span in `source`: the path of the field at the span; a duplicate key
    /// named, with the path of its table; an error without a span (the
    /// parser's recursion limit) pinned to the deepest key of the document.
    /// [`RetryConfig::from_toml_str`] reports its parse errors through it,
    /// and so does the simulator for its scenario files.
    pub fn from_parser(source: &str, message: &str, span: Option<Range<usize>>) -> ConfigError {
        let message = toml_words(message.trim());
        let message = message.as_str();
        let span = span.map(|s| s.start.min(source.len())..s.end.min(source.len()));
        let (path, span, message) = match span {
            Some(span) if message == "duplicate key" => {
                let (path, key) = duplicate_key_path(source, span.clone());
                let message =
                    format!("duplicate key `{key}`: a key may be set only once in a table");
                (path, Some(span), message)
            }
            // Outside any key or value (a syntax error), the error belongs
            // to the table it is in.
            Some(span) => (
                path_at(source, span.start).unwrap_or_else(|| enclosing_table(source, span.start)),
                Some(span),
                message.to_owned(),
            ),
            None => match deepest_key(source) {
                Some((path, span)) => {
                    let message = if message.contains("recursion") {
                        format!(
                            "{message}: the document nests tables or arrays deeper than the parser allows"
                        )
                    } else {
                        message.to_owned()
                    };
                    (path, Some(span), message)
                }
                None => (String::new(), Some(0..0), message.to_owned()),
            },
        };
        let message = with_kinds(&path, message);
        ConfigError {
            path,
            position: span.as_ref().map(|s| line_col(source, s.start)),
            message,
            span,
        }
    }

    /// The same error with `prefix.` in front of its path, for a
    /// configuration embedded in a larger document. Its span and position
    /// referred to the embedded text: they are cleared, for
    /// [`locate_in`](Self::locate_in) the larger document.
    pub fn nested_in(mut self, prefix: &str) -> Self {
        self.path = join(prefix, &self.path);
        self.span = None;
        self.position = None;
        self
    }

    /// Fills in [`span`](Self::span) by finding [`path`](Self::path) in `source`.
    pub fn locate_in(mut self, source: &str) -> Self {
        if self.span.is_none() {
            self.span = locate(source, &self.path);
        }
        if self.position.is_none() {
            self.position = self.span.as_ref().map(|s| line_col(source, s.start));
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, column)) = self.position {
            write!(f, "line {line}, column {column}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A configuration that is valid but probably not what was meant.
///
/// `#[non_exhaustive]`: only this module creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigWarning {
    /// Dotted path of the field.
    pub path: String,
    /// What looks wrong.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.path, self.message)
    }
}

/// A strategy or budget table without its `kind`: the message lists the
/// kinds there are.
pub(crate) fn with_kinds(path: &str, message: String) -> String {
    if message != "missing field `kind`" {
        return message;
    }
    let last = path.rsplit('.').next().unwrap_or(path);
    let kinds: Vec<&str> = match last {
        "strategy" => BackoffKind::ALL.iter().map(|k| k.name()).collect(),
        "budget" => BUDGET_KINDS.to_vec(),
        _ => return message,
    };
    format!("{message}; allowed: {}", kinds.join(", "))
}

/// Refuses a duration (of a configuration built in code) longer than the
/// longest the schema reads, `u64::MAX` nanoseconds.
fn too_long(path: &str, d: Duration) -> Result<(), ConfigError> {
    if d.as_nanos() > u128::from(u64::MAX) {
        return Err(ConfigError::at(
            path,
            format!(
                "{} is too large; durations go up to {}ns (about 584 years)",
                format_duration(d),
                u64::MAX
            ),
        ));
    }
    Ok(())
}

/// A deserialiser's message in the words of a TOML document: the Rust
/// type behind a field (`struct StrategyConfig`, `u32`) becomes what the
/// document must hold there (a table, a whole number).
pub(crate) fn toml_words(message: &str) -> String {
    // Only after "expected": the message may quote the document's own
    // text, which is left as written.
    const STRUCT: &str = "expected struct ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(STRUCT) {
        out.push_str(&rest[..i]);
        let after = &rest[i + STRUCT.len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 {
            out.push_str(STRUCT);
            rest = after;
            continue;
        }
        out.push_str("expected a table");
        rest = &after[name_len..];
        // `with 12 elements`: the fields a table of that type takes.
        if let Some(tail) = rest.strip_prefix(" with ") {
            let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
            let counted = &tail[digits..];
            if digits > 0 {
                if let Some(r) = counted
                    .strip_prefix(" elements")
                    .or_else(|| counted.strip_prefix(" element"))
                {
                    rest = r;
                }
            }
        }
    }
    out.push_str(rest);
    // The parser refuses an integer past TOML's 64 bits before any field
    // sees it: say what TOML allows.
    if out == "integer number overflowed" {
        out.push_str(&format!(
            ": a TOML integer lies between {} and {}",
            i64::MIN,
            i64::MAX
        ));
    }
    out.replace(" as i128, expected", ", expected")
        .replace("expected u64", "expected a whole number (0 or more)")
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected f64", "expected a number")
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{path}"),
    }
}

impl RetryConfig {
    /// Parses and validates a TOML document. Errors carry the field's path,
    /// its byte span in `source` and its line and column (see the
    /// [module docs](self#errors-and-paths)).
    pub fn from_toml_str(source: &str) -> Result<RetryConfig, ConfigError> {
        let config: RetryConfig = toml::from_str(source)
            .map_err(|e| ConfigError::from_parser(source, e.message(), e.span()))?;
        config.validate().map_err(|e| e.locate_in(source))?;
        Ok(config)
    }

    /// [`from_toml_str`](Self::from_toml_str) on raw bytes, as read from a
    /// file: bytes that are not UTF-8 are an error giving the byte offset
    /// (and line and column) of the first bad byte, and the field it is in.
    pub fn from_toml_bytes(source: &[u8]) -> Result<RetryConfig, ConfigError> {
        RetryConfig::from_toml_str(decode_utf8(source)?)
    }

    /// Checks every field. Returns the warnings of a valid configuration.
    pub fn validate(&self) -> Result<Vec<ConfigWarning>, ConfigError> {
        let mut warnings = Vec::new();
        crate::lint::check_allow(&self.allow).map_err(|m| ConfigError::at("allow", m))?;
        if self.max_attempts.is_some_and(|n| !ATTEMPTS.contains(&n)) {
            return Err(ConfigError::at(
                "max_attempts",
                format!(
                    "must be at least {} (it counts the first attempt)",
                    ATTEMPTS.start()
                ),
            ));
        }
        // The TOML parser refuses zero durations; a configuration built in
        // code is held to the same rule.
        if self.deadline == Some(Some(Duration::ZERO)) {
            return Err(ConfigError::at(
                "deadline",
                "must be greater than zero, or \"off\"",
            ));
        }
        if self.max_retry_after.is_some_and(|d| d.0.is_zero()) {
            return Err(ConfigError::at(
                "max_retry_after",
                "must be greater than zero",
            ));
        }
        // Nor longer than the parser reads, so that what validates is
        // written as TOML that reads back.
        if let Some(Some(d)) = self.deadline {
            too_long("deadline", d)?;
        }
        if let Some(d) = self.max_retry_after {
            too_long("max_retry_after", d.0)?;
        }
        let max_attempts = self.max_attempts.unwrap_or(6);
        match self.max_unknown_attempts {
            Some(Some(n)) if !ATTEMPTS.contains(&n) => {
                return Err(ConfigError::at(
                    "max_unknown_attempts",
                    format!("must be at least {}, or \"off\"", ATTEMPTS.start()),
                ))
            }
            Some(Some(n)) if n > max_attempts => warnings.push(ConfigWarning {
                path: "max_unknown_attempts".into(),
                message: format!(
                    "{n} is above max_attempts ({max_attempts}); the global cap applies first"
                ),
            }),
            _ => {}
        }
        if let Some(strategy) = &self.strategy {
            strategy.backoff().map_err(|e| e.nested_in("strategy"))?;
        }
        self.budget_spec()?;
        for (name, class_config) in &self.classes {
            let path = join_key("classes", name);
            let class: ErrorClass = name.parse().map_err(|_| {
                ConfigError::at(
                    &path,
                    format!(
                        "unknown error class `{name}`; allowed: {}",
                        ErrorClass::allowed_names()
                    ),
                )
            })?;
            if let Some(cap) = class_config.max_attempts {
                if class == ErrorClass::Unknown {
                    return Err(ConfigError::at(
                        format!("{path}.max_attempts"),
                        "the unknown class's cap is set with the top-level `max_unknown_attempts`",
                    ));
                }
                if !ATTEMPTS.contains(&cap) {
                    return Err(ConfigError::at(
                        format!("{path}.max_attempts"),
                        format!("must be at least {}", ATTEMPTS.start()),
                    ));
                }
            }
            if let Some(strategy) = &class_config.strategy {
                strategy
                    .backoff()
                    .map_err(|e| e.nested_in(&format!("{path}.strategy")))?;
                if !class.is_retryable() {
                    warnings.push(ConfigWarning {
                        path: format!("{path}.strategy"),
                        message: format!(
                            "{class} errors are never retried; this strategy is never used"
                        ),
                    });
                }
            }
        }
        Ok(warnings)
    }

    /// The envelope this configuration describes, defaults filled in.
    pub fn envelope(&self) -> Envelope {
        let defaults = Envelope::default();
        let mut class_max_attempts = [None; 8];
        for (name, class_config) in &self.classes {
            if let Ok(class) = name.parse::<ErrorClass>() {
                if class != ErrorClass::Unknown {
                    class_max_attempts[class.index()] = class_config.max_attempts;
                }
            }
        }
        Envelope {
            deadline: self.deadline.unwrap_or(defaults.deadline),
            max_attempts: self.max_attempts.unwrap_or(defaults.max_attempts),
            max_unknown_attempts: self
                .max_unknown_attempts
                .unwrap_or(defaults.max_unknown_attempts),
            class_max_attempts,
            max_retry_after: self
                .max_retry_after
                .map_or(defaults.max_retry_after, |d| d.0),
        }
    }

    /// The strategy used for `class`: its own, else the default one.
    /// `None` only when a strategy table is invalid (see [`validate`](Self::validate)).
    pub fn backoff(&self, class: ErrorClass) -> Option<Backoff> {
        let own = self
            .classes
            .get(class.name())
            .and_then(|c| c.strategy.as_ref());
        match own.or(self.strategy.as_ref()) {
            Some(strategy) => strategy.backoff().ok(),
            None => Some(default_backoff()),
        }
    }

    /// The `[budget]` table's budget, defaults filled in; `None` without
    /// one. Errors name the field (`budget.window`).
    pub fn budget_spec(&self) -> Result<Option<BudgetSpec>, ConfigError> {
        self.budget
            .as_ref()
            .map(|b| b.spec().map_err(|e| e.nested_in("budget")))
            .transpose()
    }

    /// Validates, then builds the decision engine, with a fresh budget if
    /// the configuration has one (each call builds a new one: engines
    /// built separately never share a budget; clones of one engine do).
    pub fn engine(&self) -> Result<Engine, ConfigError> {
        self.validate()?;
        let strategies = ErrorClass::ALL
            .map(|class| ClassStrategy::new(self.backoff(class).unwrap_or_else(default_backoff)));
        let budget = self.budget_spec()?.map(|spec| spec.build());
        Ok(Engine::with_strategies(self.envelope(), strategies).with_budget(budget))
    }

    /// The same policy with every default written out, strategy tables
    /// complete and class tables only for classes that set something.
    pub fn normalized(&self) -> Result<RetryConfig, ConfigError> {
        self.validate()?;
        let envelope = self.envelope();
        let default = self
            .strategy
            .as_ref()
            .map_or(Ok(default_backoff()), StrategyConfig::backoff)?;
        let classes = self
            .classes
            .iter()
            .filter_map(|(name, c)| {
                let class: ErrorClass = name.parse().ok()?;
                let strategy = c
                    .strategy
                    .as_ref()
                    .and_then(|s| s.backoff().ok())
                    .map(StrategyConfig::from);
                Some((
                    class.name().to_owned(),
                    ClassConfig {
                        max_attempts: c.max_attempts,
                        strategy,
                    },
                ))
            })
            .filter(|(_, c)| c.max_attempts.is_some() || c.strategy.is_some())
            .collect();
        Ok(RetryConfig {
            deadline: Some(envelope.deadline),
            max_attempts: Some(envelope.max_attempts),
            max_unknown_attempts: Some(envelope.max_unknown_attempts),
            max_retry_after: Some(HumanDuration(envelope.max_retry_after)),
            seed: self.seed,
            allow: self.allow.clone(),
            strategy: Some(StrategyConfig::from(default)),
            classes,
            budget: self.budget_spec()?.map(BudgetConfig::from),
        })
    }

    /// The configuration as a TOML document.
    pub fn to_toml_string(&self) -> String {
        // Serialising plain strings, integers and tables cannot fail.
        toml::to_string(self).unwrap_or_default()
    }
}

impl StrategyConfig {
    /// The strategy this table describes, or an error naming the field.
    pub fn backoff(&self) -> Result<Backoff, ConfigError> {
        let kind = BackoffKind::from_name(&self.kind).ok_or_else(|| {
            let allowed: Vec<&str> = BackoffKind::ALL.iter().map(|k| k.name()).collect();
            ConfigError::at(
                "kind",
                format!(
                    "unknown strategy `{}`; allowed: {}",
                    self.kind,
                    allowed.join(", ")
                ),
            )
        })?;
        // Zero means something only as `constant`'s delay: retry at once.
        // Every other formula multiplies its base (or draws up to its max),
        // so a zero there would make every delay zero under another name.
        if self.max.is_some_and(|d| d.0.is_zero()) {
            return Err(ConfigError::at("max", "must be greater than zero"));
        }
        for (field, d) in [("base", self.base), ("max", self.max)] {
            if let Some(d) = d {
                too_long(field, d.0)?;
            }
        }
        if kind != BackoffKind::Constant && self.base.is_some_and(|d| d.0.is_zero()) {
            return Err(ConfigError::at(
                "base",
                format!(
                    "must be greater than zero for `{}`: with a zero base every delay of this formula is zero; to retry immediately write kind = \"constant\", base = \"0s\"",
                    kind.name()
                ),
            ));
        }
        let (default_base, default_max) = kind.defaults();
        let base = self.base.map_or(default_base, |d| d.0);
        if kind == BackoffKind::Constant {
            if self.max.is_some() {
                return Err(ConfigError::at(
                    "max",
                    "`constant` takes only `base`, the delay itself",
                ));
            }
            return Ok(Backoff::constant(base));
        }
        let max = self.max.map_or(default_max, |d| d.0);
        if base > max {
            return Err(ConfigError::at(
                if self.base.is_some() { "base" } else { "max" },
                format!(
                    "base ({}) must not be above max ({}{})",
                    format_duration(base),
                    format_duration(max),
                    if self.max.is_none() {
                        ", the default"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(Backoff::new(kind, base, max))
    }
}

impl From<Backoff> for StrategyConfig {
    fn from(backoff: Backoff) -> Self {
        let constant = backoff.kind() == BackoffKind::Constant;
        StrategyConfig {
            kind: backoff.kind().name().to_owned(),
            base: Some(HumanDuration(backoff.base())),
            max: (!constant).then_some(HumanDuration(backoff.max())),
        }
    }
}

// ---------------------------------------------------------------------------
// Durations

/// A duration written the human way: `"250ms"`, `"1.5s"`, `"1m30s"`.
///
/// Deserialises with [`parse_duration`] and serialises in the largest unit
/// that represents it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

const UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a positive human duration: one or more `<number><unit>` parts with
/// units `ns`, `us`, `ms`, `s`, `m`, `h`; numbers may have a fraction.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_time(text)?;
    if duration.is_zero() {
        return Err(format!(
            "`{text}` is zero; durations must be greater than zero"
        ));
    }
    Ok(duration)
}

/// Parses a human duration like [`parse_duration`], but allows zero: for
/// points in time (an outage starting at `"0s"`) rather than delays.
///
/// Every step is checked arithmetic: a value past `u64::MAX` nanoseconds
/// (about 584 years), however it is written, is an error, never a wrapped
/// or saturated result. Parts are read from left to right and the first
/// problem is reported.
pub fn parse_time(text: &str) -> Result<Duration, String> {
    let allowed = "expected a number and a unit (ns, us, ms, s, m, h), such as \"250ms\", \"1.5s\" or \"1m30s\"";
    let s = text.trim();
    if s.starts_with('-') {
        return Err(format!("`{text}` is negative; {allowed}"));
    }
    if s.is_empty() {
        return Err(format!("empty duration; {allowed}"));
    }
    let too_large = || {
        format!(
            "`{text}` is too large; durations go up to {}ns (about 584 years)",
            u64::MAX
        )
    };
    let finer = || format!("`{text}` is finer than one nanosecond, the finest step a duration has");
    let not_a_number = || format!("`{text}` is not a number; {allowed}");
    // The running total never exceeds `u64::MAX`, so that every product
    // and sum below fits in (and is checked against) 128 bits.
    let limit = u128::from(u64::MAX);
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit.trim())
            .map(|(_, scale)| *scale)
            .ok_or_else(|| {
                let exponent = matches!(unit, "e" | "E" | "e+" | "E+" | "e-" | "E-")
                    && next.starts_with(|c: char| c.is_ascii_digit());
                if unit.is_empty() {
                    format!("`{text}` has no unit; {allowed}")
                } else if exponent {
                    format!("`{text}` has an exponent, which durations do not take; write the digits out: {allowed}")
                } else {
                    format!("`{text}` has an unknown unit `{unit}`; {allowed}")
                }
            })?;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(format!("`{text}` is missing a number; {allowed}"));
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_number());
        }
        // The fraction exactly: `digits / 10^k` of the unit must be a whole
        // number of nanoseconds. A unit is at most 3.6e12 ns, so a fraction
        // with more than 25 significant digits never is (and 10^25 times
        // the unit still fits in 128 bits).
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 25 {
            return Err(finer());
        }
        let mut part: u128 = 0;
        if !fraction.is_empty() {
            let digits: u128 = fraction.parse().map_err(|_| not_a_number())?;
            let tenths = 10u128
                .checked_pow(fraction.len() as u32)
                .ok_or_else(finer)?;
            let scaled = digits.checked_mul(scale).ok_or_else(too_large)?;
            if scaled % tenths != 0 {
                return Err(finer());
            }
            part = scaled / tenths;
        }
        // Leading zeros aside, a whole part longer than 20 digits is past
        // the limit; `parse` would refuse past 39 anyway.
        let whole = whole.trim_start_matches('0');
        if whole.len() > 20 {
            return Err(too_large());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        part = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(part))
            .ok_or_else(too_large)?;
        total = total
            .checked_add(part)
            .filter(|t| *t <= limit)
            .ok_or_else(too_large)?;
        rest = next;
    }
    // Delays are computed in 64-bit nanoseconds: about 584 years.
    let nanos = u64::try_from(total).map_err(|_| too_large())?;
    Ok(Duration::from_nanos(nanos))
}

/// Formats a duration in the largest unit that represents it exactly
/// (`"250ms"`, `"1m"`, `"1500us"`); `"0s"` for zero.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    UNITS
        .iter()
        .rev()
        .filter(|(name, _)| *name != "µs")
        .find(|(_, scale)| nanos % scale == 0)
        .map(|(name, scale)| format!("{}{name}", nanos / scale))
        .unwrap_or_else(|| format!("{nanos}ns"))
}

struct DurationVisitor {
    allow_off: bool,
}

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"250ms\"")?;
        if self.allow_off {
            f.write_str(" or \"off\"")?;
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.allow_off && v == "off" {
            return Ok(None);
        }
        parse_duration(v).map(Some).map_err(E::custom)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if self.allow_off && !v {
            return Ok(None);
        }
        Err(E::invalid_type(de::Unexpected::Bool(v), &self))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parsed = deserializer.deserialize_any(DurationVisitor { allow_off: false })?;
        // Without "off", the visitor always yields a duration.
        Ok(HumanDuration(parsed.unwrap_or_default()))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

/// A delay that may be zero (`"0s"`); whether zero is allowed is checked
/// with the strategy's kind.
fn some_delay<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HumanDuration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_time(&text)
        .map(|t| Some(HumanDuration(t)))
        .map_err(de::Error::custom)
}

fn some_limit_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Duration>>, D::Error> {
    d.deserialize_any(DurationVisitor { allow_off: true })
        .map(Some)
}

fn ser_limit_duration<S: Serializer>(
    v: &Option<Option<Duration>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(Some(d)) => s.serialize_str(&format_duration(*d)),
        _ => s.serialize_str("off"),
    }
}

/// The attempts a cap allows (`max_attempts`, a class's cap,
/// `max_unknown_attempts`): its parse error says this range, and
/// [`RetryConfig::validate`] refuses the values of the field's type
/// outside it.
const ATTEMPTS: RangeInclusive<u32> = 1..=u32::MAX;

/// Reads a whole number of `range` (or `"off"` where `off` allows it).
/// A value of the wrong type, or one past `u32`, is told the range; one
/// inside `u32` but outside the range is read, for the field's own check
/// to refuse with its reason.
struct CountVisitor {
    range: RangeInclusive<u32>,
    off: bool,
}

impl CountVisitor {
    fn whole<E: de::Error>(
        &self,
        v: Option<u32>,
        unexpected: de::Unexpected<'_>,
    ) -> Result<Option<u32>, E> {
        v.map(Some)
            .ok_or_else(|| E::invalid_value(unexpected, self))
    }
}

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Option<u32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a whole number from {} to {}",
            self.range.start(),
            self.range.end()
        )?;
        if self.off {
            f.write_str(", or \"off\"")?;
        }
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.whole(u32::try_from(v).ok(), de::Unexpected::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.whole(u32::try_from(v).ok(), de::Unexpected::Unsigned(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        let shown = format!("integer `{v}`");
        self.whole(u32::try_from(v).ok(), de::Unexpected::Other(&shown))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        let shown = format!("integer `{v}`");
        self.whole(u32::try_from(v).ok(), de::Unexpected::Other(&shown))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match (self.off, v) {
            (true, "off") => Ok(None),
            (true, _) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            (false, _) => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        match (self.off, v) {
            (true, false) => Ok(None),
            (true, true) => Err(E::invalid_value(de::Unexpected::Bool(v), &self)),
            (false, _) => Err(E::invalid_type(de::Unexpected::Bool(v), &self)),
        }
    }
}

fn some_limit_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    d.deserialize_any(CountVisitor {
        range: ATTEMPTS,
        off: true,
    })
    .map(Some)
}

/// An attempt cap that has no `"off"`: `max_attempts`, a class's cap.
fn some_attempts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    d.deserialize_any(CountVisitor {
        range: ATTEMPTS,
        off: false,
    })
}

/// A token bucket's capacity or cost.
fn some_tokens<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    d.deserialize_any(CountVisitor {
        range: TOKEN_COUNTS,
        off: false,
    })
}

fn ser_limit_count<S: Serializer>(v: &Option<Option<u32>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(Some(n)) => s.serialize_u32(*n),
        _ => s.serialize_str("off"),
    }
}

// ---------------------------------------------------------------------------
// Locating fields in a TOML document

/// How deep the locators walk into nested tables and arrays; deeper
/// documents are refused by the TOML parser itself (its recursion limit),
/// and their errors point at the deepest key found within this depth.
const MAX_LOCATE_DEPTH: usize = 128;

/// `key` as one segment of a [path](self#paths): as it is when TOML allows
/// it bare (ASCII letters, digits, `-` and `_`), else as a quoted TOML
/// string, so that a key holding a dot stays one segment.
///
/// ```
/// use reflexio::config::path_segment;
/// assert_eq!(path_segment("rate_limit"), "rate_limit");
/// assert_eq!(path_segment("a.b"), "\"a.b\"");
/// ```
pub fn path_segment(key: &str) -> Cow<'_, str> {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        return Cow::Borrowed(key);
    }
    let mut quoted = String::with_capacity(key.len() + 2);
    quoted.push('"');
    for c in key.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    Cow::Owned(quoted)
}

/// `path` with `key` appended as one more segment (see [`path_segment`]).
pub fn join_key(path: &str, key: &str) -> String {
    join(path, &path_segment(key))
}

/// The keys of a [path](self#paths), quotes removed: `classes."a.b".max`
/// is `["classes", "a.b", "max"]`. A segment that is not valid TOML key
/// syntax is taken as written up to the next dot.
pub fn split_path(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut chars = path.chars().peekable();
    while chars.peek().is_some() {
        let mut segment = String::new();
        // A quoted segment may be empty (`""` is a valid TOML key).
        let quoted = matches!(chars.peek(), Some('"' | '\''));
        match chars.peek() {
            Some('"') => {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('u') => {
                                let hex: String = chars.by_ref().take(4).collect();
                                let decoded =
                                    u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                                segment.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
                            }
                            Some('n') => segment.push('\n'),
                            Some('t') => segment.push('\t'),
                            Some('r') => segment.push('\r'),
                            Some(other) => segment.push(other),
                            None => {}
                        },
                        c => segment.push(c),
                    }
                }
            }
            Some('\'') => {
                chars.next();
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    segment.push(c);
                }
            }
            _ => {}
        }
        // The rest of the segment, up to the next dot.
        while let Some(&c) = chars.peek() {
            if c == '.' {
                break;
            }
            segment.push(c);
            chars.next();
        }
        chars.next();
        if quoted || !segment.is_empty() {
            segments.push(segment);
        }
    }
    segments
}

/// The byte span of the value at [path](self#paths) `path` in the TOML
/// `source`, or of the deepest enclosing key or value found when the path
/// is only partly there. Numeric segments index arrays (`failures.2.rate`).
///
/// ```
/// use reflexio::config::locate;
/// let source = "[classes.\"a.b\"]\nmax_attempts = 2\n";
/// let span = locate(source, "classes.\"a.b\".max_attempts").unwrap();
/// assert_eq!(&source[span], "2");
/// ```
pub fn locate(source: &str, path: &str) -> Option<Range<usize>> {
    let (root, _) = DeTable::parse_recoverable(source);
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut found = None;
    for segment in split_path(path).iter().take(MAX_LOCATE_DEPTH) {
        let next = if let Some(t) = table {
            match t.iter().find(|(k, _)| k.get_ref().as_ref() == segment) {
                Some((k, v)) => {
                    found = Some(if v.span().is_empty() {
                        k.span()
                    } else {
                        v.span()
                    });
                    Some(v)
                }
                None => None,
            }
        } else if let Some(DeValue::Array(items)) = value.map(|v| v.get_ref()) {
            let item = segment.parse::<usize>().ok().and_then(|i| items.get(i));
            if let Some(item) = item {
                if !item.span().is_empty() {
                    found = Some(item.span());
                }
            }
            item
        } else {
            None
        };
        let Some(next) = next else { break };
        value = Some(next);
        table = match next.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    // Tables from `[[a]]` headers may have empty spans: fall back to the
    // first key inside them.
    if found.as_ref().is_some_and(|r| r.is_empty()) {
        if let Some(DeValue::Table(t)) = value.map(|v| v.get_ref()) {
            if let Some((k, _)) = t.iter().min_by_key(|(k, _)| k.span().start) {
                return Some(k.span());
            }
        }
    }
    found
}

/// The [path](self#paths) of the deepest key whose key or value covers
/// byte `offset` of the TOML `source`.
///
/// ```
/// use reflexio::config::path_at;
/// let source = "[strategy]\nkind = \"constant\"\n";
/// assert_eq!(path_at(source, 19).as_deref(), Some("strategy.kind"));
/// ```
pub fn path_at(source: &str, offset: usize) -> Option<String> {
    fn covers(s: Range<usize>, offset: usize) -> bool {
        s.start <= offset && offset < s.end.max(s.start + 1)
    }
    fn walk_value(v: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<String>) -> bool {
        if path.len() >= MAX_LOCATE_DEPTH {
            return false;
        }
        match v.get_ref() {
            DeValue::Table(t) => walk_table(t, offset, path),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    if covers(item.span(), offset) {
                        walk_value(item, offset, path);
                        return true;
                    }
                    if walk_value(item, offset, path) {
                        return true;
                    }
                    path.pop();
                }
                false
            }
            _ => false,
        }
    }
    fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
        for (k, v) in table.iter() {
            path.push(path_segment(k.get_ref()).into_owned());
            if covers(k.span(), offset) || covers(v.span(), offset) {
                walk_value(v, offset, path);
                return true;
            }
            // Tables from `[a.b]` headers may not span their contents.
            if walk_value(v, offset, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let (root, _) = DeTable::parse_recoverable(source);
    let mut path = Vec::new();
    walk_table(root.get_ref(), offset, &mut path);
    (!path.is_empty()).then(|| path.join("."))
}

/// A [path](self#paths) for people: array indices in brackets,
/// `failures.2.probability` as `failures[2].probability`.
pub fn display_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for segment in split_path(path) {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&path_segment(&segment));
        }
    }
    out
}

/// The 1-based line and column (in characters) of byte `offset` in
/// `source`; an offset past the end is the end.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// The key with the most segments, read line by line from the text
/// (the parser keeps no tree of a document past its recursion limit):
/// its path, at most [`MAX_LOCATE_DEPTH`] segments of it, and the span of
/// its key text.
fn deepest_key(source: &str) -> Option<(String, Range<usize>)> {
    let mut table: Vec<String> = Vec::new();
    let mut best: Option<(usize, Vec<String>, Range<usize>)> = None;
    let mut line_start = 0;
    for line in source.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        let (keys, key_text) = if let Some(header) = text.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let header = header.split(']').next().unwrap_or(header);
            table = split_path(header)
                .iter()
                .map(|k| k.trim().to_owned())
                .collect();
            (table.clone(), header)
        } else if let Some((key, _)) = text.split_once('=') {
            let mut keys = table.clone();
            keys.extend(split_path(key).iter().map(|k| k.trim().to_owned()));
            (keys, key)
        } else {
            line_start += line.len();
            continue;
        };
        if best
            .as_ref()
            .is_none_or(|(depth, _, _)| keys.len() > *depth)
        {
            let start = line_start + indent + text.find(key_text.trim()).unwrap_or(0);
            let span = start..start + key_text.trim().len();
            best = Some((keys.len(), keys, span));
        }
        line_start += line.len();
    }
    best.map(|(_, keys, span)| {
        let path = keys
            .iter()
            .take(MAX_LOCATE_DEPTH)
            .map(|k| path_segment(k).into_owned())
            .collect::<Vec<_>>()
            .join(".");
        (path, span)
    })
}

/// The path of the table whose header comes last before `offset` (`""`
/// for the root table): read from the header's own text.
fn enclosing_table(source: &str, offset: usize) -> String {
    let offset = floor_char_boundary(source, offset);
    let before = source.get(..offset).unwrap_or(source);
    for line in before.lines().rev() {
        let line = line.trim_start();
        let Some(header) = line.strip_prefix('[') else {
            continue;
        };
        let array = header.starts_with('[');
        let header = header.trim_start_matches('[');
        // An unterminated header still names the table it meant to open.
        let end = header.find(']').unwrap_or(header.len());
        let keys: Vec<String> = split_path(&header[..end])
            .iter()
            .map(|k| path_segment(k.trim()).into_owned())
            .collect();
        let mut path = keys.join(".");
        if array {
            // The index of this `[[...]]` table among its siblings.
            let marker = format!("[[{}]]", &header[..end]);
            let index = before.matches(&marker).count().saturating_sub(1);
            path = join(&path, &index.to_string());
        }
        return path;
    }
    String::new()
}

/// The text of a TOML document read as bytes, or an error giving the byte
/// offset, line and column of the first byte that is not UTF-8 (TOML is
/// UTF-8 text), and the path of the field it falls in.
///
/// ```
/// let err = reflexio::config::decode_utf8(b"deadline = \"30\xffs\"\n").unwrap_err();
/// assert_eq!(err.path, "deadline");
/// assert_eq!(err.span, Some(14..15));
/// assert_eq!(err.position, Some((1, 15)));
/// ```
pub fn decode_utf8(source: &[u8]) -> Result<&str, ConfigError> {
    let error = match std::str::from_utf8(source) {
        Ok(text) => return Ok(text),
        Err(error) => error,
    };
    let offset = error.valid_up_to();
    let valid = std::str::from_utf8(&source[..offset]).unwrap_or_default();
    let bad = error.error_len().unwrap_or(source.len() - offset);
    Err(ConfigError {
        path: path_at(valid, offset.saturating_sub(1))
            .unwrap_or_else(|| enclosing_table(valid, offset)),
        message: format!("not valid UTF-8 at byte {offset}: TOML documents are UTF-8 text"),
        span: Some(offset..offset + bad),
        position: Some(line_col(valid, offset)),
    })
}

/// `offset`, moved back to the start of the character it falls in (and to
/// the end of `source` if past it).
fn floor_char_boundary(source: &str, offset: usize) -> usize {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The path of the key a "duplicate key" error's `span` covers, and the
/// key itself. The keys are read from the start of the line to the end of
/// the span: a header's (`[a.b]` twice) are absolute, a dotted key's
/// (`a.b = 1` twice) follow the enclosing table's; in an inline table the
/// path comes from the parsed document.
fn duplicate_key_path(source: &str, span: Range<usize>) -> (String, String) {
    let start = floor_char_boundary(source, span.start);
    let end = floor_char_boundary(source, span.end).max(start);
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let key = split_path(source[start..end].trim())
        .last()
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    let head = source[line_start..end].trim();
    let join_all = |base: String, text: &str| {
        split_path(text)
            .iter()
            .fold(base, |p, k| join_key(&p, k.trim()))
    };
    let path = if let Some(header) = head.strip_prefix('[') {
        join_all(String::new(), header.trim_start_matches('['))
    } else if head.contains(['=', '{', '[', ',']) {
        let within = path_at(source, start).unwrap_or_default();
        if within.ends_with(path_segment(&key).as_ref()) {
            within
        } else {
            join_key(&within, &key)
        }
    } else {
        join_all(enclosing_table(source, line_start), head)
    };
    (path, key)
}
