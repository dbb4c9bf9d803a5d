//! `reflexio-sim check` (alias `doctor`): every error and warning of a
//! scenario or policy file at once, then each policy normalised with its
//! worst case.
//!
//! Policies are linted by the library ([`reflexio::lint`]), so the doctor
//! and a service that lints its configuration at start-up agree: the
//! compared `[policies.NAME]` tables and each `[[background]]` workload's
//! `policy` alike. The rest
//! of a scenario (workload, latency, failure models) is checked by the
//! scenario parser, which reports its first problem.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reflexio::lint::{self, Severity};
use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::cli::describe_policy;
use crate::scenario::{
    too_many_policies, Scenario, ScenarioError, BACKGROUND_BUDGET, MAX_BACKGROUND,
};
use reflexio::config::{join_key, line_col, locate, split_path};

/// Exit code: warnings found under `--deny-warnings`.
pub const EXIT_WARNINGS: i32 = 1;
/// Exit code: errors found (or the file cannot be read).
pub const EXIT_ERRORS: i32 = 2;

/// How `check` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    /// Diagnostics on standard error, the normalised policies on standard
    /// output.
    Text,
    /// One JSON document on standard output.
    Json,
}

/// What `check` was asked.
#[derive(Debug, Clone)]
pub struct CheckOptions<'a> {
    /// The scenario or policy file.
    pub file: &'a Path,
    /// Text or JSON.
    pub format: CheckFormat,
    /// Exit with [`EXIT_WARNINGS`] when there are warnings.
    pub deny_warnings: bool,
    /// Warning codes to silence, on top of each policy's `allow`.
    pub allow: &'a [String],
}

/// One diagnostic, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Item {
    severity: &'static str,
    code: &'static str,
    path: String,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

#[derive(Debug, Serialize)]
struct WorstCaseJson {
    max_attempts: u32,
    max_attempts_before_deadline: u32,
    /// `None` when unbounded.
    max_total_sleep_ms: Option<f64>,
    max_total_sleep_with_hints_ms: Option<f64>,
    bounded: bool,
}

#[derive(Debug, Serialize)]
struct PolicyJson {
    /// The table under `[policies]`, or empty for a policy file.
    name: String,
    /// The policy with every default written out, as TOML.
    normalized: String,
    worst_case: WorstCaseJson,
    /// The retry budget, for a policy with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<BudgetJson>,
}

/// A policy's retry budget and the load it guarantees in steady state.
#[derive(Debug, Serialize)]
struct BudgetJson {
    kind: &'static str,
    /// Its settings in words, as the text output prints them.
    description: String,
    /// Retries allowed per window whatever the traffic (ratio; 0 for a
    /// token bucket).
    reserve: u64,
    /// Attempts per call at most, in steady state, while retries fail.
    amplification_when_failing: f64,
    /// Attempts per call at most, in steady state, whatever the outcomes.
    amplification: f64,
}

#[derive(Debug, Serialize)]
struct CheckJson<'a> {
    format: &'static str,
    file: String,
    kind: &'static str,
    errors: usize,
    warnings: usize,
    exit_code: i32,
    diagnostics: &'a [Item],
    /// The scenario's other tables, normalised: for a scenario without
    /// errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario: Option<ScenarioTables>,
    policies: Vec<PolicyJson>,
}

/// A scenario's tables other than its policies, normalised as TOML, as
/// `check` prints them.
#[derive(Debug, Serialize)]
struct ScenarioTables {
    /// `[workload]`, every default written, phases with their times.
    workload: String,
    /// Each `[[background]]` table with its policy, in file order.
    background: Vec<BackgroundJson>,
    /// `[latency]`, with the mean timeline of an attempt as comments.
    latency: String,
    /// `[client]`, when the scenario sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<String>,
}

/// One background workload, normalised.
#[derive(Debug, Serialize)]
struct BackgroundJson {
    name: String,
    normalized: String,
    /// Its policy's worst case; absent without a policy (one attempt per
    /// call).
    #[serde(skip_serializing_if = "Option::is_none")]
    worst_case: Option<WorstCaseJson>,
}

impl WorstCaseJson {
    /// The worst case of `engine`'s policy.
    fn of(engine: &reflexio::engine::Engine) -> WorstCaseJson {
        let wc = engine.worst_case();
        WorstCaseJson {
            max_attempts: wc.max_attempts,
            max_attempts_before_deadline: wc.max_attempts_before_deadline,
            max_total_sleep_ms: ms(wc.max_total_sleep),
            max_total_sleep_with_hints_ms: ms(wc.max_total_sleep_with_hints),
            bounded: wc.bounded,
        }
    }
}

fn ms(d: Duration) -> Option<f64> {
    (d < Duration::from_nanos(u64::MAX)).then(|| (d.as_nanos() as f64 / 1e3).round() / 1e3)
}

/// Runs `check`; returns the exit code, or a message for a file that
/// cannot be read.
pub fn check(
    options: &CheckOptions<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, String> {
    let path = options.file;
    lint::check_allow(options.allow).map_err(|m| format!("--allow: {m}"))?;
    let file = path.display().to_string();
    let source = match crate::limits::read_text(path, crate::limits::MAX_SCENARIO_BYTES) {
        Ok(source) => source,
        Err(e) => {
            let message = format!("cannot read: {e}");
            if let CheckFormat::Json = options.format {
                // A reader of the JSON gets its document all the same.
                let item = Item {
                    severity: "error",
                    code: "unreadable",
                    path: String::new(),
                    line: None,
                    column: None,
                    message: message.clone(),
                };
                let doc = CheckJson {
                    format: "reflexio-sim-check/1",
                    file: file.clone(),
                    kind: "unreadable",
                    errors: 1,
                    warnings: 0,
                    exit_code: EXIT_ERRORS,
                    diagnostics: std::slice::from_ref(&item),
                    scenario: None,
                    policies: Vec::new(),
                };
                let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
                crate::cli::print(out, &format!("{json}\n"))?;
            }
            return Err(format!("{file}: {message}"));
        }
    };
    let outline = Outline::of(&source);
    let is_scenario = outline.is_scenario;

    let mut items: Vec<(usize, Item)> = Vec::new();
    let push = |d: lint::Diagnostic, items: &mut Vec<(usize, Item)>| {
        if !d.is_error() && options.allow.iter().any(|c| c == d.code) {
            return;
        }
        let offset = d.span.as_ref().map_or(usize::MAX, |s| s.start);
        let position = d.span.as_ref().map(|s| line_col(&source, s.start));
        let item = Item {
            severity: d.severity.name(),
            code: d.code,
            path: d.path,
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            message: d.message,
        };
        if !items.iter().any(|(_, i)| *i == item) {
            items.push((offset, item));
        }
    };

    // The policies to describe when all is well: (table name, config).
    let mut policies: Vec<(String, reflexio::RetryConfig)> = Vec::new();
    let mut listed = Listed::default();
    // The scenario as the simulator reads it, when nothing is wrong with
    // its syntax.
    let mut scenario = None;
    if is_scenario {
        // The compared policies and each background workload's policy,
        // all linted from one parse of the file.
        let mut tables: Vec<String> = outline
            .policies
            .iter()
            .map(|n| join_key("policies", n))
            .collect();
        // Background policies only in a file that parses (the scenario
        // parser reports a syntax error first).
        if outline.parses {
            tables.extend(
                outline
                    .background
                    .iter()
                    .map(|b| format!("background.{}.policy", b.k)),
            );
        }
        let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
        let mut reports = lint::lint_toml_tables(&source, &tables).into_iter();
        for (name, report) in outline.policies.iter().zip(reports.by_ref()) {
            if report.has_errors() {
                listed.policies.push(name.clone());
            }
            for d in report.diagnostics {
                push(d, &mut items);
            }
            if let Some(config) = report.config {
                policies.push((name.clone(), config));
            }
        }
        let syntax = items.iter().any(|(_, i)| i.code == lint::SYNTAX);
        // Each background workload's policy, linted in place. What is
        // listed is noted, so that the scenario parser's first problem
        // there is not listed twice.
        if !syntax {
            for found in background_lints(&outline.background, reports) {
                if found.report.diagnostics.iter().any(|d| d.is_error()) {
                    listed.background.push(found.k);
                }
                if found.budget.is_some() {
                    listed.budgets.push(found.k);
                }
                for d in found.report.diagnostics {
                    push(d, &mut items);
                }
                if let Some((path, span)) = found.budget {
                    let position = span.as_ref().map(|s| line_col(&source, s.start));
                    items.push((
                        span.map_or(usize::MAX, |s| s.start),
                        Item {
                            severity: Severity::Error.name(),
                            code: lint::REFUSED,
                            path,
                            line: position.map(|p| p.0),
                            column: position.map(|p| p.1),
                            message: BACKGROUND_BUDGET.to_owned(),
                        },
                    ));
                }
            }
            // Too many policies: refused as the scenario parser refuses
            // them, without building the scenario's every policy first.
            let parsed = match outline.too_many_policies {
                Some(span) => Err(ScenarioError {
                    file: file.clone(),
                    position: span.map(|s| line_col(&source, s.start)),
                    path: "policies".to_owned(),
                    message: too_many_policies(outline.policy_count),
                }),
                None => Scenario::from_source(path, &source),
            };
            match parsed {
                Ok(parsed) => scenario = Some(parsed),
                Err(first) => {
                    if let Some(e) = scenario_error(first, &source, &file, &listed) {
                        let offset = e.position.map_or(usize::MAX, |(line, column)| {
                            offset_of(&source, line, column)
                        });
                        items.push((
                            offset,
                            Item {
                                severity: Severity::Error.name(),
                                code: lint::INVALID,
                                path: e.path,
                                line: e.position.map(|p| p.0),
                                column: e.position.map(|p| p.1),
                                message: e.message,
                            },
                        ));
                    }
                }
            }
        }
    } else {
        let report = lint::lint_toml(&source);
        for d in report.diagnostics {
            push(d, &mut items);
        }
        if let Some(config) = report.config {
            policies.push((String::new(), config));
        }
    }
    items.sort_by_key(|(offset, i)| (*offset, i.severity != "error"));
    let items: Vec<Item> = items.into_iter().map(|(_, i)| i).collect();
    let errors = items.iter().filter(|i| i.severity == "error").count();
    let warnings = items.len() - errors;
    let code = if errors > 0 {
        EXIT_ERRORS
    } else if warnings > 0 && options.deny_warnings {
        EXIT_WARNINGS
    } else {
        0
    };

    // Normalised policies, only when nothing is wrong with them.
    let mut described = Vec::new();
    if errors == 0 {
        for (name, config) in &policies {
            let engine = config.engine().map_err(|e| e.to_string())?;
            let table = if name.is_empty() {
                String::new()
            } else {
                join_key("policies", name)
            };
            described.push((
                name.clone(),
                describe_policy(&table, config, &engine)?,
                engine,
            ));
        }
    }

    // A valid scenario's workload, background and attempt anatomy,
    // normalised.
    let tables = scenario
        .filter(|_| errors == 0)
        .map(|scenario| ScenarioTables {
            workload: scenario.workload.to_toml(),
            background: scenario
                .background
                .iter()
                .map(|b| BackgroundJson {
                    name: b.name.clone(),
                    normalized: b.to_toml(),
                    worst_case: b.policy.as_ref().map(|p| WorstCaseJson::of(&p.engine)),
                })
                .collect(),
            latency: scenario.latency.to_toml(),
            client: Some(scenario.client.to_toml()).filter(|t| !t.is_empty()),
        });

    match options.format {
        CheckFormat::Text => {
            for i in &items {
                let mut line = file.clone();
                if let (Some(l), Some(c)) = (i.line, i.column) {
                    line.push_str(&format!(":{l}:{c}"));
                }
                line.push_str(&format!(": {}[{}]: ", i.severity, i.code));
                if !i.path.is_empty() {
                    line.push_str(&format!("`{}`: ", i.path));
                }
                line.push_str(&i.message);
                let _ = writeln!(err, "{line}");
            }
            let verdict = match (errors, warnings) {
                (0, 0) => "no problems".to_owned(),
                (e, w) => format!(
                    "{e} error{}, {w} warning{}",
                    if e == 1 { "" } else { "s" },
                    if w == 1 { "" } else { "s" }
                ),
            };
            let what = if is_scenario {
                format!(
                    "scenario with {} polic{}",
                    policies.len(),
                    if policies.len() == 1 { "y" } else { "ies" }
                )
            } else {
                "policy".to_owned()
            };
            let _ = writeln!(err, "{file}: {what}: {verdict}");
            let mut text = String::new();
            if let Some(tables) = &tables {
                text.push_str(&tables.workload);
                text.push('\n');
                for b in &tables.background {
                    text.push_str(&b.normalized);
                    text.push('\n');
                }
                text.push_str(&tables.latency);
                text.push('\n');
                if let Some(client) = &tables.client {
                    text.push_str(client);
                    text.push('\n');
                }
            }
            for (i, (_, body, _)) in described.iter().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                text.push_str(body);
            }
            crate::cli::print(out, &text)?;
        }
        CheckFormat::Json => {
            let policies = described
                .into_iter()
                .map(|(name, body, engine)| {
                    let normalized: String = body
                        .lines()
                        .filter(|l| !l.starts_with("# "))
                        .map(|l| format!("{l}\n"))
                        .collect();
                    PolicyJson {
                        name,
                        normalized,
                        worst_case: WorstCaseJson::of(&engine),
                        budget: engine
                            .budget()
                            .and_then(|b| b.spec())
                            .map(|spec| BudgetJson {
                                kind: spec.kind_name(),
                                description: spec.to_string(),
                                reserve: spec.reserve(),
                                amplification_when_failing: spec.amplification_when_failing(),
                                amplification: spec.amplification(),
                            }),
                    }
                })
                .collect();
            let doc = CheckJson {
                format: "reflexio-sim-check/1",
                file,
                kind: if is_scenario { "scenario" } else { "policy" },
                errors,
                warnings,
                exit_code: code,
                diagnostics: &items,
                scenario: tables,
                policies,
            };
            let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            crate::cli::print(out, &format!("{json}\n"))?;
        }
    }
    Ok(code)
}

/// The byte offset of a 1-based line and column (columns counted as bytes,
/// which is close enough to order diagnostics).
fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let start: usize = source
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    start + column.saturating_sub(1)
}

/// What `check` needs of a document's parse tree, taken in one pass so
/// that the tree (the size of the whole document, many times the file's
/// size) is dropped before the linter and the scenario parser build
/// theirs: two whole trees are never alive at once.
struct Outline {
    /// Whether the document has a `policies` or `workload` table.
    is_scenario: bool,
    /// Whether it parsed without a syntax error.
    parses: bool,
    /// The compared policies' names in file order: no more than a
    /// scenario may compare (the parser refuses the rest).
    policies: Vec<String>,
    /// How many `[policies]` tables there are.
    policy_count: usize,
    /// With more than [`crate::limits::MAX_POLICIES`] policies, where
    /// the scenario parser points its refusal (the `policies` key).
    too_many_policies: Option<Option<std::ops::Range<usize>>>,
    /// The `[[background]]` entries with a `policy` table, of the first
    /// [`MAX_BACKGROUND`] (the most a scenario may have).
    background: Vec<BackgroundPolicy>,
}

/// A `[[background]]` entry's `policy` table.
struct BackgroundPolicy {
    /// The entry's index in `[[background]]`.
    k: usize,
    /// Where the policy's retry budget is, if it has one.
    budget: Option<Option<std::ops::Range<usize>>>,
}

impl Outline {
    fn of(source: &str) -> Outline {
        let (root, syntax) = DeTable::parse_recoverable(source);
        let root = root.get_ref();
        let top = |name: &str| {
            root.iter()
                .find(|(k, _)| k.get_ref().as_ref() == name)
                .map(|(_, v)| v.get_ref())
        };
        let is_scenario = top("policies").is_some() || top("workload").is_some();
        // Borrowed names (a copy of each of thousands of names would
        // add to the tree's memory), of which the first are kept.
        let mut policies: Vec<(usize, &str)> = match top("policies") {
            Some(DeValue::Table(t)) => t
                .iter()
                .map(|(k, v)| (v.span().start.max(k.span().start), k.get_ref().as_ref()))
                .collect(),
            _ => Vec::new(),
        };
        let policy_count = policies.len();
        let too_many_policies = (policy_count > crate::limits::MAX_POLICIES).then(|| {
            root.iter()
                .find(|(k, _)| k.get_ref().as_ref() == "policies")
                .map(|(k, v)| {
                    if v.span().is_empty() {
                        k.span()
                    } else {
                        v.span()
                    }
                })
        });
        if policies.len() > crate::limits::MAX_POLICIES {
            policies.select_nth_unstable(crate::limits::MAX_POLICIES);
            policies.truncate(crate::limits::MAX_POLICIES);
        }
        policies.sort_unstable();
        let policies = policies
            .into_iter()
            .map(|(_, name)| name.to_owned())
            .collect();
        let mut background = Vec::new();
        if let Some(DeValue::Array(entries)) = top("background") {
            for (k, entry) in entries.iter().enumerate().take(MAX_BACKGROUND) {
                let DeValue::Table(entry) = entry.get_ref() else {
                    continue;
                };
                let Some(DeValue::Table(policy)) = entry
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == "policy")
                    .map(|(_, v)| v.get_ref())
                else {
                    continue;
                };
                // Where `locate` would point: the value, or its key when
                // the value has no span of its own.
                let budget = policy
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == "budget")
                    .map(|(key, v)| {
                        Some(if v.span().is_empty() {
                            key.span()
                        } else {
                            v.span()
                        })
                    });
                background.push(BackgroundPolicy { k, budget });
            }
        }
        Outline {
            is_scenario,
            parses: syntax.is_empty(),
            policies,
            policy_count,
            too_many_policies,
            background,
        }
    }
}

/// The lint reports of the background workloads' policies (in the order
/// of `background`), with the diagnostics' paths as the scenario parser
/// names fields (`background[1].policy.strategy`), and where each retry
/// budget is: the linter allows one, a background workload's policy may
/// not have one.
fn background_lints(
    background: &[BackgroundPolicy],
    reports: impl Iterator<Item = lint::LintReport>,
) -> Vec<BackgroundLint> {
    background
        .iter()
        .zip(reports)
        .map(|(b, mut report)| {
            let k = b.k;
            let table = format!("background.{k}.policy");
            let named = format!("background[{k}].policy");
            for d in &mut report.diagnostics {
                if let Some(rest) = d.path.strip_prefix(&table) {
                    d.path = format!("{named}{rest}");
                }
            }
            let budget = b
                .budget
                .clone()
                .map(|span| (format!("{named}.budget"), span));
            BackgroundLint { k, report, budget }
        })
        .collect()
}

/// What [`background_lints`] found in one background workload's
/// policy.
struct BackgroundLint {
    /// The entry's index in `[[background]]`.
    k: usize,
    report: lint::LintReport,
    /// Where its retry budget is, if it has one: its path and span.
    budget: Option<(String, Option<std::ops::Range<usize>>)>,
}

/// The policies whose problems the linter already listed, which the
/// scenario parser's first problem must not repeat.
#[derive(Debug, Default)]
struct Listed {
    /// Compared policies (their `[policies]` keys) with lint errors.
    policies: Vec<String>,
    /// Background entries whose policy has lint errors.
    background: Vec<usize>,
    /// Background entries whose policy has a retry budget (listed here,
    /// as the linter allows one).
    budgets: Vec<usize>,
}

/// The segments of a field path as the scenario parser writes it
/// (`background[1].policy.max_attempts`, `policies."a.b".deadline`),
/// quotes removed: the indices in brackets become segments of their own.
fn segments(path: &str) -> Vec<String> {
    let mut dotted = String::with_capacity(path.len() + 2);
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                dotted.push(c);
            }
            '[' if !quoted => dotted.push('.'),
            ']' if !quoted => {}
            c => dotted.push(c),
        }
    }
    split_path(&dotted)
}

/// The scenario parser's first problem that the linter has not already
/// listed.
///
/// The parser stops at its first problem. When that lies in a policy the
/// linter found errors in (or is a background policy's retry budget,
/// listed by [`check`]), the file is parsed again with those policies
/// emptied and those budgets removed, unless a failure model reads a
/// trace file (which needs the scenario's folder). Any other problem of a
/// policy is the simulator's own (a limit on attempts per call, a blank
/// name) and is reported as it is.
fn scenario_error(
    e: ScenarioError,
    source: &str,
    file: &str,
    listed: &Listed,
) -> Option<ScenarioError> {
    let at = segments(&e.path);
    let part = |k: usize| at.get(k).map(String::as_str);
    let entry = || part(1).and_then(|k| k.parse::<usize>().ok());
    let covered = match (part(0), part(2)) {
        (Some("policies"), _) => {
            part(1).is_some_and(|name| listed.policies.iter().any(|p| p == name))
        }
        (Some("background"), Some("policy")) => entry().is_some_and(|k| {
            listed.background.contains(&k)
                || (listed.budgets.contains(&k) && part(3) == Some("budget"))
        }),
        _ => false,
    };
    if !covered {
        return Some(e);
    }
    let mut table: toml::Table = toml::from_str(source).ok()?;
    let reads_files = match table.get("failures") {
        Some(toml::Value::Array(models)) => models
            .iter()
            .any(|m| m.as_table().is_some_and(|t| t.contains_key("file"))),
        _ => false,
    };
    if reads_files {
        return None;
    }
    if let Some(toml::Value::Table(policies)) = table.get_mut("policies") {
        for name in &listed.policies {
            if let Some(policy) = policies.get_mut(name) {
                *policy = toml::Value::Table(toml::Table::new());
            }
        }
    }
    if let Some(toml::Value::Array(entries)) = table.get_mut("background") {
        for (k, entry) in entries.iter_mut().enumerate() {
            let Some(entry) = entry.as_table_mut() else {
                continue;
            };
            if listed.background.contains(&k) {
                entry.insert("policy".to_owned(), toml::Value::Table(toml::Table::new()));
            } else if listed.budgets.contains(&k) {
                if let Some(toml::Value::Table(policy)) = entry.get_mut("policy") {
                    policy.remove("budget");
                }
            }
        }
    }
    let emptied = toml::to_string(&table).ok()?;
    let mut e = Scenario::from_toml_str(&emptied, file).err()?;
    // Positions from the emptied copy mean nothing: find the field in the
    // original (`failures[1].rate` is `failures.1.rate` there).
    let dotted = segments(&e.path)
        .iter()
        .fold(String::new(), |path, k| join_key(&path, k));
    e.position = locate(source, &dotted).map(|s| line_col(source, s.start));
    Some(e)
}
