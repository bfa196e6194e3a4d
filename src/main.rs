//! The `herald` binary: reads the settings, sets up logging and runs the command (`cli`).
use std::process::ExitCode;

use clap::Parser;
use herald::{
    cli::{self, Cli},
    configuration::{self, Settings},
};

/// Argon2 allocates 19 MiB per hash. glibc's dynamic mmap threshold would then serve those
/// blocks from per-thread arenas and keep them after free: measured 2 GB resident after a few
/// hundred logins. A fixed threshold keeps every block of 1 MiB or more a mapping of its own,
/// returned to the system on free.
#[allow(unsafe_code)]
fn release_large_blocks_on_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    release_large_blocks_on_free();
    // `--help`, `--version` (stdout, 0) and usage errors (stderr, 2) end here.
    let cli = Cli::parse();
    let unknown = configuration::unknown_variables();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(errors) => {
            for line in unknown.iter().map(|u| format!("warning: {u}")).chain(errors.0) {
                eprintln!("herald: {line}");
            }
            return ExitCode::from(cli::EXIT_USAGE);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(&settings.log_level)).init();
    for warning in &unknown {
        log::warn!("{warning}");
    }
    match actix_web::rt::System::new().block_on(cli::run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
