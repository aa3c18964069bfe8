//! Transparent huge pages for repro's own process: off while it does data work.
//!
//! Owns: turning huge pages off for the process (`prctl(PR_SET_THP_DISABLE)`) in the commands
//! that run data stages or fits, and telling the engine what the commands it starts should get
//! back. Deliberately does not own: the allocator's other settings (`main`) or starting
//! processes (the engine's executor restores the setting in each child).
//!
//! Why: mimalloc advises huge pages for the memory it maps, and on the benchmark machine (a VM
//! whose memory is mostly page cache) each fresh huge page cost a compaction and a 2 MiB clear.
//! A 10M-row fixed-effects fit spent 2-3 s of system time on them against 0.4-1 s with ordinary
//! pages, at equal user time; the cold default pipeline 2.1-2.5 s against 0.8-0.9 s (user time
//! 0.6 s higher, peak memory 50-100 MB lower).

/// Turns huge pages off for this process and returns whether they were off already (what child
/// processes must get back). Failure (an old kernel) only costs speed.
pub fn no_huge_pages() -> bool {
    // SAFETY: PR_GET/SET_THP_DISABLE take integer arguments only and change no memory.
    let before = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    before == 1
}

/// [`no_huge_pages`] for a command that starts the pipeline's command stages: they start with
/// the setting repro was started with.
pub fn no_huge_pages_but_in_children() {
    let before = no_huge_pages();
    repro_engine::executor::children_disable_huge_pages(before);
}
