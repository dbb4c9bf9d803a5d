//! The Markdown summary.

use super::{
    background_rows, budget_rows, failure_headers, failure_row, main_row, spread_row, Report,
    BACKGROUND_HEADERS, BACKGROUND_NOTE, BUDGET_HEADERS, MAIN_HEADERS,
};

/// `text` made safe for a Markdown table cell or a line of text: the
/// characters that would end a cell or start formatting (`\\`, `|`, `` ` ``,
/// `*`, `_`, `[`, `]`, `#`) are escaped with a backslash, `<`, `>` and `&`
/// become HTML entities, and control characters are written as `\u{..}`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in crate::limits::escape_control(text).chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            _ => out.push(c),
        }
    }
    out
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", headers.join(" | "));
    out.push('|');
    for i in 0..headers.len() {
        out.push_str(if i == 0 { " --- |" } else { " ---: |" });
    }
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// The report as Markdown; `plots` names the plot files to link.
pub fn render(report: &Report, scenario_path: Option<&str>, plots: &[String]) -> String {
    let runs = report.runs.len();
    let summary = report.summary();
    // Scenario names are letters, digits, `-`, `_` and `.`: safe in a
    // code span.
    let mut out = format!(
        "# Scenario `{}`\n\n",
        crate::limits::escape_control(&report.scenario)
    );
    if !report.description.is_empty() {
        out.push_str(&report.description);
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "{} calls per policy ({}), seed {}, {} run{}.",
        report.calls,
        report.arrival,
        report.seed,
        runs,
        if runs == 1 { "" } else { "s" }
    ));
    if runs > 1 {
        out.push_str(" Cells show the mean ±standard error over runs.");
    }
    out.push_str("\n\n");
    if let Some(path) = scenario_path {
        let runs_flag = if runs > 1 {
            format!(" --runs {runs}")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "Reproduce with:\n\n```sh\ncargo run --release -p reflexio-sim -- --scenario {path} --seed {}{runs_flag}\n```\n\n",
            report.seed
        ));
    }
    out.push_str(
        "The same report as one self-contained page, plots inline: [report.html](report.html).\n\n",
    );
    let rows: Vec<Vec<String>> = summary.iter().map(|s| main_row(s, runs)).collect();
    out.push_str(&table(&MAIN_HEADERS, &rows));
    if runs > 1 {
        out.push_str("\n## Spread over runs\n\nThe per-run standard deviation of each metric (the standard error above is it divided by the square root of the number of runs).\n\n");
        let rows: Vec<Vec<String>> = summary.iter().map(spread_row).collect();
        out.push_str(&table(&MAIN_HEADERS, &rows));
    }
    out.push_str("\n## Failed calls by stop reason\n\n");
    let rows: Vec<Vec<String>> = summary.iter().map(|s| failure_row(s, runs)).collect();
    out.push_str(&table(&failure_headers(report), &rows));
    let background = background_rows(report);
    if !background.is_empty() {
        out.push_str("\n## Background traffic\n\n");
        out.push_str(BACKGROUND_NOTE);
        if runs > 1 {
            out.push_str(" Cells show the mean over runs.");
        }
        out.push_str("\n\n");
        out.push_str(&table(&BACKGROUND_HEADERS, &background));
    }
    let budgets = budget_rows(report, &summary);
    if !budgets.is_empty() {
        out.push_str("\n## Retry budgets\n\nEach budget is shared by all its policy's calls and starts fresh for each run. A refused retry ends its call (`budget_exhausted`); the refused share is of the retries the policy would have made.\n\n");
        out.push_str(&table(&BUDGET_HEADERS, &budgets));
    }
    out.push_str("\n## Envelope violations\n\n");
    let violations = report.violations();
    if violations == 0 {
        out.push_str("None.\n");
    } else {
        out.push_str(&format!("{violations} violations:\n\n"));
        for (run, policy, background, v) in report.violation_entries() {
            let whose = background.map_or(String::new(), |b| format!(", background {}", escape(b)));
            out.push_str(&format!(
                "- run {run} policy {}{whose}: {}\n",
                escape(policy),
                escape(&v.to_string())
            ));
        }
    }
    if !plots.is_empty() {
        out.push_str("\n## Plots\n\n");
        if runs > 1 {
            out.push_str("Plots show run 0.\n\n");
        }
        for p in plots {
            out.push_str(&format!("![{p}]({p})\n\n"));
        }
    }
    out
}
