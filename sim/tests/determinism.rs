//! Same scenario and seed: byte-identical JSON, CSV, Markdown and SVG.

use std::path::{Path, PathBuf};

use reflexio_sim::report::plots;
use reflexio_sim::Scenario;

const SCENARIO: &str = r#"
name = "det"
seed = 11
bucket = "100ms"
[workload]
calls = 400
arrival = "poisson"
rate = 400.0
[latency]
distribution = "lognormal"
median = "15ms"
sigma = 0.6
[[failures]]
model = "rate_limit"
rate = 200.0
burst = 10
[[failures]]
model = "random"
probability = 0.1
classes = { server_error = 2.0, transient = 1.0, unknown = 0.5 }
[[failures]]
model = "overload"
capacity = 8
latency_growth = 0.5
error_growth = 0.1
timeout = "200ms"
[policies.jittered]
strategy = { kind = "full_jitter", base = "20ms", max = "1s" }
[policies.decorrelated]
"#;

fn render(seed: u64) -> Vec<String> {
    let scenario = Scenario::from_toml_str(SCENARIO, "det.toml").unwrap();
    let report = reflexio_sim::run_many(&scenario, seed, 2, &|_, _| {}).unwrap();
    let mut out: Vec<String> = reflexio_sim::cli::render_all(&report, Some("det.toml"), &[])
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    for which in 0..plots::PLOTS.len() {
        out.push(plots::svg(&report, which).unwrap());
    }
    out
}

#[test]
fn reports_are_byte_identical_across_runs() {
    let (a, b) = (render(11), render(11));
    assert_eq!(a.len(), 7);
    for (x, y) in a.iter().zip(&b) {
        assert!(x == y, "outputs differ");
    }
    let c = render(12);
    assert_ne!(a[0], c[0], "another seed should give another report");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn the_command_writes_identical_folders() {
    let dir = temp_dir("determinism");
    let scenario = dir.join("det.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let mut outputs = Vec::new();
    for k in 0..2 {
        let out = dir.join(format!("out{k}"));
        let args = [
            "reflexio-sim",
            "--scenario",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ];
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code =
            reflexio_sim::cli::main_with(args.map(Into::into), &mut stdout, &mut stderr, false);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&stderr));
        assert_eq!(stdout, std::fs::read(out.join("report.json")).unwrap());
        outputs.push(files(&out));
    }
    let names: Vec<&str> = outputs[0].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "attempts.svg",
            "latency-cdf.svg",
            "load.svg",
            "report.csv",
            "report.html",
            "report.json",
            "report.md",
            "sleep.svg"
        ]
    );
    assert!(outputs[0] == outputs[1], "two runs wrote different bytes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn png_plots_are_written_and_deterministic() {
    let dir = temp_dir("png");
    let scenario = dir.join("det.toml");
    std::fs::write(&scenario, SCENARIO.replace("calls = 400", "calls = 50")).unwrap();
    let mut outputs = Vec::new();
    for k in 0..2 {
        let out = dir.join(format!("out{k}"));
        let args = [
            "reflexio-sim",
            "--scenario",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--plot-format",
            "png",
        ];
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code =
            reflexio_sim::cli::main_with(args.map(Into::into), &mut stdout, &mut stderr, false);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&stderr));
        outputs.push(files(&out));
    }
    let png = outputs[0].iter().find(|(n, _)| n == "load.png").unwrap();
    assert!(png.1.starts_with(b"\x89PNG"));
    assert!(outputs[0] == outputs[1]);
    // No temporary file is left behind.
    assert!(outputs[0].iter().all(|(n, _)| !n.contains("tmp")));
    let _ = std::fs::remove_dir_all(&dir);
}
