//! `herald` serves; `herald create-admin USERNAME` creates or resets an admin account.
use std::{io::BufRead, process::ExitCode, sync::Arc};

use herald::{
    auth::AuthService,
    configuration::Settings,
    startup::{self, Application},
};
use migration::{Migrator, MigratorTrait};

const USAGE: &str = "usage: herald                      serve (settings: config/ and HERALD_* variables)
       herald create-admin USERNAME  create or reset an admin; password from HERALD_ADMIN_PASSWORD or stdin";

/// Argon2 allocates 19 MiB per hash. glibc's dynamic mmap threshold would then serve those
/// blocks from per-thread arenas and keep them after free: measured 2 GB resident after a few
/// hundred logins. A fixed threshold keeps every block of 1 MiB or more a mapping of its own,
/// returned to the system on free.
fn release_large_blocks_on_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    release_large_blocks_on_free();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("herald: {e}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(&settings.log_level)).init();

    let system = actix_web::rt::System::new();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => system.block_on(serve(settings)),
        ["create-admin", username] => system.block_on(create_admin(settings, username)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let app = Application::build(settings.clone()).await.map_err(|e| e.to_string())?;
    log::info!(
        "Herald listening on http://{}:{}",
        settings.bind_addr()?.ip(),
        app.port()
    );
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

async fn create_admin(settings: Settings, username: &str) -> Result<(), String> {
    let password = match std::env::var("HERALD_ADMIN_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            eprintln!("password for {username} (one line on stdin):");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let db = startup::connect_database(&settings).await.map_err(|e| e.to_string())?;
    Migrator::up(&db, None)
        .await
        .map_err(|e| format!("database migration failed: {e}"))?;
    let auth = Arc::new(AuthService::new(db, settings.auth.token_lifetime_hours));
    startup::ensure_admin(&auth, username, &password)
        .await
        .map_err(|e| e.to_string())?;
    println!("admin {username} is ready");
    Ok(())
}
