//! The `herald` binary: reads the settings, sets up logging and runs the command (`cli`).
use std::process::ExitCode;

use clap::Parser;
use herald::{
    cli::{self, Cli},
    configuration::{self, Settings},
};

fn main() -> ExitCode {
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
