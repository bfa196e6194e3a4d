//! The REST side of the public contract (shared/API.md), and nothing else.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};

/// A server under test, reached only on a loopback address.
pub struct Api {
    base: Url,
    pub client: reqwest::Client,
    /// The resolved TCP address (for the WebSocket fleet).
    pub addr: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct Login {
    pub token: String,
    pub user_id: i64,
}

#[derive(Deserialize)]
struct LoginBody {
    token: String,
    user: LoginUser,
}

#[derive(Deserialize)]
struct LoginUser {
    id: i64,
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

/// Refuses anything that is not plain HTTP to a loopback host.
pub fn check_loopback(url: &Url) -> anyhow::Result<()> {
    if url.scheme() != "http" {
        bail!("--url must be http:// (got {})", url.scheme());
    }
    let ok = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if !ok {
        bail!(
            "refusing --url {url}: the benchmark only targets loopback hosts \
             (127.0.0.0/8, localhost, ::1)"
        );
    }
    Ok(())
}

pub fn http_client(max_idle: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(max_idle)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

impl Api {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let mut base = Url::parse(url).with_context(|| format!("parsing --url {url}"))?;
        check_loopback(&base)?;
        base.set_path("/");
        base.set_query(None);
        let port = base
            .port_or_known_default()
            .ok_or_else(|| anyhow!("--url has no port"))?;
        let addr = match base.host() {
            Some(url::Host::Ipv4(ip)) => SocketAddr::new(IpAddr::V4(ip), port),
            Some(url::Host::Ipv6(ip)) => SocketAddr::new(IpAddr::V6(ip), port),
            _ => ("localhost", port)
                .to_socket_addrs()?
                .find(|a| a.ip().is_loopback())
                .ok_or_else(|| anyhow!("localhost resolves to no loopback address"))?,
        };
        Ok(Self {
            base,
            client: http_client(64)?,
            addr,
        })
    }

    /// The node's URL of `path`, which may carry a query (`/api/notifications/?limit=50`).
    pub fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        u.set_path(path);
        u.set_query(query);
        u
    }

    pub fn ws_url(&self) -> String {
        let mut u = self.url("/ws/notifications/");
        // http -> ws keeps host and port; set_scheme only fails across special/non-special.
        let _ = u.set_scheme("ws");
        u.to_string()
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<(StatusCode, bytes::Bytes)> {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        let body = resp.bytes().await.with_context(|| format!("POST {path}: body"))?;
        Ok((status, body))
    }

    pub async fn register(&self, username: &str, password: &str) -> anyhow::Result<()> {
        let body = json!({"username": username, "password": password, "role": "jobseeker"});
        let (status, text) = self.post("/api/auth/register/", None, &body).await?;
        if status != StatusCode::CREATED {
            bail!("register {username}: {status} {}", snippet(&text));
        }
        Ok(())
    }

    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<Login> {
        let body = json!({"username": username, "password": password});
        let (status, text) = self.post("/api/auth/login/", None, &body).await?;
        if status != StatusCode::OK {
            bail!("login {username}: {status} {}", snippet(&text));
        }
        let parsed: LoginBody = serde_json::from_slice(&text)
            .with_context(|| format!("login {username}: unexpected body {}", snippet(&text)))?;
        Ok(Login {
            token: parsed.token,
            user_id: parsed.user.id,
        })
    }

    /// Admin: POST /api/notifications/ → the new notification's id.
    pub async fn create_notification(&self, admin: &str, user_id: i64, title: &str) -> anyhow::Result<i64> {
        let body = json!({
            "user_id": user_id,
            "title": title,
            "message": "herald-bench per-user notification",
            "notification_type": "system",
        });
        self.create("/api/notifications/", admin, &body).await
    }

    /// Admin: POST /api/global-notifications/ (level info) → the new id.
    pub async fn create_global(&self, admin: &str, title: &str) -> anyhow::Result<i64> {
        let body = json!({
            "title": title,
            "message": "herald-bench announcement",
            "level": "info",
        });
        self.create("/api/global-notifications/", admin, &body).await
    }

    /// Admin: POST `body` to `path`; a 201 answers the new object's id.
    async fn create(&self, path: &str, admin: &str, body: &Value) -> anyhow::Result<i64> {
        let (status, text) = self.post(path, Some(admin), body).await?;
        if status != StatusCode::CREATED {
            bail!("POST {path}: {status} {}", snippet(&text));
        }
        let c: Created =
            serde_json::from_slice(&text).with_context(|| format!("POST {path}: body {}", snippet(&text)))?;
        Ok(c.id)
    }

    /// GET `path` once: status and body.
    pub async fn get(
        &self,
        client: &reqwest::Client,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, bytes::Bytes)> {
        let mut req = client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        let body = resp.bytes().await.with_context(|| format!("GET {path}: body"))?;
        Ok((status, body))
    }
}

/// The first 200 characters of a response body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s: String = s.chars().take(200).collect();
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls() {
        for ok in [
            "http://127.0.0.1:18000",
            "http://127.9.9.9:1",
            "http://localhost:8000/",
            "http://[::1]:8000",
        ] {
            assert!(Api::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8000",
            "http://192.168.1.2",
            "http://example.com",
            "https://127.0.0.1:8000",
            "http://[::2]:80",
            "http://128.0.0.1",
        ] {
            assert!(Api::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ws_url_from_base() -> anyhow::Result<()> {
        let api = Api::new("http://127.0.0.1:18200/some/path?x=1")?;
        assert_eq!(api.ws_url(), "ws://127.0.0.1:18200/ws/notifications/");
        assert_eq!(api.addr, "127.0.0.1:18200".parse()?);
        assert_eq!(
            api.url("/api/notifications/?limit=50").as_str(),
            "http://127.0.0.1:18200/api/notifications/?limit=50"
        );
        assert_eq!(api.url("/healthz").as_str(), "http://127.0.0.1:18200/healthz");
        Ok(())
    }
}
