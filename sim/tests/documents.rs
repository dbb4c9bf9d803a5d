//! Every SVG and HTML output is well-formed XML (parsed by a real XML
//! parser), the HTML report is self-contained, and the reference reports
//! under reports/ have one folder per bundled scenario, each with its
//! report.html.

use std::path::{Path, PathBuf};

use reflexio_sim::report::{html, plots};
use reflexio_sim::Scenario;

fn parse(name: &str, text: &str) {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    if let Err(e) = roxmltree::Document::parse_with_options(text, options) {
        panic!("{name} is not well-formed XML: {e}");
    }
}

/// No script, no stylesheet or image from elsewhere, no font to fetch.
fn assert_self_contained(name: &str, text: &str) {
    let lower = text.to_lowercase();
    for needle in [
        "<script",
        "javascript:",
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "<link",
        "<iframe",
        "<text",
    ] {
        assert!(!lower.contains(needle), "{name} contains `{needle}`");
    }
}

const SCENARIO: &str = r#"
name = "doc-check"
description = "Names with <markup> & \"quotes\" must be escaped."
seed = 9
[workload]
calls = 300
arrival = "fixed_rate"
rate = 100.0
[[failures]]
model = "outage"
start = "1s"
end = "2s"
[[failures]]
model = "rate_limit"
rate = 80.0
[policies."a<b"]
max_attempts = 2
[policies."c&d"]
"#;

#[test]
fn fresh_svg_and_html_parse_as_xml() {
    let scenario = Scenario::from_toml_str(SCENARIO, "doc.toml").unwrap();
    let report = reflexio_sim::run(&scenario, scenario.seed).unwrap();
    for (which, (stem, _)) in plots::PLOTS.iter().enumerate() {
        let svg = plots::svg(&report, which).unwrap();
        parse(stem, &svg);
        assert_self_contained(stem, &svg);
    }
    let page = html::render(
        &report,
        Some("doc.toml"),
        "# t\n#\n# A <note> & more\n",
        true,
    )
    .unwrap();
    parse("report.html", &page);
    assert_self_contained("report.html", &page);
    assert!(
        page.contains("--seed 9"),
        "the page shows the reproduce command"
    );
    assert!(page.contains("A &lt;note&gt; &amp; more"));
    // Four inline plots.
    assert_eq!(page.matches("<svg").count(), plots::PLOTS.len());
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_bundled_scenario_has_a_parsable_reference_report() {
    let mut scenarios: Vec<String> = std::fs::read_dir(repo().join("sim/scenarios"))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "toml").then_some(path)
        })
        .map(|path| {
            Scenario::from_file(&path)
                .unwrap_or_else(|e| panic!("{e}"))
                .name
        })
        .collect();
    scenarios.sort();
    assert!(!scenarios.is_empty());
    let mut checked = 0;
    for name in &scenarios {
        let dir = repo().join("reports").join(name);
        let page = dir.join("report.html");
        assert!(page.exists(), "{} is missing", page.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "svg" || ext == "html" {
                let text = std::fs::read_to_string(&path).unwrap();
                parse(&path.display().to_string(), &text);
                assert_self_contained(&path.display().to_string(), &text);
                checked += 1;
            }
        }
    }
    assert!(checked >= scenarios.len() * 5, "{checked} files checked");
}
