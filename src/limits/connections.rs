//! Concurrent TCP connections per client address (`limits.connections_per_address`): past it a
//! new connection is closed as it is accepted, before any byte of it is read, so one address
//! cannot take every file descriptor of a node.
//!
//! HTTP and WebSocket connections count alike. A connection from a trusted proxy
//! (`limits.trusted_proxies`) is not capped: its clients are many, and are told apart only later
//! by `X-Forwarded-For`. A connection holds an [`AddressSlot`] for as long as it is served,
//! however it ends (closed by either side, timed out, dropped at shutdown): the slot gives its
//! place back when dropped. An upgraded WebSocket outlives the HTTP dispatcher that accepted it,
//! so the upgrade takes a slot of its own for the socket's life ([`ConnectionCounts::hold`]).
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

use actix_service::{Service, ServiceFactory, apply_fn_factory};
use actix_web::rt::net::TcpStream;

use crate::configuration::LimitSettings;

/// Shards of the count: connections from different addresses rarely meet on one lock.
const SHARDS: usize = 16;

/// Open connections per client address on this node.
pub struct ConnectionCounts {
    cap: u32,
    trusted: Vec<IpAddr>,
    shards: Vec<Mutex<HashMap<IpAddr, u32>>>,
}

/// What becomes of a new connection.
pub enum Admission {
    /// Served, holding this place until it ends.
    Counted(AddressSlot),
    /// Served, not counted (a trusted proxy, or no limit).
    Uncounted,
    /// Closed at once: its address has as many connections as it may.
    Refused,
}

/// One counted connection; dropping it gives the place back.
pub struct AddressSlot {
    counts: Arc<ConnectionCounts>,
    ip: IpAddr,
}

impl ConnectionCounts {
    /// The cap and trusted proxies of `limits`; an entry of `trusted_proxies` that is not an IP
    /// address is an error for the operator.
    pub fn new(limits: &LimitSettings) -> Result<Arc<Self>, String> {
        let trusted = limits
            .trusted_proxies
            .iter()
            .map(|proxy| {
                proxy
                    .trim()
                    .parse::<IpAddr>()
                    .map(|ip| ip.to_canonical())
                    .map_err(|_| format!("invalid configuration: trusted proxy {proxy:?} is not an IP address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Self {
            cap: limits.connections_per_address,
            trusted,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }))
    }

    fn shard(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, u32>> {
        let index = match ip {
            IpAddr::V4(v4) => v4.octets()[3] as usize,
            IpAddr::V6(v6) => v6.octets()[15] as usize,
        };
        &self.shards[index % SHARDS]
    }

    /// Whether connections from `ip` are counted at all.
    fn counted(&self, ip: IpAddr) -> Option<IpAddr> {
        let ip = ip.to_canonical();
        (self.cap > 0 && !self.trusted.contains(&ip)).then_some(ip)
    }

    /// Whether a new connection from `ip` may be served.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let Some(ip) = self.counted(ip) else {
            return Admission::Uncounted;
        };
        let mut counts = self.shard(&ip).lock().unwrap_or_else(PoisonError::into_inner);
        let open = counts.entry(ip).or_insert(0);
        if *open >= self.cap {
            return Admission::Refused;
        }
        *open += 1;
        Admission::Counted(self.slot(ip))
    }

    /// A place for a connection already admitted, which goes on beyond its first slot (an
    /// upgraded WebSocket): never refused.
    pub fn hold(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let ip = self.counted(ip)?;
        *self
            .shard(&ip)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(ip)
            .or_insert(0) += 1;
        Some(self.slot(ip))
    }

    fn slot(self: &Arc<Self>, ip: IpAddr) -> AddressSlot {
        AddressSlot {
            counts: self.clone(),
            ip,
        }
    }

    /// Connections from `ip` counted now.
    pub fn open(&self, ip: IpAddr) -> u32 {
        let ip = ip.to_canonical();
        let counts = self.shard(&ip).lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .shard(&self.ip)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = counts.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves each accepted connection with `inner` if its address has room, holding its slot until
/// `inner` is done with it; otherwise closes it at once, unread.
pub fn admit_connections<F>(
    counts: Arc<ConnectionCounts>,
    inner: F,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = F::Error, InitError = F::InitError>
where
    F: ServiceFactory<TcpStream, Config = (), Response = ()>,
    F::Service: 'static,
{
    apply_fn_factory(inner, move |io: TcpStream, service: &F::Service| {
        let admitted = match io.peer_addr() {
            Ok(peer) => counts.admit(peer.ip()),
            // Not connected any more: serving it fails at once anyway.
            Err(_) => Admission::Uncounted,
        };
        let served = match admitted {
            Admission::Counted(slot) => Some((Some(slot), service.call(io))),
            Admission::Uncounted => Some((None, service.call(io))),
            Admission::Refused => {
                log::debug!("connection refused: too many connections from one address");
                drop(io);
                None
            }
        };
        async move {
            match served {
                Some((_slot, call)) => call.await,
                None => Ok(()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cap: u32, trusted: &[&str]) -> LimitSettings {
        let mut limits = crate::configuration::Settings::load()
            .expect("the default settings")
            .limits;
        limits.connections_per_address = cap;
        limits.trusted_proxies = trusted.iter().map(|s| s.to_string()).collect();
        limits
    }

    #[test]
    fn an_address_gets_its_cap_and_its_places_back() {
        let counts = ConnectionCounts::new(&limits(2, &[])).expect("valid");
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let a = counts.admit(ip);
        let b = counts.admit(ip);
        assert!(matches!((&a, &b), (Admission::Counted(_), Admission::Counted(_))));
        assert!(matches!(counts.admit(ip), Admission::Refused), "the third is refused");
        // The same address written as IPv4-mapped IPv6 is the same client.
        let mapped = "::ffff:10.0.0.1".parse().expect("ip");
        assert!(matches!(counts.admit(mapped), Admission::Refused));
        let other = counts.admit("10.0.0.2".parse().expect("ip"));
        assert!(matches!(other, Admission::Counted(_)), "another address");
        let held = counts.hold(ip);
        assert_eq!(counts.open(ip), 3, "an upgrade's hold is never refused");
        drop((a, b, held));
        assert_eq!(counts.open(ip), 0);
        assert!(matches!(counts.admit(ip), Admission::Counted(_)));
    }

    #[test]
    fn trusted_proxies_and_a_zero_cap_are_not_counted() {
        let counts = ConnectionCounts::new(&limits(1, &["127.0.0.1"])).expect("valid");
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        for _ in 0..3 {
            assert!(matches!(counts.admit(proxy), Admission::Uncounted));
        }
        let off = ConnectionCounts::new(&limits(0, &[])).expect("valid");
        assert!(matches!(off.admit(proxy), Admission::Uncounted));
        assert!(ConnectionCounts::new(&limits(1, &["proxy.example"])).is_err());
    }
}
