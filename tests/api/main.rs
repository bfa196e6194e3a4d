//! Integration tests: each starts the real server (random port, fresh database) and talks to it
//! over HTTP and WebSocket as a client would. Scenarios listed in `both_backends!` run on SQLite
//! in `cargo test` and on PostgreSQL with `--include-ignored` (needs the local PostgreSQL).
//! `module_graph` reads the sources instead: no import cycle between the server's files.
#![allow(clippy::unwrap_used)]

/// Generates a SQLite test and an ignored PostgreSQL test for each `async fn name(Backend)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[ignore = "needs PostgreSQL/Redis"]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

mod admin;
mod auth;
mod catch_up;
mod catch_up_chaos;
mod catch_up_cluster;
mod cli;
mod closed_sets;
mod cluster;
mod errors;
mod faults;
mod fuzz_bodies;
mod global_notifications;
mod helpers;
mod http_abuse;
mod http_conventions;
mod inbox;
mod live_delivery;
mod metrics;
mod module_graph;
mod notifications;
mod openapi;
mod socket_abuse;
mod websocket_protocol;
