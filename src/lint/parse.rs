//! Linting TOML text: every bad field, each with its position.
//!
//! The document is parsed into a spanned tree first (recovering from
//! syntax errors where TOML allows). Then the policy is deserialised; each
//! time a field fails, the failure is recorded and the field taken out, and
//! deserialisation runs again on the rest, so one bad value does not hide
//! the next. What deserialises is then validated field by field, with the
//! same checks as [`RetryConfig::validate`], and, when nothing is wrong,
//! checked against the warning rules.

use serde::Deserialize;
use toml::de::{DeTable, DeValue, Deserializer};
use toml::Spanned;

use super::{warnings, Diagnostic, Origins, Severity, INVALID, REFUSED, SYNTAX};
use crate::class::ErrorClass;
use crate::config::{path_at, RetryConfig};

/// The result of linting a policy's text.
///
/// `#[non_exhaustive]`: only the lint creates it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LintReport {
    /// The policy, as far as it could be read: fields that failed to
    /// parse are left at their defaults. `None` when nothing could be read.
    pub config: Option<RetryConfig>,
    /// Every error and warning, each with its path and span.
    pub diagnostics: Vec<Diagnostic>,
}

impl LintReport {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Lints a policy document in the [`RetryConfig`] schema.
pub fn lint_toml(source: &str) -> LintReport {
    lint_toml_table(source, "")
}

/// Lints the policy in the table at dotted path `table` of a larger TOML
/// document (`policies.tuned` of a scenario file, say; `""` for the whole
/// document). A segment that is a number indexes an array:
/// `background.0.policy` is the `policy` table of the first
/// `[[background]]` table. Paths in the diagnostics are full paths in the
/// document, and spans are byte ranges of `source`.
pub fn lint_toml_table(source: &str, table: &str) -> LintReport {
    let (root, syntax) = DeTable::parse_recoverable(source);
    lint_parsed(source, &root, &syntax, table)
}

/// [`lint_toml_table`] for several tables of one document, parsed once
/// for all of them (a document is not parsed again for each table, as
/// calling [`lint_toml_table`] for each would): one report per table, in
/// the order of `tables`.
///
/// ```
/// let source = "[policies.a]\nmax_attempts = 0\n[policies.b]\nmax_attempts = 3\n";
/// let reports = reflexio::lint::lint_toml_tables(source, &["policies.a", "policies.b"]);
/// assert!(reports[0].has_errors());
/// assert!(!reports[1].has_errors());
/// ```
pub fn lint_toml_tables(source: &str, tables: &[&str]) -> Vec<LintReport> {
    let (root, syntax) = DeTable::parse_recoverable(source);
    tables
        .iter()
        .map(|table| lint_parsed(source, &root, &syntax, table))
        .collect()
}

fn lint_parsed<'i>(
    source: &'i str,
    root: &Spanned<DeTable<'i>>,
    syntax: &[toml::de::Error],
    table: &str,
) -> LintReport {
    let mut diagnostics = Vec::new();
    let locate = |path: &str| locate_in(root.get_ref(), path);
    // The field on a line that does not parse is not trusted.
    let mut broken: Vec<String> = Vec::new();
    for e in syntax {
        let span = e.span();
        let path = span
            .as_ref()
            .and_then(|s| {
                let line_start = source[..s.start.min(source.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                path_at(source, s.start).or_else(|| path_at(source, line_start))
            })
            .unwrap_or_default();
        if !path.is_empty() {
            broken.push(path.clone());
        }
        diagnostics.push(Diagnostic {
            severity: Severity::Error,
            code: SYNTAX,
            path,
            message: e.message().trim().to_owned(),
            span,
        });
    }
    let Some(mut tree) = subtable(root, table) else {
        diagnostics.push(Diagnostic {
            severity: Severity::Error,
            code: INVALID,
            path: table.to_owned(),
            message: "expected a table in the RetryConfig schema".to_owned(),
            span: locate(table),
        });
        return LintReport {
            config: None,
            diagnostics,
        };
    };
    let full = |path: &str| match (table.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => table.to_owned(),
        (false, false) => format!("{table}.{path}"),
    };

    // Deserialise; take each failing field out and try again.
    let mut removed: Vec<String> = Vec::new();
    for path in broken {
        if let Some(rel) = relative_to(&path, table).filter(|r| !r.is_empty()) {
            if remove(&mut tree, &rel) {
                removed.push(rel);
            }
        }
    }
    let mut config = None;
    for _ in 0..256 {
        match RetryConfig::deserialize(Deserializer::from(tree.clone())) {
            Ok(c) => {
                config = Some(c);
                break;
            }
            Err(e) => {
                let span = e.span();
                let path = span
                    .as_ref()
                    .and_then(|s| path_at(source, s.start))
                    .unwrap_or_default();
                let relative = relative_to(&path, table);
                let path_shown = if relative.is_some() {
                    path.clone()
                } else {
                    table.to_owned()
                };
                let message = crate::config::toml_words(e.message().trim());
                diagnostics.push(Diagnostic {
                    severity: Severity::Error,
                    code: INVALID,
                    message: crate::config::with_kinds(&path_shown, message),
                    path: path_shown,
                    span,
                });
                match relative {
                    Some(rel) if !rel.is_empty() && remove(&mut tree, &rel) => removed.push(rel),
                    _ => break,
                }
            }
        }
    }
    let Some(config) = config else {
        return LintReport {
            config: None,
            diagnostics,
        };
    };

    // Validate field by field, so that each bad value is reported.
    // A strategy's base is checked against its max: with one of them
    // unreadable, the other is compared with a default and the result
    // means nothing.
    let bound = |p: &str| p.ends_with(".base") || p.ends_with(".max") || p == "base" || p == "max";
    let cascades = |path: &str| {
        removed.iter().any(|r| {
            path == r
                || path.starts_with(&format!("{r}."))
                || (parent(r) == parent(path) && bound(r) && bound(path))
        })
    };
    let mut refused: Vec<(String, String)> = Vec::new();
    for piece in pieces(tree.get_ref()) {
        let Ok(part) = RetryConfig::deserialize(Deserializer::from(piece)) else {
            continue;
        };
        if let Err(e) = part.validate() {
            if !cascades(&e.path) && !refused.contains(&(e.path.clone(), e.message.clone())) {
                refused.push((e.path, e.message));
            }
        }
    }
    if refused.is_empty() && removed.is_empty() {
        // Checks that span several fields, if any, see the whole policy.
        if let Err(e) = config.validate() {
            refused.push((e.path, e.message));
        }
    }
    for (path, message) in refused {
        let path = full(&path);
        diagnostics.push(Diagnostic {
            severity: Severity::Error,
            code: REFUSED,
            span: locate(&path),
            path,
            message,
        });
    }

    if diagnostics.is_empty() {
        if let Ok(engine) = config.engine() {
            for mut d in warnings(&engine, &origins(&config)) {
                if config.allow.iter().any(|c| c == d.code) {
                    continue;
                }
                d.path = full(&d.path);
                d.span = locate(&d.path);
                diagnostics.push(d);
            }
        }
    }
    diagnostics.sort_by_key(|d| (d.span.as_ref().map_or(usize::MAX, |s| s.start), d.severity));
    LintReport {
        config: Some(config),
        diagnostics,
    }
}

impl RetryConfig {
    /// Every error and every warning of this configuration; see the
    /// [`lint`](crate::lint) module. Diagnostics have paths but no spans;
    /// [`lint_toml`] lints text with positions.
    ///
    /// ```
    /// use reflexio::RetryConfig;
    ///
    /// let config = RetryConfig {
    ///     max_attempts: Some(0),
    ///     max_unknown_attempts: Some(Some(0)),
    ///     ..RetryConfig::default()
    /// };
    /// let paths: Vec<String> = config.lint().into_iter().map(|d| d.path).collect();
    /// assert_eq!(paths, ["max_attempts", "max_unknown_attempts"]);
    /// ```
    pub fn lint(&self) -> Vec<crate::lint::Diagnostic> {
        let mut diagnostics = lint_toml(&self.to_toml_string()).diagnostics;
        for d in &mut diagnostics {
            d.span = None;
        }
        diagnostics
    }
}

/// Where each of a configuration's settings comes from.
fn origins(config: &RetryConfig) -> Origins {
    let own = |c: ErrorClass| {
        config
            .classes
            .get(c.name())
            .is_some_and(|t| t.strategy.is_some())
    };
    Origins {
        strategy_path: ErrorClass::ALL.map(|c| {
            if own(c) {
                format!("classes.{c}.strategy")
            } else {
                "strategy".to_owned()
            }
        }),
        own_strategy: ErrorClass::ALL.map(|c| Some(own(c))),
        unknown_cap_explicit: matches!(config.max_unknown_attempts, Some(Some(_))),
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(p, _)| p)
}

/// `path` relative to `table`, if it lies inside it.
fn relative_to(path: &str, table: &str) -> Option<String> {
    if table.is_empty() {
        return Some(path.to_owned());
    }
    if path == table {
        return Some(String::new());
    }
    path.strip_prefix(table)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(str::to_owned)
}

/// The table at dotted `path` of `root`. A segment that is a number
/// steps into an array (`background.0.policy`: the policy of the first
/// `[[background]]` table).
fn subtable<'i>(root: &Spanned<DeTable<'i>>, path: &str) -> Option<Spanned<DeTable<'i>>> {
    let keys = crate::config::split_path(path);
    let Some((first, rest)) = keys.split_first() else {
        return Some(root.clone());
    };
    let (_, mut current) = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == first)?;
    for key in rest {
        current = match current.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == key)
                .map(|(_, v)| v)?,
            DeValue::Array(items) => items.get(array_index(key)?)?,
            _ => return None,
        };
    }
    match current.get_ref() {
        DeValue::Table(t) => Some(Spanned::new(current.span(), t.clone())),
        _ => None,
    }
}

/// Takes the field at dotted `path` out of `tree`; false if it is not there.
fn remove(tree: &mut Spanned<DeTable<'_>>, path: &str) -> bool {
    let keys: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = keys.split_last() else {
        return false;
    };
    let mut table = tree.get_mut();
    for key in parents {
        let next = table
            .iter_mut()
            .find(|(k, _)| k.get_ref().as_ref() == *key)
            .map(|(_, v)| v.get_mut());
        match next {
            Some(DeValue::Table(t)) => table = t,
            _ => return false,
        }
    }
    let key = Spanned::new(0..0, std::borrow::Cow::Owned((*last).to_owned()));
    table.remove(&key).is_some()
}

/// One small document per field (per field of each class table), so that
/// validating each reports its own first error.
fn pieces<'i>(tree: &DeTable<'i>) -> Vec<Spanned<DeTable<'i>>> {
    let wrap = |key: &Spanned<std::borrow::Cow<'i, str>>, value: Spanned<DeValue<'i>>| {
        let span = value.span();
        let mut t = DeTable::new();
        t.insert(key.clone(), value);
        Spanned::new(span, t)
    };
    let mut out = Vec::new();
    for (key, value) in tree.iter() {
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("classes", DeValue::Table(classes)) => {
                for (name, class) in classes.iter() {
                    let fields: Vec<Spanned<DeValue<'i>>> = match class.get_ref() {
                        DeValue::Table(t) if !t.is_empty() => t
                            .iter()
                            .map(|(k, v)| {
                                let one = wrap(k, v.clone());
                                Spanned::new(v.span(), DeValue::Table(one.into_inner()))
                            })
                            .collect(),
                        _ => vec![class.clone()],
                    };
                    for field in fields {
                        let one = wrap(name, field);
                        let span = one.span();
                        out.push(wrap(
                            key,
                            Spanned::new(span, DeValue::Table(one.into_inner())),
                        ));
                    }
                }
            }
            _ => out.push(wrap(key, value.clone())),
        }
    }
    out
}

/// A path segment as an array index: digits only (`+1` is a key).
fn array_index(segment: &str) -> Option<usize> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

/// The span of the value at dotted `path` (of its key when the value has
/// none, as `[table]` headers may not), or of the deepest part found. A
/// segment that is a number steps into an array.
fn locate_in(root: &DeTable<'_>, path: &str) -> Option<std::ops::Range<usize>> {
    let mut table = Some(root);
    let mut items: Option<&toml::de::DeArray<'_>> = None;
    let mut found = None;
    for key in crate::config::split_path(path) {
        let value = if let Some(t) = table {
            let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
                break;
            };
            found = Some(if v.span().is_empty() {
                k.span()
            } else {
                v.span()
            });
            v
        } else if let Some(list) = items {
            let Some(item) = array_index(&key).and_then(|i| list.get(i)) else {
                break;
            };
            if !item.span().is_empty() {
                found = Some(item.span());
            }
            item
        } else {
            break;
        };
        (table, items) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(list) => (None, Some(list)),
            _ => (None, None),
        };
    }
    found
}
