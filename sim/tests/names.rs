//! Names reach reports safely: control characters are refused at parse
//! time, every SVG is well-formed XML whatever the names hold, Markdown
//! table cells escape what would end or format them, and the terminal
//! table never prints a raw control character.

use reflexio_sim::report::{markdown, plots, table};
use reflexio_sim::Scenario;

/// Policy names that are special in Markdown, XML or both.
const NASTY: [&str; 4] = ["a|b", "<b>&amp;\"'", "x*y_z`[k](l)\\", "naïve → ✓"];

/// `name` as a quoted TOML key.
fn toml_key(name: &str) -> String {
    let mut key = String::from("\"");
    for c in name.chars() {
        match c {
            '"' => key.push_str("\\\""),
            '\\' => key.push_str("\\\\"),
            c if c.is_control() => key.push_str(&format!("\\u{:04X}", c as u32)),
            c => key.push(c),
        }
    }
    key.push('"');
    key
}

fn scenario_with(names: &[&str]) -> String {
    let mut source = String::from(
        "name = \"names\"\n[workload]\ncalls = 50\narrival = \"fixed_rate\"\nrate = 50.0\n[[failures]]\nmodel = \"random\"\nprobability = 0.4\nclasses = { transient = 1.0 }\n",
    );
    for (i, name) in names.iter().enumerate() {
        let key = toml_key(name);
        source.push_str(&format!("[policies.{key}]\nmax_attempts = {}\n", i + 2));
    }
    source
}

#[test]
fn control_characters_in_names_are_refused_with_a_position() {
    for (name, shown) in [
        ("a\u{1b}b", "a\\u{1b}b"),
        ("tab\there", "tab\\u{9}here"),
        ("del\u{7f}", "del\\u{7f}"),
        ("c1\u{9b}2J", "c1\\u{9b}2J"),
    ] {
        let source = scenario_with(&[name]);
        let e = Scenario::from_toml_str(&source, "names.toml")
            .expect_err("a control character in a name")
            .to_string();
        assert!(e.starts_with("names.toml:10:"), "{e}");
        assert!(e.contains(shown), "{e}");
        assert!(e.contains("control character"), "{e}");
        assert!(!e.chars().any(char::is_control), "raw control in: {e:?}");
    }
    let e = Scenario::from_toml_str(
        "[workload]\ncalls = 1\noperation = \"get\\u001b[2J\"\n[policies.p]\n",
        "op.toml",
    )
    .expect_err("a control character in the operation")
    .to_string();
    assert!(e.starts_with("op.toml:3:13: `workload.operation`"), "{e}");
    let e = Scenario::from_toml_str(
        "description = \"line one\\nline two\\u0007\"\n[workload]\ncalls = 1\n[policies.p]\n",
        "desc.toml",
    )
    .expect_err("a bell in the description")
    .to_string();
    assert!(e.starts_with("desc.toml:1:15: `description`"), "{e}");
    assert!(Scenario::from_toml_str(
        "description = \"line one\\nline two\\twith a tab\"\n[workload]\ncalls = 1\n[policies.p]\n",
        "desc.toml",
    )
    .is_ok());
    // An override would reorder the report's text after it; a mark is
    // prose.
    for c in ["202E", "2066", "202A"] {
        let e = Scenario::from_toml_str(
            &format!("description = \"abc\\u{c}def\"\n[workload]\ncalls = 1\n[policies.p]\n"),
            "desc.toml",
        )
        .expect_err("a bidirectional override in the description")
        .to_string();
        assert!(e.starts_with("desc.toml:1:15: `description`"), "{e}");
        assert!(e.contains(&format!("U+{c}")), "{e}");
    }
    assert!(Scenario::from_toml_str(
        "description = \"abc\\u200Fdef\"\n[workload]\ncalls = 1\n[policies.p]\n",
        "desc.toml",
    )
    .is_ok());
}

#[test]
fn a_scenario_name_says_why_it_cannot_name_a_folder() {
    // Every character of `.hidden` is allowed; the leading dot is not (a
    // hidden folder, and `.` or `..` would leave the reports folder).
    for name in [".hidden", ".", ".."] {
        let source = format!("name = \"{name}\"\n[workload]\ncalls = 1\n[policies.p]\n");
        let e = Scenario::from_toml_str(&source, "dot.toml")
            .expect_err("a name starting with a dot")
            .to_string();
        assert!(e.starts_with("dot.toml:1:8: `name`"), "{e}");
        assert!(e.contains("not starting with `.`"), "{e}");
    }
    for name in ["rate-limit", "v1.2_b"] {
        let source = format!("name = \"{name}\"\n[workload]\ncalls = 1\n[policies.p]\n");
        assert_eq!(
            Scenario::from_toml_str(&source, "ok.toml").unwrap().name,
            name
        );
    }
}

#[test]
fn blank_names_and_bidirectional_formatting_are_refused() {
    // An override reverses everything printed after it on its line; a
    // blank name leaves an empty cell.
    for (name, shown) in [
        ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
        ("iso\u{2067}late", "iso\\u{2067}late"),
        ("mark\u{200f}", "mark\\u{200f}"),
    ] {
        let source = scenario_with(&[name]);
        let e = Scenario::from_toml_str(&source, "names.toml")
            .expect_err("a bidirectional formatting character in a name")
            .to_string();
        assert!(e.starts_with("names.toml:10:"), "{e}");
        assert!(e.contains(shown), "{e}");
        assert!(e.contains("bidirectional formatting"), "{e}");
        assert!(!e.contains(name), "raw formatting character in: {e:?}");
    }
    let e = Scenario::from_toml_str(&scenario_with(&["   "]), "names.toml")
        .expect_err("a blank policy name")
        .to_string();
    assert!(e.starts_with("names.toml:10:"), "{e}");
    assert!(e.contains("blank"), "{e}");
    let background = |name: &str| {
        format!(
            "[workload]\ncalls = 1\n[[background]]\nname = \"{name}\"\ncalls = 1\n[policies.p]\n"
        )
    };
    for name in ["   ", "rtl\\u202eltr"] {
        let e = Scenario::from_toml_str(&background(name), "bg.toml")
            .expect_err("a blank or reordering background name")
            .to_string();
        assert!(e.starts_with("bg.toml:4:"), "{e}");
        assert!(e.contains("`background[0].name`"), "{e}");
    }
    assert!(Scenario::from_toml_str(&background("a b"), "bg.toml").is_ok());
}

#[test]
fn the_command_line_never_prints_a_raw_control_character() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("esc.toml");
    std::fs::write(&file, scenario_with(&["clear\u{1b}[2J\u{1b}[H"])).unwrap();
    let args = ["reflexio-sim", "--scenario", file.to_str().unwrap()];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = reflexio_sim::cli::main_with(args.map(Into::into), &mut out, &mut err, false);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("clear\\u{1b}[2J"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checks that `svg` is well-formed XML, and returns its text content.
fn parse_svg(svg: &str, what: &str) -> String {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{what}");
    doc.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_plot_is_well_formed_xml_whatever_the_names() {
    let scenario = Scenario::from_toml_str(&scenario_with(&NASTY), "names.toml").unwrap();
    let report = reflexio_sim::run(&scenario, 1).unwrap();
    for (which, (stem, _)) in plots::PLOTS.iter().enumerate() {
        let svg = plots::svg(&report, which).unwrap();
        let text = parse_svg(&svg, stem);
        // The names come back out of the XML as they went in.
        if *stem != "attempts" {
            for name in NASTY {
                assert!(text.contains(name), "{stem}: `{name}` missing from {text}");
            }
        }
    }
}

#[test]
fn a_report_built_by_hand_with_control_characters_stays_safe() {
    // The library API can rename a policy after validation: the outputs
    // still neither break XML nor print raw control characters.
    let mut scenario = Scenario::from_toml_str(&scenario_with(&["p"]), "names.toml").unwrap();
    scenario.policies[0].name = "bell\u{7}\u{1b}[2J".to_owned();
    let report = reflexio_sim::run(&scenario, 1).unwrap();
    for (which, (stem, _)) in plots::PLOTS.iter().enumerate() {
        parse_svg(&plots::svg(&report, which).unwrap(), stem);
    }
    let text = table::render(&report);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    let md = markdown::render(&report, None, &[]);
    assert!(!md.contains('\u{1b}') && !md.contains('\u{7}'), "{md:?}");
}

/// The cells of a Markdown table row, split at pipes that are not escaped.
fn cells(row: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = row.trim().trim_start_matches('|').chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cell.push(c);
                if let Some(next) = chars.next() {
                    cell.push(next);
                }
            }
            '|' => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    cells
}

#[test]
fn markdown_tables_escape_names() {
    let scenario = Scenario::from_toml_str(&scenario_with(&NASTY), "names.toml").unwrap();
    let report = reflexio_sim::run(&scenario, 1).unwrap();
    let md = markdown::render(&report, None, &[]);
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    let header = cells(rows[0]).len();
    for row in &rows {
        // Every row of the first table has the header's cell count; the
        // second table's rows are checked against its own header below.
        let n = cells(row).len();
        assert!(n == header || n == 6, "{n} cells in {row}");
    }
    for name in NASTY {
        let escaped = markdown::escape(name);
        assert_eq!(
            md.matches(&format!("| {escaped} |")).count(),
            2,
            "`{escaped}` in both tables:\n{md}"
        );
    }
    assert_eq!(markdown::escape("a|b"), "a\\|b");
    assert_eq!(markdown::escape("x*y_z`"), "x\\*y\\_z\\`");
    assert_eq!(markdown::escape("<b>&"), "&lt;b&gt;&amp;");
    assert_eq!(markdown::escape("library-default"), "library-default");
}

#[test]
fn the_committed_plots_are_well_formed_xml() {
    let reports = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports");
    let mut seen = 0;
    for entry in std::fs::read_dir(&reports).unwrap() {
        let path = entry.unwrap().path();
        let files: Vec<std::path::PathBuf> = if path.is_dir() {
            std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        } else {
            vec![path]
        };
        for file in files {
            if file.extension().is_some_and(|e| e == "svg") {
                parse_svg(
                    &std::fs::read_to_string(&file).unwrap(),
                    &file.display().to_string(),
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 20, "only {seen} SVG files under reports/");
}
