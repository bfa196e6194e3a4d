//! The `herald` binary: subcommands, help and version, settings errors and warnings.
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::helpers::{Backend, ClusterConfig, Node, spawn_app_with};

/// `herald ARGS` with only the given `HERALD_*` variables (none inherited from the test's
/// environment), run from the checkout so `config/` is found. `HERALD_BIN` names another
/// binary to test (as for the browser tests), e.g. a copy safe from concurrent rebuilds.
fn herald(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let binary = std::env::var("HERALD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_herald").to_string());
    let mut command = Command::new(binary);
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in std::env::vars() {
        if name.starts_with("HERALD_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

fn run(args: &[&str], vars: &[(&str, &str)]) -> Output {
    herald(args, vars).stdin(Stdio::null()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server process, killed when the test ends (even by a failed assertion).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/herald.db?mode=rwc", dir.display())
}

#[test]
fn help_and_version_go_to_stdout_with_exit_0() {
    for args in [&["--help"][..], &["-h"], &["help"], &["migrate", "--help"]] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let stdout = text(&out.stdout);
        assert!(stdout.contains("Usage: herald"), "{args:?}: {stdout}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
    let stdout = text(&run(&["--help"], &[]).stdout);
    for command in ["serve", "create-admin", "migrate", "check-config"] {
        assert!(stdout.contains(command), "{stdout}");
    }
    let out = run(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), format!("herald {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let out = run(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("unrecognized subcommand 'frobnicate'"));
}

#[test]
fn each_bad_setting_is_named_with_its_value_and_exits_2_before_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    for (key, value, line) in [
        (
            "HERALD_BIND",
            "not-an-address",
            "HERALD_BIND=not-an-address: must be an address like 127.0.0.1:8000",
        ),
        (
            "HERALD_DATABASE_URL",
            "mysql://x",
            "HERALD_DATABASE_URL=mysql://x: must be sqlite:… or postgres://…",
        ),
        (
            "HERALD_DATABASE_URL",
            "sqlite::memory:",
            "HERALD_DATABASE_URL=sqlite::memory:: must name an SQLite file, not an in-memory database",
        ),
        (
            "HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS",
            "-1",
            "HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS=-1: must be > 0",
        ),
        (
            "HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS",
            "abc",
            "HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS=abc: must be a number",
        ),
        (
            "HERALD_WEBSOCKET__CLIENT_TIMEOUT_SECS",
            "10",
            "HERALD_WEBSOCKET__CLIENT_TIMEOUT_SECS=10: must exceed HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS=15",
        ),
        (
            "HERALD_LIMITS__DB_POOL_SIZE",
            "0",
            "HERALD_LIMITS__DB_POOL_SIZE=0: must be > 0",
        ),
        (
            "HERALD_LIMITS__DB_POOL_SIZE",
            "-3",
            "HERALD_LIMITS__DB_POOL_SIZE=-3: must be a whole number ≥ 0",
        ),
        (
            "HERALD_LIMITS__DB_POOL_SIZE",
            "99999999999",
            "HERALD_LIMITS__DB_POOL_SIZE=99999999999: expected an unsigned 32 bit integer",
        ),
        (
            "HERALD_AUTH__SECURE_COOKIES",
            "maybe",
            "HERALD_AUTH__SECURE_COOKIES=maybe: must be true or false",
        ),
        (
            "HERALD_REDIS_URL",
            "http://:pw@cache",
            "HERALD_REDIS_URL=http://:***@cache: must start with redis:// or rediss://, or be empty",
        ),
        (
            "HERALD_METRICS_BIND",
            "everywhere",
            "HERALD_METRICS_BIND=everywhere: must be an address like 127.0.0.1:9000, or empty",
        ),
        (
            "HERALD_METRICS_BIND",
            "127.0.0.1:8000",
            "HERALD_METRICS_BIND=127.0.0.1:8000: must not be the public port (HERALD_BIND)",
        ),
        (
            "HERALD_ADMIN_USERNAME",
            "root",
            "HERALD_ADMIN_PASSWORD is unset: HERALD_ADMIN_USERNAME=root needs it (set both, or neither)",
        ),
    ] {
        let mut vars = vec![(key, value)];
        if key != "HERALD_DATABASE_URL" {
            vars.push(("HERALD_DATABASE_URL", &url));
        }
        for args in [&[][..], &["check-config"], &["migrate"]] {
            let out = run(args, &vars);
            assert_eq!(out.status.code(), Some(2), "{args:?} {key}={value}");
            assert_eq!(text(&out.stderr), format!("herald: {line}\n"), "{args:?} {key}={value}");
            assert!(out.stdout.is_empty(), "{args:?} {key}={value}");
        }
        assert!(
            !dir.path().join("herald.db").exists(),
            "{key}={value}: the database was touched"
        );
    }
}

#[test]
fn every_bad_value_is_reported_at_once_and_secrets_never() {
    let out = run(
        &[],
        &[
            ("HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS", "-1"),
            ("HERALD_LIMITS__SOCKETS_PER_USER", "lots"),
            ("HERALD_ADMIN_USERNAME", "root"),
            ("HERALD_ADMIN_PASSWORD", "short"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "herald: HERALD_LIMITS__SOCKETS_PER_USER=lots: must be a whole number ≥ 0\n\
         herald: HERALD_ADMIN_PASSWORD=***: password must be at least 8 characters\n\
         herald: HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS=-1: must be > 0\n"
    );
}

#[test]
fn unknown_herald_variables_are_warned_about_with_the_nearest_name() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let out = run(
        &["check-config"],
        &[
            ("HERALD_DATABASE_URL", &url),
            ("HERALD_BINDD", "127.0.0.1:9"),
            ("HERALD_WEBSOCKET__HEARTBEAT", "5"),
            ("HERALD_FROBNICATE_EVERYTHING", "1"),
            // Known variables that are not settings.
            ("HERALD_ENV", "local"),
            ("HERALD_TEST_POSTGRES_URL", "postgres://x"),
            ("HERALD_BIN", "/bin/herald"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("HERALD_BINDD is not a setting (did you mean HERALD_BIND?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "HERALD_WEBSOCKET__HEARTBEAT is not a setting (did you mean HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS?)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("HERALD_FROBNICATE_EVERYTHING is not a setting\n"),
        "{stderr}"
    );
    for quiet in [
        "HERALD_ENV",
        "HERALD_TEST_POSTGRES_URL",
        "HERALD_BIN ",
        "HERALD_DATABASE_URL",
    ] {
        assert!(!stderr.contains(quiet), "{quiet} warned about: {stderr}");
    }
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
}

#[test]
fn check_config_prints_the_effective_settings_with_secrets_masked() {
    let out = run(
        &["check-config"],
        &[
            (
                "HERALD_DATABASE_URL",
                "postgres://app:db-secret-pw@db.internal:5432/herald",
            ),
            ("HERALD_REDIS_URL", "redis://:redis-secret-pw@cache:6379"),
            ("HERALD_ADMIN_USERNAME", "root"),
            ("HERALD_ADMIN_PASSWORD", "admin-secret-pw"),
            ("HERALD_METRICS_BIND", "127.0.0.1:9000"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("secret-pw"), "{stdout}");
    for line in [
        "HERALD_DATABASE_URL=postgres://app:***@db.internal:5432/herald",
        "HERALD_REDIS_URL=redis://:***@cache:6379",
        "HERALD_ADMIN_USERNAME=root",
        "HERALD_ADMIN_PASSWORD=***",
        "HERALD_METRICS_BIND=127.0.0.1:9000",
        "HERALD_BIND=127.0.0.1:8000",
        "HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS=15",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line} missing from\n{stdout}");
    }
}

#[test]
fn migrate_status_lists_pending_then_applied() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let vars = [("HERALD_DATABASE_URL", url.as_str())];
    let status = |expected: &str| {
        let out = run(&["migrate", "status"], &vars);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(!stdout.is_empty());
        assert!(
            stdout.lines().all(|l| l.starts_with(expected)),
            "every migration {expected}: {stdout}"
        );
        assert!(stdout.contains("m20261125_000001_create_tables"), "{stdout}");
    };
    status("pending");
    let out = run(&["migrate"], &vars);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("applied m20261125_000001_create_tables"));
    status("applied");
    let again = run(&["migrate"], &vars);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stdout).starts_with("0 migration(s) applied"),
        "{}",
        text(&again.stdout)
    );
}

#[actix_web::test]
async fn create_admin_command_makes_an_admin_that_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let out = run(
        &["create-admin", "root-admin"],
        &[
            ("HERALD_DATABASE_URL", &url),
            ("HERALD_ADMIN_PASSWORD", "root-pass-123"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The password as one line on stdin.
    let mut child = herald(&["create-admin", "stdin-admin"], &[("HERALD_DATABASE_URL", &url)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"stdin-pass-123\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A bad name is a usage error, before the database.
    let other = tempfile::tempdir().unwrap();
    let out = run(
        &["create-admin", "no"],
        &[
            ("HERALD_DATABASE_URL", &sqlite_url(other.path())),
            ("HERALD_ADMIN_PASSWORD", "root-pass-123"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!other.path().join("herald.db").exists());

    let app = spawn_app_with(Backend::Sqlite, |s| s.database_url = url.clone()).await;
    for (name, password) in [("root-admin", "root-pass-123"), ("stdin-admin", "stdin-pass-123")] {
        let admin = app.login(name, password).await;
        let (_, me) = app.get("/api/auth/me/", Some(&admin.token)).await;
        assert_eq!(me["role"], "admin");
    }
}

#[test]
fn a_start_without_any_admin_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let mut server = KillOnDrop(
        herald(&[], &[("HERALD_DATABASE_URL", &url), ("HERALD_BIND", "127.0.0.1:0")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = server.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("Herald listening") => break false,
            Ok(line) if line.contains("no admin account yet: make one with `herald create-admin NAME`") => {
                break true;
            }
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    drop(server);
    assert!(found, "no hint among {seen:?}");
}

#[actix_web::test]
async fn sigterm_says_going_away_to_sockets_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        database_url: format!("sqlite://{}/herald.db?mode=rwc", dir.path().display()),
        redis_url: String::new(),
        channel_prefix: "herald".into(),
    };
    let mut node = Node::start(&config).await;
    let user = node.new_user().await;
    let mut socket = node.ws(&user).await;
    let n = node.notify(user.id, "before the signal").await;
    assert_eq!(socket.json().await["notification"]["id"], n["id"]);

    let status = node.terminate(Duration::from_secs(15)).await;
    assert_eq!(socket.close_code(Duration::from_secs(5)).await, Some(1001));
    assert!(status.success(), "exit status {status}");
}

#[test]
fn an_admin_password_without_its_username_stops_serving_before_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let out = run(
        &["serve"],
        &[
            ("HERALD_DATABASE_URL", &url),
            ("HERALD_ADMIN_PASSWORD", "root-pass-123"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "herald: HERALD_ADMIN_USERNAME is unset: HERALD_ADMIN_PASSWORD needs it (set both, or neither)\n"
    );
    assert!(!dir.path().join("herald.db").exists());
}

#[actix_web::test]
async fn an_admin_password_of_digits_is_taken_exactly_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let port = crate::helpers::free_port();
    let bind = format!("127.0.0.1:{port}");
    let _server = KillOnDrop(
        herald(
            &[],
            &[
                ("HERALD_DATABASE_URL", &url),
                ("HERALD_BIND", &bind),
                ("HERALD_ADMIN_USERNAME", "007"),
                ("HERALD_ADMIN_PASSWORD", "000123456789"),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let api = crate::helpers::Api {
        address: format!("http://{bind}"),
        port,
        http: reqwest::Client::new(),
        admin_token: String::new(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while api.http.get(api.url("/healthz")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the server never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin = api.login("007", "000123456789").await;
    let (_, me) = api.get("/api/auth/me/", Some(&admin.token)).await;
    assert_eq!(me["username"], "007");
    assert_eq!(me["role"], "admin");
}
