//! The `Host` rule of an admin listener without a token: only requests
//! addressed to a loopback name or address are answered, so that a web
//! page whose name an attacker points at 127.0.0.1 (DNS rebinding) cannot
//! read the listener from a browser on the same machine: the browser sends
//! the attacker's name in `Host`, and gets a 421.
//!
//! Accepted, with or without a port: `localhost` (any case, with or
//! without the final dot), an IPv4 address in 127.0.0.0/8 written as four
//! decimal numbers, `[::1]` (or an IPv4-mapped loopback). A request with no
//! `Host` at all (HTTP/1.0 health checkers) is accepted: a browser always
//! sends one.

use std::net::{Ipv4Addr, Ipv6Addr};

use http::Request;

/// Whether `request` is addressed to loopback: its `Host` header and, in
/// the absolute form (`GET http://host/ HTTP/1.1`), its target's host.
pub(super) fn is_loopback_request<B>(request: &Request<B>) -> bool {
    let mut hosts = request.headers().get_all(http::header::HOST).iter();
    let header_ok = match (hosts.next(), hosts.next()) {
        (None, _) => true,
        (Some(host), None) => host.to_str().is_ok_and(is_loopback_host),
        // Two Host headers: which one a proxy used is anyone's guess.
        (Some(_), Some(_)) => false,
    };
    let target_ok = request
        .uri()
        .authority()
        .is_none_or(|authority| is_loopback_host(authority.as_str()));
    header_ok && target_ok
}

/// Whether `host` (`name[:port]`) names loopback.
pub(super) fn is_loopback_host(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok
            && inside.parse::<Ipv6Addr>().is_ok_and(|ip| {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            });
    }
    let name = match host.split_once(':') {
        Some((name, port)) if is_port(port) => name,
        Some(_) => return false,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_with_or_without_a_port() {
        for host in [
            "localhost",
            "LocalHost:9090",
            "localhost.",
            "localhost.:9090",
            "127.0.0.1",
            "127.0.0.1:9090",
            "127.255.10.3:80",
            "[::1]",
            "[::1]:9090",
            "[0:0:0:0:0:0:0:1]:1",
            "[::ffff:127.0.0.1]:9090",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for host in [
            "",
            "attacker.example",
            "attacker.example:9090",
            "localhost.attacker.example",
            "evil.localhost",
            "localhost:",
            "localhost:99999",
            "localhost:90a",
            "localhost:9090:1",
            "127.1",
            "0177.0.0.1",
            "128.0.0.1",
            "10.0.0.5:9090",
            "0.0.0.0:9090",
            "[::]:9090",
            "[::2]",
            "[::1",
            "[::1]x",
            "[::1]:",
            "::1",
            "[::ffff:10.0.0.1]",
            "localhost@attacker.example",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    fn request(target: &str, hosts: &[&str]) -> Request<()> {
        let mut builder = Request::builder().uri(target);
        for host in hosts {
            builder = builder.header(http::header::HOST, *host);
        }
        builder.body(()).expect("request")
    }

    #[test]
    fn the_header_and_an_absolute_target_must_both_be_loopback() {
        assert!(is_loopback_request(&request(
            "/metrics",
            &["127.0.0.1:9090"]
        )));
        assert!(
            is_loopback_request(&request("/metrics", &[])),
            "HTTP/1.0, no Host"
        );
        assert!(!is_loopback_request(&request(
            "/metrics",
            &["rebound.example:9090"]
        )));
        assert!(!is_loopback_request(&request(
            "/metrics",
            &["localhost", "rebound.example"]
        )));
        assert!(!is_loopback_request(&request(
            "http://rebound.example/metrics",
            &["localhost"]
        )));
        assert!(is_loopback_request(&request(
            "http://localhost:9090/metrics",
            &["localhost:9090"]
        )));
    }
}
