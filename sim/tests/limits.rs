//! Every scenario that could exhaust memory, disk or time is refused
//! quickly, with exit code 2 and a message naming the file, the line and
//! column, the field and the limit; or stopped as soon as it crosses a
//! limit that only the run can see. Each case runs the real binary under a
//! time limit, so a hang fails the test instead of stalling it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Well above what any refusal takes, even in a debug build on a busy
/// machine; a run that gets here is killed and the test fails.
const QUICK: Duration = Duration::from_secs(20);

/// A fresh folder under the system's temporary folder, removed when
/// dropped (also when the test fails: some hold 16 MiB files).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("reflexio-sim-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    TempDir::new(name)
}

/// Runs the binary with `args`; returns its exit code and standard error.
fn run(args: &[&str]) -> (i32, String) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reflexio-sim"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed() > QUICK {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`reflexio-sim {}` still ran after {QUICK:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes `source` as `name` in `dir` and runs it, with its output in
/// `dir/out`; asserts exit code 2, no output folder, and every part of
/// `parts` in the message; returns the message.
fn refused(dir: &Path, name: &str, source: &str, parts: &[&str]) -> String {
    let file = dir.join(name);
    std::fs::write(&file, source).unwrap();
    let out = dir.join("out");
    let (code, err) = run(&[
        "--scenario",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "exit code for {name}; stderr:\n{err}");
    for part in parts {
        assert!(err.contains(part), "`{part}` missing from:\n{err}");
    }
    assert!(!out.exists(), "{name} wrote an output folder");
    err
}

#[test]
fn a_nanosecond_bucket_over_a_second_of_arrivals_is_refused() {
    let dir = temp_dir("limit-bucket");
    refused(
        &dir,
        "ns.toml",
        "bucket = \"1ns\"\n[workload]\ncalls = 2\narrival = \"fixed_rate\"\nrate = 1.0\n[policies.p]\n",
        &["ns.toml:1:10: `bucket`", "100000 buckets", "at least 10us"],
    );
}

#[test]
fn a_vanishing_poisson_rate_is_refused() {
    let dir = temp_dir("limit-poisson");
    refused(
        &dir,
        "rare.toml",
        "[workload]\ncalls = 2\narrival = \"poisson\"\nrate = 1e-300\n[policies.p]\n",
        &["rare.toml:4:8: `workload.rate`", "100000 buckets"],
    );
}

#[test]
fn a_think_time_of_centuries_is_refused() {
    let dir = temp_dir("limit-think");
    refused(
        &dir,
        "think.toml",
        "[workload]\ncalls = 2\narrival = \"closed_loop\"\nclients = 1\nthink_time = \"2628000h\"\n[policies.p]\n",
        &[
            "think.toml:5:14: `workload.think_time`",
            "300 years",
            "100000 buckets",
        ],
    );
}

#[test]
fn the_outage_scenario_with_microsecond_buckets_is_refused() {
    let dir = temp_dir("limit-outage");
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/outage.toml"),
    )
    .unwrap();
    assert!(source.contains("bucket = \"1s\""));
    let source = source.replace("bucket = \"1s\"", "bucket = \"1us\"");
    let line = source
        .lines()
        .position(|l| l.starts_with("bucket"))
        .unwrap()
        + 1;
    refused(
        &dir,
        "outage.toml",
        &source,
        &[
            &format!("outage.toml:{line}:10: `bucket`"),
            "100000 buckets",
        ],
    );
}

#[test]
fn a_timeline_that_retries_stretch_past_the_buckets_stops() {
    // All calls arrive at once, so only the run can see how long the
    // retries make the timeline.
    let dir = temp_dir("limit-timeline");
    refused(
        &dir,
        "long.toml",
        "bucket = \"1ms\"\n[workload]\ncalls = 10\n[[failures]]\nmodel = \"outage\"\nstart = \"0s\"\nend = \"1000h\"\n[policies.slow]\ndeadline = \"10m\"\nmax_attempts = 1000\nstrategy = { kind = \"constant\", base = \"10s\" }\n",
        &["long.toml:1:10: `bucket`", "policy `slow`", "100000 load buckets"],
    );
}

#[test]
fn four_billion_contended_rows_are_refused() {
    let dir = temp_dir("limit-rows");
    refused(
        &dir,
        "rows.toml",
        "[workload]\ncalls = 10\n[[failures]]\nmodel = \"contention\"\nrows = 4294967295\n[policies.p]\n",
        &["rows.toml:5:8: `failures[0].rows`", "allowed: 1 to 1000000"],
    );
}

#[test]
fn a_nanosecond_backoff_with_a_huge_cap_against_a_dead_service_is_refused() {
    let dir = temp_dir("limit-hammer");
    refused(
        &dir,
        "hammer.toml",
        "[workload]\ncalls = 1000\n[[failures]]\nmodel = \"outage\"\nstart = \"0s\"\nend = \"1000h\"\n[policies.hammer]\nmax_attempts = 4294967295\ndeadline = \"off\"\nstrategy = { kind = \"constant\", base = \"1ns\" }\n",
        &[
            "hammer.toml:8:16: `policies.hammer.max_attempts`",
            "at most 100000 per call",
        ],
    );
}

#[test]
fn the_attempt_budget_stops_a_run_and_names_its_knob() {
    let dir = temp_dir("limit-budget");
    // Each policy may make 100000 attempts per call, within the per-call
    // limit; 50 calls of it against a dead service need 5 million
    // attempts, above the scenario's budget.
    let err = refused(
        &dir,
        "budget.toml",
        "max_simulated_attempts = 200000\n[workload]\ncalls = 50\n[[failures]]\nmodel = \"outage\"\nstart = \"0s\"\nend = \"1000h\"\n[policies.hammer]\nmax_attempts = 100000\ndeadline = \"off\"\nstrategy = { kind = \"constant\", base = \"1ns\" }\n",
        &[
            "budget.toml:1:26: `max_simulated_attempts`",
            "more than 200000 attempts",
            "--max-simulated-attempts",
        ],
    );
    assert!(!err.contains("policy `"), "{err}");
    // The command line overrides the budget, and the message says so.
    let (code, err) = run(&[
        "--scenario",
        dir.join("budget.toml").to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
        "--max-simulated-attempts",
        "1000",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`--max-simulated-attempts`: more than 1000 attempts"),
        "{err}"
    );
}

#[test]
fn too_much_least_work_is_refused_up_front() {
    let dir = temp_dir("limit-work");
    refused(
        &dir,
        "work.toml",
        "max_simulated_attempts = 100\nruns = 2\n[workload]\ncalls = 60\n[policies.p]\n",
        &[
            "work.toml:4:9: `workload.calls`",
            "at least 120 simulated attempts",
            "`max_simulated_attempts` (100)",
        ],
    );
}

#[test]
fn dev_zero_is_refused_as_a_scenario() {
    let (code, err) = run(&["--scenario", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "/dev/zero: cannot read the scenario: not a regular file (a character device)"
        ),
        "{err}"
    );
    let (code, err) = run(&["check", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_folder_is_refused_as_a_scenario() {
    let dir = temp_dir("limit-folder");
    let (code, err) = run(&["--scenario", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file (a folder)"), "{err}");
}

#[test]
fn an_oversized_scenario_is_refused() {
    let dir = temp_dir("limit-size");
    let file = dir.join("big.toml");
    let mut source = String::from("[workload]\ncalls = 1\n[policies.p]\n");
    let pad = "# padding padding padding padding padding padding padding padding\n";
    while source.len() as u64 <= reflexio_sim::limits::MAX_SCENARIO_BYTES {
        source.push_str(pad);
    }
    std::fs::write(&file, source).unwrap();
    let (code, err) = run(&["--scenario", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("big.toml: cannot read the scenario: larger than the limit of 16 MiB"),
        "{err}"
    );
}

#[test]
fn check_of_a_file_of_many_policies_answers_quickly() {
    // `check` lints the first fifty policies; linting each from a parse
    // of its own took 74 s in a debug build for 4 MiB of policies (and a
    // minute and 2.3 GB in a release build for 16 MiB), against 6 s from
    // one parse.
    let dir = temp_dir("limit-check-many");
    let mut source = String::from("[workload]\ncalls = 10\n");
    let mut policies = 0;
    while source.len() < 4 << 20 {
        source.push_str(&format!("[policies.p{policies}]\nmax_attempts = 2\n"));
        policies += 1;
    }
    let file = dir.join("many.toml");
    std::fs::write(&file, source).unwrap();
    let (code, err) = run(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{policies} policies; at most 50")),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_trace_file_naming_a_fifo_is_refused() {
    let dir = temp_dir("limit-fifo");
    let fifo = dir.join("trace.csv");
    let status = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo failed");
    refused(
        &dir,
        "fifo.toml",
        "[workload]\ncalls = 10\n[[failures]]\nmodel = \"trace\"\nfile = \"trace.csv\"\n[policies.p]\n",
        &[
            "fifo.toml:5:8: `failures[0].file`",
            "not a regular file (a FIFO)",
        ],
    );
}

#[test]
fn an_oversized_trace_is_refused() {
    let dir = temp_dir("limit-trace");
    let mut csv = String::from("time,outcome\n");
    while csv.len() as u64 <= reflexio_sim::limits::MAX_TRACE_BYTES {
        csv.push_str("0,ok\n");
    }
    std::fs::write(dir.join("trace.csv"), csv).unwrap();
    refused(
        &dir,
        "trace.toml",
        "[workload]\ncalls = 10\n[[failures]]\nmodel = \"trace\"\nfile = \"trace.csv\"\n[policies.p]\n",
        &[
            "trace.toml:5:8: `failures[0].file`",
            "larger than the limit of 16 MiB",
        ],
    );
}

#[test]
fn too_many_runs_of_too_many_policies_are_refused() {
    let dir = temp_dir("limit-jobs");
    let mut source = String::from("runs = 10000\n[workload]\ncalls = 1\n");
    for p in 0..11 {
        source.push_str(&format!("[policies.p{p}]\n"));
    }
    refused(
        &dir,
        "jobs.toml",
        &source,
        &["jobs.toml:1:8: `runs`", "110000 (run, policy) pairs"],
    );
}

#[test]
fn later_runs_keep_only_their_scalar_metrics() {
    let scenario = reflexio_sim::Scenario::from_toml_str(
        "[workload]\ncalls = 20\n[[failures]]\nmodel = \"random\"\nprobability = 0.5\nclasses = { transient = 1.0 }\n[policies.p]\n",
        "runs.toml",
    )
    .unwrap();
    let report = reflexio_sim::run_many(&scenario, 1, 3, &|_, _| {}).unwrap();
    let first = &report.runs[0].policies[0];
    assert!(!first.load_per_bucket.is_empty() && !first.latency_cdf.is_empty());
    assert!(!first.attempts_histogram.is_empty());
    for run in &report.runs[1..] {
        let m = &run.policies[0];
        assert!(m.load_per_bucket.is_empty() && m.latency_cdf.is_empty());
        assert!(m.attempts_histogram.is_empty());
        assert!(m.attempts_total >= 20);
    }
}
