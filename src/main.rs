//! The `mlv` binary: parse arguments, run the command, map errors to exit codes.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    bound_allocator_slack();
    cli::main()
}

/// glibc raises its mmap threshold each time a large block is freed, after which multi-MiB
/// transfer buffers come from per-thread arenas that keep their pages: a push of 5 MiB objects
/// then peaked at over 100 MiB of RSS with 32 MiB of buffers in flight. A fixed threshold keeps
/// blocks of 1 MiB and more in their own mappings, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_allocator_slack() {
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_allocator_slack() {}
