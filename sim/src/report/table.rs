//! The aligned terminal table.

use super::{
    budget_rows, failure_headers, failure_row, main_row, spread_row, Report, BUDGET_HEADERS,
    MAIN_HEADERS,
};

/// Aligns `rows` under `headers`: text left, numbers right.
pub fn align(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(crate::limits::escape_control(cell).chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut parts = Vec::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                parts.push(format!("{cell}{}", " ".repeat(pad)));
            } else {
                parts.push(format!("{}{cell}", " ".repeat(pad)));
            }
        }
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(rule.iter().map(String::as_str).collect(), &mut out);
    // Names reach the terminal: no raw control character may.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| crate::limits::escape_control(c)).collect())
        .collect();
    for row in &rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// The report as terminal text.
pub fn render(report: &Report) -> String {
    let runs = report.runs.len();
    let summary = report.summary();
    let mut out = format!(
        "scenario {} · seed {} · {} calls ({}) · {} run{}{}\n\n",
        crate::limits::escape_control(&report.scenario),
        report.seed,
        report.calls,
        report.arrival,
        runs,
        if runs == 1 { "" } else { "s" },
        if runs > 1 {
            " · mean ±standard error"
        } else {
            ""
        }
    );
    let rows: Vec<Vec<String>> = summary.iter().map(|s| main_row(s, runs)).collect();
    out.push_str(&align(&MAIN_HEADERS, &rows));
    if runs > 1 {
        out.push_str("\nper-run standard deviation\n");
        let rows: Vec<Vec<String>> = summary.iter().map(spread_row).collect();
        out.push_str(&align(&MAIN_HEADERS, &rows));
    }
    out.push_str("\nfailed calls by stop reason\n");
    let rows: Vec<Vec<String>> = summary.iter().map(|s| failure_row(s, runs)).collect();
    out.push_str(&align(&failure_headers(report), &rows));
    let background = super::background_rows(report);
    if !background.is_empty() {
        out.push_str("\nbackground traffic (beside each policy's calls)\n");
        out.push_str(&align(&super::BACKGROUND_HEADERS, &background));
    }
    let budgets = budget_rows(report, &summary);
    if !budgets.is_empty() {
        out.push_str("\nretry budgets\n");
        out.push_str(&align(&BUDGET_HEADERS, &budgets));
    }
    let violations = report.violations();
    if violations == 0 {
        out.push_str("\nno envelope violations\n");
    } else {
        out.push_str(&format!("\n{violations} ENVELOPE VIOLATIONS\n"));
        for (run, policy, background, v) in report.violation_entries() {
            let whose = background.map_or(String::new(), |b| {
                format!(", background {}", crate::limits::escape_control(b))
            });
            out.push_str(&format!(
                "  run {run} policy {}{whose}: {}\n",
                crate::limits::escape_control(policy),
                crate::limits::escape_control(&v.to_string())
            ));
        }
    }
    out
}
