//! The report set is written as one: after a failed write (a full disk),
//! a refused output folder or an interrupt, the output folder holds the
//! whole previous set or the whole new one, and no temporary file or
//! folder is left beside it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str = r#"
name = "atomic"
[workload]
calls = 300
arrival = "fixed_rate"
rate = 100.0
[[failures]]
model = "random"
probability = 0.3
classes = { transient = 0.7, rate_limit = 0.3 }
[policies.quick]
max_attempts = 3
strategy = { kind = "constant", base = "50ms" }
[policies.default]
"#;

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

/// Every file of a folder, by name, with its bytes.
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

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    all.sort();
    all
}

fn args(scenario: &Path, out: &Path, seed: u64) -> Vec<std::ffi::OsString> {
    [
        "reflexio-sim".into(),
        "--scenario".into(),
        scenario.as_os_str().to_owned(),
        "--out".into(),
        out.as_os_str().to_owned(),
        "--seed".into(),
        seed.to_string().into(),
    ]
    .into()
}

/// Runs the command line in this process, writing through `writer`.
fn simulate(
    scenario: &Path,
    out: &Path,
    seed: u64,
    writer: &mut reflexio_sim::output::FileWriter,
) -> (i32, String) {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = reflexio_sim::cli::main_with_writer(
        args(scenario, out, seed),
        &mut stdout,
        &mut stderr,
        false,
        writer,
    );
    (code, String::from_utf8(stderr).unwrap())
}

/// A writer that fails like a full disk at its `fail_at`-th file, after
/// writing half of that file.
fn full_disk_at(fail_at: usize) -> impl FnMut(&Path, &[u8]) -> io::Result<()> {
    let mut calls = 0;
    move |path, bytes| {
        calls += 1;
        if calls > fail_at {
            std::fs::write(path, &bytes[..bytes.len() / 2])?;
            return Err(io::Error::from_raw_os_error(28));
        }
        reflexio_sim::output::write_file(path, bytes)
    }
}

#[test]
fn a_full_disk_at_any_file_leaves_the_previous_set_intact() {
    let dir = temp_dir("atomic-full");
    let scenario = dir.join("atomic.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.join("out");
    let (code, err) = simulate(&scenario, &out, 1, &mut reflexio_sim::output::write_file);
    assert_eq!(code, 0, "{err}");
    let old = files(&out);
    assert_eq!(old.len(), 8);
    // A set of eight files: fail at each of them in turn.
    for fail_at in 0..8 {
        let (code, err) = simulate(&scenario, &out, 2, &mut full_disk_at(fail_at));
        assert_eq!(code, 2, "failing at file {fail_at}: {err}");
        assert!(err.contains("cannot write"), "{err}");
        assert!(err.contains("os error 28"), "{err}");
        assert!(
            files(&out) == old,
            "failing at file {fail_at} changed the set"
        );
        assert_eq!(names(&dir), ["atomic.toml", "out"], "leftovers");
    }
    // With room on the disk, the new set replaces the old one whole.
    let (code, err) = simulate(&scenario, &out, 2, &mut reflexio_sim::output::write_file);
    assert_eq!(code, 0, "{err}");
    let new = files(&out);
    assert_eq!(new.len(), 8);
    assert!(new != old);
    assert_eq!(names(&dir), ["atomic.toml", "out"]);
}

#[test]
fn a_folder_holding_other_files_is_not_replaced() {
    let dir = temp_dir("atomic-foreign");
    let scenario = dir.join("atomic.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let (code, err) = simulate(&scenario, &out, 1, &mut reflexio_sim::output::write_file);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds `notes.txt`"), "{err}");
    assert_eq!(names(&out), ["notes.txt"]);
    assert_eq!(names(&dir), ["atomic.toml", "out"]);
    // `--out .` names no folder to replace.
    let (code, err) = simulate(
        &scenario,
        Path::new("."),
        1,
        &mut reflexio_sim::output::write_file,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("must end in a folder name"), "{err}");
}

#[test]
fn files_named_like_a_report_but_not_written_by_one_are_not_replaced() {
    let dir = temp_dir("atomic-lookalike");
    let scenario = dir.join("atomic.toml");
    std::fs::write(&scenario, SCENARIO.replace("calls = 300", "calls = 30")).unwrap();
    let out = dir.join("out");
    let (code, err) = simulate(&scenario, &out, 1, &mut reflexio_sim::output::write_file);
    assert_eq!(code, 0, "{err}");
    // A backup, a printout, a hidden note: the user's files, which a run
    // that replaces the folder would delete.
    for name in ["report.md.bak", "report.pdf", ".notes.tmp"] {
        std::fs::write(out.join(name), "mine").unwrap();
        let before = files(&out);
        let (code, err) = simulate(&scenario, &out, 2, &mut reflexio_sim::output::write_file);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(&format!("holds `{name}`")), "{err}");
        assert!(files(&out) == before, "{name}: the folder changed");
        assert_eq!(names(&dir), ["atomic.toml", "out"], "leftovers");
        std::fs::remove_file(out.join(name)).unwrap();
    }
    // What an earlier version left behind, its temporary files, goes
    // with the old set.
    for name in [".report.json.4242.tmp", ".load.svg.7.tmp"] {
        std::fs::write(out.join(name), "partial").unwrap();
    }
    let (code, err) = simulate(&scenario, &out, 3, &mut reflexio_sim::output::write_file);
    assert_eq!(code, 0, "{err}");
    assert!(names(&out).iter().all(|n| !n.ends_with(".tmp")));
}

#[cfg(unix)]
#[test]
fn a_link_to_a_folder_is_refused_as_a_link() {
    let dir = temp_dir("atomic-link");
    let scenario = dir.join("atomic.toml");
    std::fs::write(&scenario, SCENARIO.replace("calls = 300", "calls = 30")).unwrap();
    let real = dir.join("real");
    let (code, err) = simulate(&scenario, &real, 1, &mut reflexio_sim::output::write_file);
    assert_eq!(code, 0, "{err}");
    let before = files(&real);
    let link = dir.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, err) = simulate(&scenario, &link, 2, &mut reflexio_sim::output::write_file);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(!err.contains("is not a folder"), "{err}");
    assert!(files(&real) == before);
    assert_eq!(names(&dir), ["atomic.toml", "link", "real"]);
}

#[test]
fn the_output_folder_is_refused_before_the_simulation_runs() {
    let dir = temp_dir("atomic-early");
    let scenario = dir.join("atomic.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.join("out");
    std::fs::write(&out, "a file, not a folder").unwrap();
    // This run would be stopped by its attempt budget; a bad `--out` is
    // known before it starts, and must be said at once.
    let mut args = args(&scenario, &out, 1);
    args.extend(["--max-simulated-attempts".into(), "700".into()]);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = reflexio_sim::cli::main_with(args, &mut stdout, &mut stderr, false);
    let err = String::from_utf8(stderr).unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists and is not a folder"), "{err}");
    assert!(!err.contains("attempts were simulated"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "a file, not a folder"
    );
    assert_eq!(names(&dir), ["atomic.toml", "out"]);
}

#[test]
fn a_set_in_png_replaces_a_set_in_svg_whole() {
    let dir = temp_dir("atomic-png");
    let scenario = dir.join("atomic.toml");
    std::fs::write(&scenario, SCENARIO.replace("calls = 300", "calls = 30")).unwrap();
    let out = dir.join("out");
    let (code, err) = simulate(&scenario, &out, 1, &mut reflexio_sim::output::write_file);
    assert_eq!(code, 0, "{err}");
    let mut png = args(&scenario, &out, 1);
    png.extend(["--plot-format".into(), "png".into()]);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = reflexio_sim::cli::main_with(png, &mut stdout, &mut stderr, false);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&stderr));
    assert_eq!(
        names(&out),
        [
            "attempts.png",
            "latency-cdf.png",
            "load.png",
            "report.csv",
            "report.html",
            "report.json",
            "report.md",
            "sleep.png"
        ]
    );
    assert_eq!(names(&dir), ["atomic.toml", "out"]);
}

#[test]
fn a_set_with_background_is_replaced_by_the_next_run_whole() {
    let dir = temp_dir("atomic-background");
    let plain = dir.join("plain.toml");
    std::fs::write(&plain, SCENARIO.replace("calls = 300", "calls = 30")).unwrap();
    let with_background = dir.join("background.toml");
    std::fs::write(
        &with_background,
        SCENARIO.replace("calls = 300", "calls = 30").replace(
            "[policies.quick]",
            "[[background]]\nname = \"batch\"\ncalls = 20\narrival = \"poisson\"\nrate = 50.0\n[policies.quick]",
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let write = &mut reflexio_sim::output::write_file;
    // Twice into the same folder: the second run replaces the first
    // (background.csv belongs to a report set).
    for seed in [1, 2] {
        let (code, err) = simulate(&with_background, &out, seed, write);
        assert_eq!(code, 0, "{err}");
        assert!(names(&out).contains(&"background.csv".to_owned()));
    }
    let csv = std::fs::read_to_string(out.join("background.csv")).unwrap();
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("0,2,quick,batch,20,"),
        "{csv}"
    );
    // A set without background leaves no background.csv behind.
    let (code, err) = simulate(&plain, &out, 1, write);
    assert_eq!(code, 0, "{err}");
    assert!(!names(&out).contains(&"background.csv".to_owned()));
    assert_eq!(names(&dir), ["background.toml", "out", "plain.toml"]);
}

/// Runs the binary; returns how long it took.
fn run_binary(scenario: &Path, out: &Path, seed: u64) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_reflexio-sim"))
        .args(args(scenario, out, seed).into_iter().skip(1))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    start.elapsed()
}

fn copy_set(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for (name, bytes) in files(from) {
        std::fs::write(to.join(name), bytes).unwrap();
    }
}

/// Waits until the run writing into `dir/out` has created its staging
/// folder (the set is being written), or has ended; returns whether the
/// folder appeared.
fn wait_for_staging(dir: &Path, child: &mut std::process::Child) -> bool {
    let staging = dir.join(format!(".out.tmp-{}", child.id()));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if staging.exists() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

#[cfg(unix)]
#[test]
fn interrupts_leave_the_old_set_or_the_new_one() {
    use std::os::unix::process::ExitStatusExt;

    let dir = temp_dir("atomic-interrupt");
    let scenario = dir.join("atomic.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let (old, new, out) = (dir.join("old"), dir.join("new"), dir.join("out"));
    run_binary(&scenario, &old, 1);
    // The slowest of three runs: how long a whole run takes here.
    let whole = (0..3)
        .map(|_| run_binary(&scenario, &new, 2))
        .max()
        .unwrap();
    let (old_set, new_set) = (files(&old), files(&new));
    assert!(old_set != new_set);
    let iterations = 30;
    // Outcomes: killed before writing began, interrupted while writing
    // (exit 128 + signal, caught), finished before the signal.
    let (mut killed, mut caught, mut finished) = (0, 0, 0);
    let (mut kept_old, mut got_new) = (0, 0);
    for i in 0..iterations {
        copy_set(&old, &out);
        let signal = if i % 2 == 0 {
            libc::SIGINT
        } else {
            libc::SIGTERM
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_reflexio-sim"))
            .args(args(&scenario, &out, 2).into_iter().skip(1))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if i % 3 == 0 {
            // Anywhere in the run.
            std::thread::sleep(whole.mul_f64(0.2 + 0.8 * i as f64 / iterations as f64));
        } else if wait_for_staging(&dir, &mut child) {
            // While the set is being written, at a different point each
            // time.
            std::thread::sleep(Duration::from_micros(1500 * (i as u64 % 10)));
        }
        // SAFETY: `kill` only sends a signal; the child has not been
        // waited for, so its process id is still its own.
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert!(sent == 0 || child.try_wait().unwrap().is_some());
        let status = child.wait().unwrap();
        match (status.code(), status.signal()) {
            (Some(0), _) => finished += 1,
            (Some(130), _) | (Some(143), _) => caught += 1,
            (None, Some(2)) | (None, Some(15)) => killed += 1,
            _ => panic!("iteration {i}: exit {status:?}"),
        }
        let now = files(&out);
        if now == old_set {
            kept_old += 1;
        } else if now == new_set {
            got_new += 1;
        } else {
            let names: Vec<&String> = now.iter().map(|(n, _)| n).collect();
            panic!("iteration {i}: the folder holds a mix: {names:?}");
        }
        assert_eq!(
            names(&dir),
            ["atomic.toml", "new", "old", "out"],
            "iteration {i} left something behind"
        );
    }
    eprintln!(
        "{iterations} interrupted runs: {killed} ended before writing, {caught} interrupted while writing, {finished} finished first; {kept_old} kept the old set, {got_new} have the new one"
    );
    assert_eq!(kept_old + got_new, iterations);
    assert!(caught > 0, "no signal arrived while the set was written");
}
