//! A self-contained HTML report: one file to share or attach to a review.
//!
//! It holds the scenario's description and the notes at the top of its
//! file (the story, the policies, what the scenario teaches), the command
//! and seed that reproduce it, the tables, any envelope violation, and the
//! plots inline as SVG (their text drawn as glyph outlines). It needs no
//! network, no font and no JavaScript, and it is well-formed XML as well
//! as HTML, so that tests can parse it.

use std::fmt::Write as _;

use super::{
    background_rows, budget_rows, failure_headers, failure_row, main_row, plots, Report,
    BUDGET_HEADERS, MAIN_HEADERS,
};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text with `code spans` in backticks, escaped, the spans as `<code>`.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// The comment block at the top of a scenario file, without its `#`
/// marks: the scenario's story and lessons, as its author wrote them.
pub fn leading_comments(source: &str) -> String {
    let mut lines = Vec::new();
    for line in source.lines() {
        let trimmed = line.trim_start();
        match trimmed.strip_prefix('#') {
            Some(rest) => lines.push(rest.strip_prefix(' ').unwrap_or(rest).to_owned()),
            None => break,
        }
    }
    lines.join("\n").trim().to_owned()
}

/// Notes (see [`leading_comments`]) as HTML: paragraphs separated by
/// blank lines, `* ` items as a list. The first line (the title) and a
/// `Run it:` paragraph (the report has its own command) are left out.
fn notes_html(notes: &str) -> String {
    let mut out = String::new();
    let mut paragraphs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in notes.lines().skip(1) {
        if line.trim().is_empty() {
            paragraphs.push(Vec::new());
        } else if let Some(last) = paragraphs.last_mut() {
            last.push(line);
        }
    }
    for para in paragraphs.iter().filter(|p| !p.is_empty()) {
        if para[0].starts_with("Run it:") {
            continue;
        }
        // Items start with `* `; their continuation lines are indented.
        let mut text = String::new();
        let mut items: Vec<String> = Vec::new();
        for line in para {
            if let Some(item) = line.strip_prefix("* ") {
                items.push(item.trim().to_owned());
            } else if let Some(last) = items.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            } else {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(line.trim());
            }
        }
        if !text.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(&text));
        }
        if !items.is_empty() {
            out.push_str("<ul>\n");
            for item in items {
                let _ = writeln!(out, "<li>{}</li>", inline(&item));
            }
            out.push_str("</ul>\n");
        }
    }
    out
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for (i, h) in headers.iter().enumerate() {
        let class = if i == 0 { "" } else { " class=\"num\"" };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "<th scope=\"row\">{}</th>", escape(cell));
            } else {
                let _ = write!(out, "<td class=\"num\">{}</td>", escape(cell));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
max-width:1180px;margin:2em auto;padding:0 1em;color:#1a1a1a;line-height:1.45}\
h1{font-size:1.7em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}\
.lede{font-size:1.08em}.facts{color:#444}\
pre{background:#f4f4f4;padding:.7em 1em;overflow-x:auto;border-radius:4px}\
code{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:.92em}\
table{border-collapse:collapse;font-size:.86em;margin:.6em 0;display:block;overflow-x:auto}\
th,td{padding:.3em .6em;border-bottom:1px solid #e2e2e2;white-space:nowrap}\
thead th{border-bottom:2px solid #888;text-align:left;vertical-align:bottom;white-space:normal}.num{text-align:right;font-variant-numeric:tabular-nums}\
tbody th{text-align:left;font-weight:600}\
figure{margin:1.2em 0}figure svg{max-width:100%;height:auto;display:block}\
figcaption{color:#555;font-size:.9em}.ok{color:#0a6b3b;font-weight:600}.bad{color:#b00020;font-weight:600}";

/// The report as one HTML page. `scenario_path` gives the reproduce
/// command; `notes` are the scenario file's leading comments
/// ([`leading_comments`]); `with_plots` puts the plots in, inline.
pub fn render(
    report: &Report,
    scenario_path: Option<&str>,
    notes: &str,
    with_plots: bool,
) -> Result<String, String> {
    let svgs = if with_plots {
        (0..plots::PLOTS.len())
            .map(|which| plots::svg(report, which))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    Ok(render_with_plots(report, scenario_path, notes, &svgs))
}

/// [`render`] with the plots already drawn: `svgs[i]` is
/// [`plots::svg`]`(report, i)`, one for each of [`plots::PLOTS`], or none
/// for a page without plots.
pub fn render_with_plots(
    report: &Report,
    scenario_path: Option<&str>,
    notes: &str,
    svgs: &[String],
) -> String {
    let runs = report.runs.len();
    let summary = report.summary();
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(
        out,
        "<title>reflexio-sim: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&report.scenario)
    );
    let _ = writeln!(
        out,
        "<h1>Scenario <code>{}</code></h1>",
        escape(&report.scenario)
    );
    if !report.description.is_empty() {
        let _ = writeln!(out, "<p class=\"lede\">{}</p>", inline(&report.description));
    }
    let _ = writeln!(
        out,
        "<p class=\"facts\">{} calls per policy ({}), seed <strong>{}</strong>, {} run{}.{}</p>",
        report.calls,
        escape(&report.arrival),
        report.seed,
        runs,
        if runs == 1 { "" } else { "s" },
        if runs > 1 {
            " Cells show the mean ±standard error over runs; plots show run 0."
        } else {
            ""
        }
    );
    if let Some(path) = scenario_path {
        let runs_flag = if runs > 1 {
            format!(" --runs {runs}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<h2>Reproduce</h2>\n<pre><code>cargo run --release -p reflexio-sim -- --scenario {} --seed {}{runs_flag}</code></pre>\n<p>The same scenario and seed give byte-identical reports on every machine.</p>",
            escape(path),
            report.seed
        );
    }
    let notes = notes_html(notes);
    if !notes.is_empty() {
        out.push_str("<h2>The scenario and what it teaches</h2>\n");
        out.push_str(&notes);
    }
    out.push_str("<h2>Results</h2>\n");
    let rows: Vec<Vec<String>> = summary.iter().map(|s| main_row(s, runs)).collect();
    out.push_str(&table(&MAIN_HEADERS, &rows));
    out.push_str("<h2>Failed calls by stop reason</h2>\n");
    let rows: Vec<Vec<String>> = summary.iter().map(|s| failure_row(s, runs)).collect();
    out.push_str(&table(&failure_headers(report), &rows));
    let background = background_rows(report);
    if !background.is_empty() {
        out.push_str(&format!(
            "<h2>Background traffic</h2>\n<p>{}{}</p>\n",
            escape(super::BACKGROUND_NOTE),
            if runs > 1 {
                " Cells show the mean over runs."
            } else {
                ""
            }
        ));
        out.push_str(&table(&super::BACKGROUND_HEADERS, &background));
    }
    let budgets = budget_rows(report, &summary);
    if !budgets.is_empty() {
        out.push_str("<h2>Retry budgets</h2>\n<p>Each budget is shared by all its policy&#39;s calls and starts fresh for each run. A refused retry ends its call (<code>budget_exhausted</code>); the refused share is of the retries the policy would have made.</p>\n");
        out.push_str(&table(&BUDGET_HEADERS, &budgets));
    }
    out.push_str("<h2>Envelope violations</h2>\n");
    let violations = report.violations();
    if violations == 0 {
        out.push_str("<p class=\"ok\">None: every policy stayed within its envelope.</p>\n");
    } else {
        let _ = writeln!(out, "<p class=\"bad\">{violations} violations:</p>\n<ul>");
        for (run, policy, background, v) in report.violation_entries() {
            let whose = background.map_or(String::new(), |b| {
                format!(", background <code>{}</code>", escape(b))
            });
            let _ = writeln!(
                out,
                "<li>run {run} policy <code>{}</code>{whose}: {}</li>",
                escape(policy),
                escape(&v.to_string())
            );
        }
        out.push_str("</ul>\n");
    }
    if !svgs.is_empty() {
        out.push_str("<h2>Plots</h2>\n");
        for ((stem, title), svg) in plots::PLOTS.iter().zip(svgs) {
            let _ = writeln!(
                out,
                "<figure id=\"{stem}\">\n{}\n<figcaption>{} ({stem}.svg)</figcaption>\n</figure>",
                svg.trim(),
                escape(title)
            );
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_become_paragraphs_and_lists() {
        let source = "# t: title\n#\n# The story. A `x`\n# goes on.\n#\n# * one\n#   more\n# * two\n#\n# Run it: cargo run\n\nname = \"t\"\n";
        let notes = leading_comments(source);
        let html = notes_html(&notes);
        assert_eq!(
            html,
            "<p>The story. A <code>x</code> goes on.</p>\n<ul>\n<li>one more</li>\n<li>two</li>\n</ul>\n"
        );
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
