//! The process allocator's policy: mimalloc without transparent huge pages.
//!
//! mimalloc asks the kernel for transparent huge pages (`madvise(MADV_HUGEPAGE)`) on the
//! arenas it reserves, so a 4 KiB page touched inside an aligned 2 MiB region commits the whole
//! 2 MiB. A shard's memory is a few large tables and many small, sparse allocations, so with
//! huge pages `cpra run` held about 490 MiB per shard for a single monitor (a 64-core server:
//! 31 GiB before its first check). Without them the same run holds tens of MiB, and the
//! scheduler benchmark (1M monitors, where the TLB would matter most) is no slower within the
//! noise of the machine measured; see docs/benchmarks/memory.md for both measurements.
//!
//! What it is for: being called first thing in `main` of every binary that uses mimalloc as
//! its global allocator. What it is not for: choosing the allocator (each binary's
//! `#[global_allocator]` does that).

/// The environment variable through which mimalloc reads its own huge-page option. When the
/// operator sets it, their choice wins: it is how the benchmarks measure both policies.
pub const THP_OVERRIDE_ENV: &str = "MIMALLOC_ALLOW_THP";

/// mimalloc's `mi_option_allow_thp` (its position in `mi_option_t` of mimalloc v3's
/// `mimalloc.h`; libmimalloc-sys exports no constant for it). A wrong index would set another
/// option, so the test below reads the option back through mimalloc itself.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Sets the policy: no transparent huge pages for this process, unless
/// [`THP_OVERRIDE_ENV`] is set. Call before anything sizeable is allocated (first line of
/// `main`); later calls are harmless.
pub fn set_policy() {
    if std::env::var_os(THP_OVERRIDE_ENV).is_some() {
        return;
    }
    // SAFETY: mi_option_set stores a value in mimalloc's option table; it takes no pointers.
    // It is called from main before any other thread exists, as its "not thread safe" note
    // asks.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
    // mimalloc's own handling of MIMALLOC_ALLOW_THP=0 also disables THP for the process, which
    // covers memory it reserved before `main` (its arena) and kernels whose THP mode is
    // `always` (where no madvise is needed to get huge pages). The flag is inherited by the
    // intervention commands CPRA starts; they are short-lived and small.
    // SAFETY: prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) takes no pointers and only sets a flag of
    // this process's memory map; a failure (an old kernel) leaves huge pages as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Gives what the calling thread freed back to the kernel now (mimalloc's `mi_collect`), rather
/// than when mimalloc next purges. Called once start-up is over, on the thread that loaded the
/// manifest: the loader's transient memory (parse buffers, the set of ids, the partition into
/// shards) is freed by then, and would otherwise stay resident beside the plan (about 15 MiB at
/// a million monitors, docs/benchmarks/memory.md).
pub fn release_freed_memory() {
    // SAFETY: mi_collect takes no pointers; it only walks mimalloc's own heap of this thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Whether transparent huge pages are now disabled for this process (the kernel's flag).
pub fn thp_disabled() -> bool {
    // SAFETY: prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) takes no pointers and reads a flag.
    unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_names_mimallocs_huge_page_option() {
        // Options 42, 43, 44 of mimalloc v3 are page_cross_thread_max_reclaim (32),
        // allow_thp (1) and minimal_purge_size (0): their defaults fingerprint the position.
        // A mimalloc upgrade that moves the option fails here, not silently in production.
        if std::env::var_os(THP_OVERRIDE_ENV).is_some() {
            return;
        }
        // SAFETY: mi_option_get takes no pointers and only reads mimalloc's option table.
        let defaults = [
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ALLOW_THP - 1) },
            // SAFETY: as above.
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ALLOW_THP) },
            // SAFETY: as above.
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ALLOW_THP + 1) },
        ];
        assert_eq!(defaults, [32, 1, 0]);
    }
}
