//! The process's allocator, and when it is asked to give freed memory back.
//!
//! mimalloc, not glibc's malloc. With glibc each worker thread's arena kept the holes left
//! between the sockets' long-lived pieces by their handshakes' short-lived buffers: 161 MB
//! resident at 15,000 idle sockets (9.6 KiB each, 3.6 of them in use); mimalloc, which keeps
//! each size class in pages of its own, 74 MB (BENCHMARKS.md, "Memory per socket: the
//! allocator"). Built without transparent huge pages (`no_thp`): with them each thread's first
//! touch of a 2 MiB region made all of it resident, 20 MB more for an idle server. Declared in
//! the library, so the tests run the server on the allocator it runs on in production.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gives the memory this thread has freed back to the system now. For Argon2's 19 MiB per
/// hash: mimalloc would keep them until the blocking thread that freed them, by then idle,
/// allocated again.
#[allow(unsafe_code)]
pub fn release_freed() {
    // SAFETY: mi_collect only walks mimalloc's own free lists and arenas; it may be called from
    // any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(test)]
mod tests {
    fn resident_mib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
            / 1024
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn memory_freed_by_a_thread_goes_back_to_the_system_once_released() {
        const MIB: usize = 1 << 20;
        // On a thread of its own, as a hash runs on a blocking thread.
        let (peak, after) = std::thread::spawn(|| {
            let block = vec![7u8; 256 * MIB];
            let peak = resident_mib();
            drop(std::hint::black_box(block));
            super::release_freed();
            (peak, resident_mib())
        })
        .join()
        .expect("the thread ran");
        assert!(
            after + 200 <= peak,
            "256 MiB freed and released: {peak} MiB resident before, {after} MiB after"
        );
    }
}
