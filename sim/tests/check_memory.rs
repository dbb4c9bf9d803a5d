//! `check` holds at most one parse tree of a document at a time.
//!
//! A parse tree takes many times the size of its document (about 50 times
//! for a file of many small `[policies.NAME]` tables), so a scenario file
//! of 16 MiB made `check` hold 1.6 GB when two trees of it were alive at
//! once. A global allocator here counts the bytes in use and their peak:
//! `check`'s peak is compared with that of parsing the same document
//! once. This file holds one test, so that no other test's allocations
//! are counted with it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    IN_USE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to the system allocator unchanged and
// only counts bytes, in atomics, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The most bytes in use at once while `f` ran, above those in use before.
fn peak_of(f: impl FnOnce()) -> usize {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - before
}

#[test]
fn check_holds_one_parse_tree_of_a_large_file_at_a_time() {
    let dir =
        std::env::temp_dir().join(format!("reflexio-sim-check-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("many.toml");
    let mut source = String::from("[workload]\ncalls = 10\n");
    let mut policies = 0;
    while source.len() < 2 << 20 {
        source.push_str(&format!("[policies.p{policies}]\nmax_attempts = 2\n"));
        policies += 1;
    }
    std::fs::write(&file, &source).unwrap();

    let one_tree = peak_of(|| {
        let (tree, errors) = toml::de::DeTable::parse_recoverable(&source);
        assert!(errors.is_empty());
        std::hint::black_box(&tree);
    });
    let mut err = Vec::new();
    let mut code = 0;
    let check = peak_of(|| {
        let args = ["reflexio-sim", "check", file.to_str().unwrap()].map(Into::into);
        code = reflexio_sim::cli::main_with(args, &mut Vec::new(), &mut err, false);
    });
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{policies} policies; at most 50")),
        "{err}"
    );
    eprintln!("check: {check} bytes at its peak; one parse tree: {one_tree} bytes");
    // One tree, the file's text, and the little `check` keeps of the tree.
    let allowed = one_tree + one_tree / 4;
    assert!(
        check <= allowed,
        "check held {check} bytes at its peak; one parse tree of the file takes {one_tree}"
    );
}
