//! Hostile manifests are refused within bounded memory: a 64 MiB YAML scalar is stopped after
//! `MAX_SCALAR_SOURCE_BYTES` of it were read (it once loaded whole, at 870 MB RSS for 200 MB),
//! and a billion-laughs file after the alias budget. A global allocator that tracks the live
//! bytes of the calling thread (this test binary only) measures the peak while each loads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use cpra_engine::limits::MAX_SCALAR_SOURCE_BYTES;
use cpra_engine::manifest::{load_path, LoadOptions, LoadReport};

struct Tracking;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: the thread-locals may be gone while a thread is torn down.
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = LIVE.try_with(|l| {
                l.set(l.get() + delta);
                let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
            });
        }
    });
}

// SAFETY: every method forwards its arguments unchanged to the system allocator, which keeps
// GlobalAlloc's contract; the tracking around it only touches thread-locals (`try_with`, so it
// neither allocates nor panics while a thread is torn down).
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        // SAFETY: our caller keeps `alloc`'s contract (non-zero size); passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: `ptr` came from `alloc` or `realloc` here, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        // SAFETY: `ptr` came from `System` with `layout`; the caller keeps realloc's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Loads `text` from a file; the report and the most bytes live at once during the load.
fn load_watched(text: &[u8]) -> (LoadReport, usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::File::create(&path).unwrap().write_all(text).unwrap();
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    WATCHING.with(|w| w.set(true));
    let report = load_path(&path, &LoadOptions::default(), |_| {}).unwrap();
    WATCHING.with(|w| w.set(false));
    (report, PEAK.with(Cell::get) as usize)
}

#[test]
fn a_huge_yaml_value_is_refused_before_it_is_held() {
    let mut text = b"monitors:\n  - id: m\n    name: ".to_vec();
    text.resize(text.len() + (64 << 20), b'a');
    text.extend_from_slice(b"\n    pulse_check: {type: tcp, config: {host: h, port: 1}}\n");
    let (report, peak) = load_watched(&text);
    drop(text);
    let p = &report.problems.kept[0];
    assert!(p.message.starts_with("more than 8 MiB of input without a value ending"), "{p}");
    // What was read of the value (at most the source bound) in saphyr's growing buffer, the
    // read buffers, the scanner's line buffer: about twice the source bound (17 MB measured),
    // not the 64 MiB value.
    assert!(peak < 4 * MAX_SCALAR_SOURCE_BYTES, "peak {peak} bytes");
}

#[test]
fn a_billion_laughs_file_is_refused_within_the_alias_budget() {
    let mut text = String::from("x-a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..4 {
        let aliases = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("x-a{i}: &a{i} [{aliases}]\n"));
    }
    // 10,000 monitors each naming a3 (11,111 nodes) for their tags: 111 million nodes.
    text.push_str("monitors:\n");
    for i in 0..10_000 {
        text.push_str(&format!(
            "  - {{name: m{i}, tags: *a3, pulse_check: {{type: tcp, config: {{host: h, port: 1}}}}}}\n"
        ));
    }
    let (report, peak) = load_watched(text.as_bytes());
    let last = report.problems.kept.last().unwrap();
    assert!(last.message.contains("pass the file's alias budget"), "{last}");
    assert!(report.monitors_seen < 200, "stopped early: {}", report.monitors_seen);
    // A tree of one monitor (11,111 nodes of about 56 bytes) and the anchors' copies: a few
    // MB (3 MB measured), nothing near the budget's million nodes held at once, let alone the
    // 111 million written out.
    assert!(peak < 16 << 20, "peak {peak} bytes");
}
