//! The `herald` command line: its subcommands (clap) and what each does.
//!
//! Exit codes: 0 done; 1 a runtime failure (database, port, ...); 2 a usage or configuration
//! error, reported before anything is touched.
use std::{io::BufRead, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::{
    auth::AuthService,
    configuration::Settings,
    domain::{Password, Username},
    startup::{self, Application},
};

/// Exit code of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// Herald, a real-time notification server (REST + WebSocket).
///
/// Settings come from config/default.toml, config/$HERALD_ENV.toml and HERALD_* variables
/// (see `herald check-config`).
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
pub struct Cli {
    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve until SIGINT/SIGTERM (the default).
    Serve,
    /// Create an admin account, or reset its password and role. The password is read from
    /// HERALD_ADMIN_PASSWORD, else as one line on stdin.
    CreateAdmin {
        /// The admin's username (3-150 of letters, digits, '_', '.', '-').
        name: String,
    },
    /// Apply the pending database migrations, or list them (`migrate status`).
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Print the effective settings as HERALD_* lines, secrets masked, and exit.
    CheckConfig,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// List every migration as applied or pending, without changing anything.
    Status,
}

/// Why a command failed: a usage error (exit 2) or a runtime failure (exit 1).
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    Runtime(String),
}

impl Failure {
    /// Prints the failure and answers the exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Usage(message) => {
                eprintln!("herald: {message}");
                ExitCode::from(EXIT_USAGE)
            }
            Failure::Runtime(message) => {
                eprintln!("herald: {message}");
                ExitCode::FAILURE
            }
        }
    }
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

/// Runs `command` (serve when none) to the end.
pub async fn run(command: Option<Command>, settings: Settings) -> Result<(), Failure> {
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::CreateAdmin { name } => create_admin(settings, &name).await,
        Command::Migrate { action: None } => migrate(settings).await,
        Command::Migrate {
            action: Some(MigrateAction::Status),
        } => migrate_status(settings).await,
        Command::CheckConfig => {
            for line in settings.masked() {
                println!("{line}");
            }
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> Result<(), Failure> {
    if let Some(problem) = settings.admin_pair_problem() {
        return Err(Failure::Usage(problem));
    }
    let ip = settings.bind_addr().map_err(Failure::Usage)?.ip();
    let app = Application::build(settings).await.map_err(runtime)?;
    log::info!("Herald listening on http://{ip}:{}", app.port());
    app.run_until_stopped().await.map_err(runtime)
}

async fn create_admin(settings: Settings, name: &str) -> Result<(), Failure> {
    let username = Username::parse(name).map_err(|e| Failure::Usage(format!("{name}: {e}")))?;
    let password = match std::env::var("HERALD_ADMIN_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            eprintln!("password for {name} (one line on stdin):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(runtime)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let password = Password::parse(&password).map_err(|e| Failure::Usage(e.to_string()))?;
    let db = startup::connect_database(&settings).await.map_err(runtime)?;
    Migrator::up(&db, None)
        .await
        .map_err(|e| Failure::Runtime(format!("database migration failed: {e}")))?;
    let auth = Arc::new(AuthService::new(db, settings.auth.token_lifetime_hours));
    startup::ensure_admin(&auth, username.as_str(), password.expose())
        .await
        .map_err(runtime)?;
    println!("admin {name} is ready");
    Ok(())
}

async fn migrate(settings: Settings) -> Result<(), Failure> {
    let db = startup::connect_database(&settings).await.map_err(runtime)?;
    let pending = Migrator::get_pending_migrations(&db).await.map_err(runtime)?;
    Migrator::up(&db, None)
        .await
        .map_err(|e| Failure::Runtime(format!("database migration failed: {e}")))?;
    for migration in &pending {
        println!("applied {}", migration.name());
    }
    println!("{} migration(s) applied; the database is up to date", pending.len());
    Ok(())
}

async fn migrate_status(settings: Settings) -> Result<(), Failure> {
    let db = startup::connect_database(&settings).await.map_err(runtime)?;
    // Read-only: listing does not even create the migrations table.
    let migrations = Migrator::get_migration_with_status_read_only(&db)
        .await
        .map_err(runtime)?;
    for migration in &migrations {
        // `Applied` / `Pending` (the status type is not re-exported by the migration crate).
        let status = migration.status().to_string().to_lowercase();
        println!("{status:<8} {}", migration.name());
    }
    Ok(())
}
