//! Writing the report set atomically.
//!
//! Every file of a report (JSON, CSV, Markdown, plots) is written into a
//! staging folder beside the output folder, `.<name>.tmp-<pid>`, and the
//! staging folder then takes the output folder's place in one step: on
//! Linux the two folders are exchanged with `renameat2(RENAME_EXCHANGE)`
//! and the old set removed, so a reader sees either the whole old set or
//! the whole new one. Where the exchange is not available the old folder
//! is renamed aside first, and for a moment there is no folder at all, but
//! never a mix. On any error, and on SIGINT or SIGTERM while a set is being
//! written, the staging folder is removed and the previous set is left as
//! it was.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The temporary name `path` is written under before the rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` via a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Runs `write` on a temporary path next to `path`, then renames it into
/// place (for writers that insist on a path, such as the PNG encoder).
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes one file's bytes: the seam through which a [`ReportSet`] writes,
/// so that tests can make it fail as a full disk would.
pub type FileWriter = dyn FnMut(&Path, &[u8]) -> io::Result<()>;

/// The ordinary [`FileWriter`]: creates the file, writes it and syncs it
/// to disk.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The signal (SIGINT or SIGTERM) that arrived while a report set was
/// being written, or 0.
fn interrupt_flag() -> &'static Arc<AtomicUsize> {
    static FLAG: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// From now on, SIGINT and SIGTERM no longer end the process at once: they
/// are noted, and [`interrupted`] reports them, so that a report set being
/// written can be removed before the process exits. Call it before writing
/// starts; calling it again does nothing.
pub fn catch_interrupts() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        #[cfg(unix)]
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_usize(
                signal,
                Arc::clone(interrupt_flag()),
                signal as usize,
            )
            .map_err(|e| format!("cannot watch for interrupts: {e}"))?;
        }
        Ok(())
    })
    .clone()
}

/// The signal caught by [`catch_interrupts`] since it was called, if any.
pub fn interrupted() -> Option<i32> {
    match interrupt_flag().load(Ordering::SeqCst) {
        0 => None,
        n => Some(n as i32),
    }
}

/// The reports a set may hold besides its plots.
const REPORTS: [&str; 5] = [
    "report.json",
    "report.csv",
    "report.md",
    "report.html",
    "background.csv",
];

/// Whether a file named `name` may be part of a report set: the reports
/// (`report.json`, `.csv`, `.md`, `.html`, and `background.csv` for a
/// scenario with background workloads), the plots (`<plot>.svg` or
/// `.png`) and the temporary files of earlier versions
/// (`.<report>.<pid>.tmp`). Only a folder holding nothing else is ever
/// replaced, so that a mistaken `--out` cannot delete unrelated files,
/// such as a `report.md.bak` beside an earlier report.
pub fn is_report_file(name: &str) -> bool {
    let written = |name: &str| {
        REPORTS.contains(&name)
            || crate::report::plots::PLOTS.iter().any(|(stem, _)| {
                name.strip_prefix(stem)
                    .is_some_and(|ext| ext == ".svg" || ext == ".png")
            })
    };
    if let Some(temp) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
        return temp.rsplit_once('.').is_some_and(|(file, pid)| {
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && written(file)
        });
    }
    written(name)
}

/// A report set being written: files go into a staging folder beside the
/// output folder, which [`ReportSet::commit`] swaps into place. Dropped
/// without a commit, it removes the staging folder.
pub struct ReportSet<'w> {
    dir: PathBuf,
    staging: PathBuf,
    writer: &'w mut FileWriter,
    committed: bool,
}

impl std::fmt::Debug for ReportSet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportSet")
            .field("dir", &self.dir)
            .field("staging", &self.staging)
            .finish_non_exhaustive()
    }
}

impl<'w> ReportSet<'w> {
    /// Whether a set may replace the folder `dir`, without touching it:
    /// [`begin`](Self::begin) checks it again, and a run checks it before
    /// it starts, so that a bad `--out` is told at once. Returns the
    /// folder's name.
    pub fn check(dir: &Path) -> Result<&std::ffi::OsStr, String> {
        ReportSet::check_with(dir, is_report_file)
    }

    /// [`check`](Self::check) for a set of other files: `own` tells the
    /// names of the files such a set writes.
    pub fn check_with(dir: &Path, own: fn(&str) -> bool) -> Result<&std::ffi::OsStr, String> {
        let Some(name) = dir.file_name() else {
            return Err(format!(
                "the output folder `{}` must end in a folder name (not `.`, `..` or `/`)",
                dir.display()
            ));
        };
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "the output folder {} is a symbolic link; a run replaces the folder itself, not what a link points to: give the folder's own path",
                    dir.display()
                ))
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(format!(
                    "the output folder {} exists and is not a folder",
                    dir.display()
                ))
            }
            Ok(_) => {
                let entries = fs::read_dir(dir)
                    .map_err(|e| format!("cannot read the output folder {}: {e}", dir.display()))?;
                for entry in entries {
                    let entry = entry.map_err(|e| {
                        format!("cannot read the output folder {}: {e}", dir.display())
                    })?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                    if !is_file || !own(&file) {
                        return Err(format!(
                            "the output folder {} holds `{}`, which is not part of a report; a run replaces the whole folder, so it must be new, empty, or hold only an earlier report. Choose another --out, or move that file away",
                            dir.display(),
                            crate::limits::escape_control(&file)
                        ));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot use the output folder {}: {e}",
                    dir.display()
                ))
            }
        }
        Ok(name)
    }

    /// Starts a set that will replace the folder `dir`, writing each file
    /// through `writer`. Refuses a `dir` that is not a folder, or that
    /// holds anything but a report set's files.
    pub fn begin(dir: &Path, writer: &'w mut FileWriter) -> Result<ReportSet<'w>, String> {
        ReportSet::begin_with(dir, writer, is_report_file)
    }

    /// [`begin`](Self::begin) for a set of other files: `own` tells the
    /// names of the files such a set writes.
    pub fn begin_with(
        dir: &Path,
        writer: &'w mut FileWriter,
        own: fn(&str) -> bool,
    ) -> Result<ReportSet<'w>, String> {
        let name = ReportSet::check_with(dir, own)?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| {
            format!(
                "cannot create the output folder's parent {}: {e}",
                parent.display()
            )
        })?;
        let staging = parent.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir(&staging).map_err(|e| {
            format!(
                "cannot create the staging folder {}: {e}",
                staging.display()
            )
        })?;
        Ok(ReportSet {
            dir: dir.to_path_buf(),
            staging,
            writer,
            committed: false,
        })
    }

    /// The staging folder, for writers that insist on a path of their own.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The output folder the set will replace.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the file `name` of the set.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.staging.join(name);
        (self.writer)(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", self.dir.join(name).display()))
    }

    /// Puts the set in place of the output folder, and removes the old set.
    pub fn commit(mut self) -> Result<(), String> {
        let fail = |e: io::Error| format!("cannot replace {}: {e}", self.dir.display());
        sync_dir(&self.staging).map_err(fail)?;
        if fs::symlink_metadata(&self.dir).is_ok() {
            if exchange(&self.staging, &self.dir).map_err(fail)? {
                // The staging path now holds the old set.
                self.committed = true;
                let _ = fs::remove_dir_all(&self.staging);
            } else {
                let aside = self.staging.with_extension("old");
                fs::rename(&self.dir, &aside).map_err(fail)?;
                if let Err(e) = fs::rename(&self.staging, &self.dir) {
                    let _ = fs::rename(&aside, &self.dir);
                    return Err(fail(e));
                }
                self.committed = true;
                let _ = fs::remove_dir_all(&aside);
            }
        } else {
            fs::rename(&self.staging, &self.dir).map_err(fail)?;
            self.committed = true;
        }
        if let Some(parent) = self.staging.parent() {
            let _ = sync_dir(parent);
        }
        Ok(())
    }
}

impl Drop for ReportSet<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Exchanges the folders `a` and `b` in one step; `Ok(false)` when the
/// system or file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both paths are valid NUL-terminated strings that outlive the
    // call; renameat2 only reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<bool> {
    Ok(false)
}
