//! The command line: help, `check`, exit codes and the bundled scenarios.

use std::path::PathBuf;

mod common;

use common::cli as run;

fn scenarios() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

#[test]
fn help_explains_the_options() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for word in [
        "--scenario",
        "--seed",
        "--runs",
        "--out",
        "--format",
        "--no-plots",
        "check",
        "Exit codes",
    ] {
        assert!(out.contains(word), "{word} missing from help:\n{out}");
    }
}

#[test]
fn check_prints_the_normalised_policy_and_its_worst_case() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.toml");
    std::fs::write(
        &file,
        "max_attempts = 5\n[strategy]\nkind = \"exponential\"\nbase = \"100ms\"\nmax = \"1s\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deadline = \"1m\""), "{out}");
    assert!(out.contains("max_unknown_attempts = 2"), "{out}");
    assert!(out.contains("at most 5 attempts per call"), "{out}");
    // 100 + 200 + 400 + 800 ms.
    assert!(
        out.contains("sleep per call at most 1500ms without"),
        "{out}"
    );

    std::fs::write(&file, "max_attempts = 0\n").unwrap();
    let (code, _, err) = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("policy.toml:1:16") && err.contains("max_attempts"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_prints_legs_phases_and_zero_delays_normalised() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-legs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("legs.toml");
    std::fs::write(
        &file,
        r#"
[workload]
calls = 100
arrival = "fixed_rate"
phases = [{ rate = 40, for = "10s" }, { rate = 80.0, for = "5000ms" }, { rate = 40.0 }]
[latency]
round_trips = 2
request = { distribution = "constant", value = "10ms" }
response = { distribution = "uniform", min = "5ms", max = "15ms" }
[[failures]]
model = "contention"
rows = 1
[client]
oversleep = { distribution = "uniform", min = "0us", max = "2000us" }
[policies.now]
strategy = { kind = "constant", base = "0ns" }
"#,
    )
    .unwrap();
    let (code, out, err) = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "arrival = \"fixed_rate\"",
        "{ rate = 40.0, for = \"10s\" }, # 0s to 10s",
        "{ rate = 80.0, for = \"5s\" }, # 10s to 15s",
        "{ rate = 40.0 }, # from 15s until every call has arrived",
        "round_trips = 2",
        "request = { distribution = \"constant\", value = \"10ms\" }",
        "service = { distribution = \"constant\", value = \"0s\" }",
        "response = { distribution = \"uniform\", min = \"5ms\", max = \"15ms\" }",
        "the request arrives 10 ms after the send",
        "until 30 ms",
        "learns the outcome 40 ms after the send",
        "kind = \"constant\"\nbase = \"0s\"",
        "[client]\noversleep = { distribution = \"uniform\", min = \"0s\", max = \"2ms\" }",
        "ends on average 1 ms after the delay asked for",
    ] {
        assert!(out.contains(want), "`{want}` missing:\n{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_accepts_every_bundled_scenario() {
    let mut names: Vec<String> = std::fs::read_dir(scenarios())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for path in &names {
        let (code, out, err) = run(&["check", path]);
        assert_eq!(code, 0, "{path}: {err}");
        assert!(out.contains("[policies."), "{out}");
        assert!(out.contains("worst case"), "{out}");
    }
}

#[test]
fn bundled_scenarios_run_clean_on_a_small_workload() {
    // The bundled workloads are sized for release builds; here each runs
    // with a tenth of its calls (a parsed copy), checking only for
    // violations.
    for name in ["rate-limit", "outage", "contention", "overload", "flaky"] {
        let path = scenarios().join(format!("{name}.toml"));
        let mut scenario =
            reflexio_sim::Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        scenario.workload.calls = (scenario.workload.calls / 10).max(10);
        if let reflexio_sim::scenario::Arrival::ClosedLoop { clients, .. } =
            &mut scenario.workload.arrival
        {
            *clients = (*clients).min(scenario.workload.calls as u32);
        }
        let report = reflexio_sim::run(&scenario, scenario.seed).unwrap();
        assert_eq!(report.violations(), 0, "{name}");
    }
}

#[test]
fn check_prints_a_budget_and_the_load_it_guarantees() {
    let dir =
        std::env::temp_dir().join(format!("reflexio-sim-check-budget-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.toml");
    std::fs::write(
        &file,
        "max_attempts = 4\n[budget]\nkind = \"ratio\"\npercent = 20\nmin_per_sec = 5\n",
    )
    .unwrap();
    let (code, out, err) = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("[budget]\nkind = \"ratio\"\nwindow = \"10s\""),
        "{out}"
    );
    assert!(
        out.contains("# budget bound: in any 10s window (ten slots of 1s), at most 50 retries plus 20% of the calls started in it"),
        "{out}"
    );
    assert!(
        out.contains("at most 1.2 attempts per call plus 5 retries/s whatever the traffic, against 4 per call without the budget"),
        "{out}"
    );

    std::fs::write(
        &file,
        "max_attempts = 6\n[budget]\nkind = \"token_bucket\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("at most 1.2 attempts per call while retries fail, 2 whatever their outcome"),
        "{out}"
    );

    std::fs::write(
        &file,
        "[budget]\nkind = \"token_bucket\"\nwindow = \"1s\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("policy.toml:3:") && err.contains("budget.window"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Standard output that fails every write as `error` does.
struct Failing(std::io::ErrorKind, Option<i32>);

impl std::io::Write for Failing {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(match self.1 {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::from(self.0),
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn standard_output_that_cannot_be_written_is_an_error() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-stdout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out_dir = dir.join("out");
    let flaky = scenarios().join("flaky.toml");
    let check = [
        "reflexio-sim",
        "check",
        "--format",
        "json",
        flaky.to_str().unwrap(),
    ];
    let simulate = [
        "reflexio-sim",
        "--scenario",
        flaky.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--no-plots",
        "--format",
        "json",
    ];
    let args = |a: &[&str]| {
        a.iter()
            .map(Into::into)
            .collect::<Vec<std::ffi::OsString>>()
    };
    // A full disk (`> /dev/full`): the output asked for is lost, and the
    // exit code says so.
    for command in [&check[..], &simulate[..]] {
        let mut err = Vec::new();
        let mut full = Failing(std::io::ErrorKind::Other, Some(28));
        let code = reflexio_sim::cli::main_with(args(command), &mut full, &mut err, false);
        let err = String::from_utf8(err).unwrap();
        assert_eq!(code, 2, "{command:?}: {err}");
        assert!(err.contains("cannot write to standard output"), "{err}");
    }
    // The report on disk was written whole all the same.
    assert!(out_dir.join("report.json").is_file());
    // A reader that stopped reading (`| head`) is not an error.
    let mut err = Vec::new();
    let mut closed = Failing(std::io::ErrorKind::BrokenPipe, None);
    let code = reflexio_sim::cli::main_with(args(&check), &mut closed, &mut err, false);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_folder_written_is_named_with_one_slash() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-slash-{}", std::process::id()));
    let scenario = dir.join("one.toml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&scenario, "[workload]\ncalls = 3\n[policies.p]\n").unwrap();
    let out = dir.join("out");
    let plain = out.to_str().unwrap().to_owned();
    for given in [plain.clone(), format!("{plain}/")] {
        let (code, _, err) = run(&[
            "--scenario",
            scenario.to_str().unwrap(),
            "--out",
            &given,
            "--no-plots",
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains(&format!("wrote {plain}/ (report.json")),
            "{err}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn runs_out_of_range_is_told_the_range_runs_take() {
    let flaky = scenarios().join("flaky.toml");
    for runs in ["4294967296", "0", "10001", "-1"] {
        let flag = format!("--runs={runs}");
        let (code, _, err) = run(&["--scenario", flaky.to_str().unwrap(), &flag]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("1..=10000"), "--runs {runs}: {err}");
    }
}

/// Writes what it is given, and at its first write (the scenario's
/// warning, printed after the scenario was read and before the run) puts
/// a FIFO in place of the scenario file.
#[cfg(unix)]
struct SwapOnFirstWrite {
    scenario: PathBuf,
    swapped: bool,
    text: Vec<u8>,
}

#[cfg(unix)]
impl std::io::Write for SwapOnFirstWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.swapped {
            self.swapped = true;
            std::fs::remove_file(&self.scenario)?;
            let made = std::process::Command::new("mkfifo")
                .arg(&self.scenario)
                .status()?;
            assert!(made.success(), "mkfifo failed");
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The run reads its scenario once: a file swapped for a FIFO after it was
/// read (a reader of the FIFO would wait for a writer for ever) changes
/// nothing, and the report's notes are the text that was read.
#[cfg(unix)]
#[test]
fn the_scenario_is_read_once_and_its_notes_come_from_that_reading() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-read-once-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("once.toml");
    // `max_unknown_attempts` above `max_attempts` is a warning.
    std::fs::write(
        &file,
        "# Read once\n#\n# The notes of the first reading.\n[workload]\ncalls = 5\n[policies.p]\nmax_attempts = 2\nmax_unknown_attempts = 3\n",
    )
    .unwrap();
    let out = dir.join("out");
    let args: Vec<std::ffi::OsString> = [
        "reflexio-sim",
        "--scenario",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-plots",
    ]
    .iter()
    .map(Into::into)
    .collect();
    let (done, finished) = std::sync::mpsc::channel();
    let scenario = file.clone();
    std::thread::spawn(move || {
        let mut err = SwapOnFirstWrite {
            scenario,
            swapped: false,
            text: Vec::new(),
        };
        let code = reflexio_sim::cli::main_with(args, &mut Vec::new(), &mut err, false);
        let _ = done.send((code, String::from_utf8_lossy(&err.text).into_owned()));
    });
    let (code, err) = finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the run blocked after its scenario became a FIFO");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("above max_attempts"), "{err}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("The notes of the first reading."), "{html}");
    let _ = std::fs::remove_dir_all(&dir);
}
