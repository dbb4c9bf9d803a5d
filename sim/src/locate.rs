//! Finding fields in a TOML document, for error messages that name a line
//! and column.
//!
//! Paths are dotted keys; array elements are numeric segments, so the
//! `probability` of the third `[[failures]]` table is
//! `failures.2.probability`. [`display_path`] writes that as
//! `failures[2].probability` for people.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

type Spanned<T> = toml::Spanned<T>;

/// The byte span of the value at dotted `path` in `source`, or of the
/// deepest enclosing key or value found when the path is only partly there.
pub fn locate(source: &str, path: &str) -> Option<Range<usize>> {
    let (root, _) = DeTable::parse_recoverable(source);
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut found = None;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
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

/// The dotted path of the deepest key whose key or value covers byte
/// `offset` of `source`.
pub fn path_at(source: &str, offset: usize) -> Option<String> {
    fn covers(s: Range<usize>, offset: usize) -> bool {
        s.start <= offset && offset < s.end.max(s.start + 1)
    }
    fn walk_value(v: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<String>) -> bool {
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
            path.push(k.get_ref().to_string());
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

/// `failures.2.probability` as `failures[2].probability`.
pub fn display_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// The 1-based line and column (in characters) of byte `offset`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    reflexio::config::line_col(source, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "seed = 1\n[workload]\ncalls = 5\n[[failures]]\nmodel = \"random\"\n[[failures]]\nmodel = \"outage\"\nclass = \"x\"\n";

    #[test]
    fn locates_inside_arrays_of_tables() {
        let span = locate(DOC, "failures.1.class").unwrap();
        assert_eq!(&DOC[span.clone()], "\"x\"");
        assert_eq!(line_col(DOC, span.start), (8, 9));
        assert_eq!(
            path_at(DOC, span.start).as_deref(),
            Some("failures.1.class")
        );
        let calls = locate(DOC, "workload.calls").unwrap();
        assert_eq!(&DOC[calls], "5");
    }

    #[test]
    fn displays_indices() {
        assert_eq!(display_path("failures.2.rate"), "failures[2].rate");
        assert_eq!(display_path("policies.a.deadline"), "policies.a.deadline");
    }
}
