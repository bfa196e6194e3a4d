//! Limits against abuse (`API.md`, "Limits against abuse"): who the client is, and what one
//! client, user or address may take of the server (failed logins, registrations, connections,
//! sockets).
pub mod client_addr;
pub mod connections;
pub mod keyed;
pub mod login;
pub mod request_timeout;
pub mod sockets;

use std::{net::IpAddr, time::Duration};

pub use client_addr::ClientAddr;

use crate::{configuration::LimitSettings, error::ApiError};

/// The per-client HTTP limits a node keeps in memory.
pub struct HttpLimits {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    pub login: login::LoginLimiter,
    pub registrations: keyed::KeyedLimiter<IpAddr>,
}

impl HttpLimits {
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            // Validated at load (`Settings::validate`); nothing unparsable gets here.
            trusted_proxies: settings.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect(),
            login: login::LoginLimiter::new(
                settings.login_failures_per_username_per_minute,
                settings.login_failures_per_address_per_minute,
            ),
            registrations: keyed::KeyedLimiter::per_minute(settings.registrations_per_address_per_minute),
        }
    }
}

/// The 429 for a limit, with whole seconds to wait (rounded up).
pub fn too_many(retry_after: Duration, message: &str) -> ApiError {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    ApiError::TooManyRequests {
        retry_after_secs: secs,
        message: message.into(),
    }
}
