//! # reflexio-sim
//!
//! A deterministic, discrete-event simulator for reflexio retry policies.
//!
//! A [`Scenario`] names a workload (how many calls, how they arrive), the
//! latency of one attempt, a chain of failure models for the service being
//! called, and the policies to compare, each written in the library's
//! [`RetryConfig`](reflexio::RetryConfig) schema. [`run`] pushes the same
//! arrivals and the same random draws through every policy on a virtual
//! clock; every retry decision comes from [`reflexio::Engine`]. The result
//! is a [`Report`] of metrics per policy, plus any envelope violation the
//! independent [checker](check) found.
//!
//! ```
//! let source = r#"
//! seed = 7
//! [workload]
//! calls = 100
//! [[failures]]
//! model = "random"
//! probability = 0.3
//! classes = { transient = 1.0 }
//! [policies.default]
//! "#;
//! let scenario = reflexio_sim::Scenario::from_toml_str(source, "example.toml").unwrap();
//! let report = reflexio_sim::run(&scenario, scenario.seed).unwrap();
//! assert_eq!(report.runs[0].policies[0].calls, 100);
//! ```

pub mod budget;
pub mod check;
pub mod cli;
pub mod doctor;
pub mod draws;
mod jobs;
pub mod latency;
pub mod limits;
mod ln;
pub mod metrics;
pub mod model;
pub mod output;
mod queue;
pub mod report;
pub mod scenario;
pub mod suggest;
pub mod world;

pub use metrics::PolicyMetrics;
pub use report::Report;
pub use scenario::{Scenario, ScenarioError};
pub use world::{run, run_many, SimError};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
