//! The client's address: the peer's, or behind a trusted proxy the address that proxy forwarded.
use std::{
    future::{Ready, ready},
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header::HeaderMap, web};

use crate::{error::ApiError, state::AppState};

/// The client a request comes from, as every per-address limit keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// The client's address: `peer`, unless `peer` is one of `trusted` proxies; then the rightmost
/// address of `X-Forwarded-For` that is not a trusted proxy. Entries left of that one were
/// written by the client itself and are never believed.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    // Several headers are one list, in order (RFC 9110, 5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // Garbage means the chain can no longer be followed: the last hop known stays the client.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an IP, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

impl FromRequest for ClientAddr {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let peer = req.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.http_limits.trusted_proxies.as_slice())
            .unwrap_or_default();
        ready(Ok(ClientAddr(client_ip(peer, req.headers(), trusted))))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(v).expect("header"),
            );
        }
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let headers = forwarded(&["9.9.9.9"]);
        assert_eq!(client_ip(ip("1.2.3.4"), &headers, &[]), ip("1.2.3.4"));
        assert_eq!(client_ip(ip("1.2.3.4"), &headers, &[ip("10.0.0.1")]), ip("1.2.3.4"));
    }

    #[test]
    fn a_trusted_proxy_names_the_rightmost_untrusted_hop() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The client wrote 6.6.6.6 itself; the first proxy appended the real client, 5.5.5.5.
        let headers = forwarded(&["6.6.6.6, 5.5.5.5", "10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &trusted), ip("5.5.5.5"));
    }

    #[test]
    fn a_trusted_proxy_without_the_header_is_the_client() {
        let trusted = [ip("10.0.0.1")];
        assert_eq!(client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_known_hop() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let headers = forwarded(&["5.5.5.5, not-an-ip, 10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn ports_and_mapped_addresses_are_understood() {
        let trusted = [ip("10.0.0.1")];
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &forwarded(&["[2001:db8::1]:4711"]), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &forwarded(&["7.7.7.7:80"]), &trusted),
            ip("7.7.7.7")
        );
    }

    #[test]
    fn only_trusted_hops_yield_the_farthest_one() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_ip(ip("10.0.0.1"), &forwarded(&["10.0.0.2"]), &trusted),
            ip("10.0.0.2")
        );
    }
}
