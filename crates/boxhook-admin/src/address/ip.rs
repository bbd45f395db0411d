//! Which addresses are public: Box delivers only to "a publicly accessible"
//! address, so every special-purpose range of IANA's IPv4 and IPv6
//! registries that is not globally reachable is refused, each with its name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `addr` is not a public address, or `None` when it is.
///
/// ```
/// use boxhook_admin::address::non_public_reason;
///
/// assert_eq!(non_public_reason("127.0.0.1".parse()?), Some("loopback"));
/// assert_eq!(non_public_reason("100.64.1.2".parse()?), Some("carrier-grade NAT (100.64.0.0/10)"));
/// assert_eq!(non_public_reason("::ffff:10.0.0.1".parse()?), Some("private (10.0.0.0/8)"));
/// assert_eq!(non_public_reason("93.184.216.34".parse()?), None);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[must_use]
pub fn non_public_reason(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// `addr` is in `base/len`.
fn in_v4(addr: Ipv4Addr, base: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX
        .checked_shl(32_u32.saturating_sub(len))
        .unwrap_or(0);
    u32::from(addr) & mask == u32::from(Ipv4Addr::from(base)) & mask
}

/// `addr` is in `base/len`.
fn in_v6(addr: Ipv6Addr, base: [u16; 8], len: u32) -> bool {
    let mask = u128::MAX
        .checked_shl(128_u32.saturating_sub(len))
        .unwrap_or(0);
    u128::from(addr) & mask == u128::from(Ipv6Addr::from(base)) & mask
}

/// The IPv4 ranges, most specific first (IANA IPv4 Special-Purpose Address
/// Registry, RFC 6890 and its updates).
const V4: &[([u8; 4], u32, &str)] = &[
    ([255, 255, 255, 255], 32, "broadcast"),
    ([0, 0, 0, 0], 8, "unspecified (0.0.0.0/8, \"this network\")"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
    ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
    ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
    ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
    (
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    (
        [192, 88, 99, 0],
        24,
        "6to4 relay anycast (192.88.99.0/24, deprecated)",
    ),
    ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

/// The IPv6 ranges, most specific first (IANA IPv6 Special-Purpose Address
/// Registry); the v4-mapped range is judged by its IPv4 address.
const V6: &[([u16; 8], u32, &str)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified (::)"),
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (::1)"),
    ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (100::/64)"),
    (
        [0x2001, 0x0db8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (2001:db8::/32)",
    ),
    (
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (3fff::/20)",
    ),
    (
        [0x2001, 0x0002, 0, 0, 0, 0, 0, 0],
        48,
        "benchmarking (2001:2::/48)",
    ),
    (
        [0x2001, 0x0010, 0, 0, 0, 0, 0, 0],
        28,
        "ORCHID (2001:10::/28, deprecated)",
    ),
    (
        [0x0064, 0xff9b, 0x0001, 0, 0, 0, 0, 0],
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique local (fc00::/7)"),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
    (
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "site-local (fec0::/10, deprecated)",
    ),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (ff00::/8)"),
];

fn v4_reason(addr: Ipv4Addr) -> Option<&'static str> {
    V4.iter()
        .find(|(base, len, _)| in_v4(addr, *base, *len))
        .map(|(_, _, reason)| *reason)
}

fn v6_reason(addr: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = addr.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    if let Some((_, _, reason)) = V6.iter().find(|(base, len, _)| in_v6(addr, *base, *len)) {
        return Some(reason);
    }
    if !in_v6(addr, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some("not global unicast (outside 2000::/3)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_is_named_and_its_edges_are_right() {
        let table: &[(&str, Option<&str>)] = &[
            // IPv4, inside and just outside each range.
            ("0.0.0.0", Some("unspecified (0.0.0.0/8, \"this network\")")),
            (
                "0.255.255.255",
                Some("unspecified (0.0.0.0/8, \"this network\")"),
            ),
            ("1.0.0.0", None),
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            ("128.0.0.1", None),
            ("10.0.0.1", Some("private (10.0.0.0/8)")),
            ("11.0.0.1", None),
            ("172.16.0.1", Some("private (172.16.0.0/12)")),
            ("172.31.255.255", Some("private (172.16.0.0/12)")),
            ("172.32.0.1", None),
            ("172.15.255.255", None),
            ("192.168.1.1", Some("private (192.168.0.0/16)")),
            ("192.169.0.1", None),
            ("100.64.0.1", Some("carrier-grade NAT (100.64.0.0/10)")),
            ("100.127.255.255", Some("carrier-grade NAT (100.64.0.0/10)")),
            ("100.128.0.1", None),
            ("100.63.255.255", None),
            ("169.254.169.254", Some("link-local (169.254.0.0/16)")),
            (
                "192.0.0.8",
                Some("IETF protocol assignments (192.0.0.0/24)"),
            ),
            ("192.0.2.10", Some("documentation (192.0.2.0/24)")),
            ("198.51.100.7", Some("documentation (198.51.100.0/24)")),
            ("203.0.113.200", Some("documentation (203.0.113.0/24)")),
            ("203.0.114.1", None),
            ("198.18.0.1", Some("benchmarking (198.18.0.0/15)")),
            ("198.19.255.255", Some("benchmarking (198.18.0.0/15)")),
            ("198.20.0.1", None),
            (
                "192.88.99.1",
                Some("6to4 relay anycast (192.88.99.0/24, deprecated)"),
            ),
            ("224.0.0.251", Some("multicast (224.0.0.0/4)")),
            ("239.255.255.250", Some("multicast (224.0.0.0/4)")),
            ("240.0.0.1", Some("reserved (240.0.0.0/4)")),
            ("255.255.255.254", Some("reserved (240.0.0.0/4)")),
            ("255.255.255.255", Some("broadcast")),
            ("8.8.8.8", None),
            ("74.112.184.85", None),
            // IPv6.
            ("::", Some("unspecified (::)")),
            ("::1", Some("loopback (::1)")),
            ("::2", Some("not global unicast (outside 2000::/3)")),
            ("100::1", Some("discard-only (100::/64)")),
            ("2001:db8::1", Some("documentation (2001:db8::/32)")),
            ("2001:db9::1", None),
            ("3fff::1", Some("documentation (3fff::/20)")),
            ("2001:2::1", Some("benchmarking (2001:2::/48)")),
            ("2001:10::1", Some("ORCHID (2001:10::/28, deprecated)")),
            ("64:ff9b:1::1", Some("local-use NAT64 (64:ff9b:1::/48)")),
            ("fc00::1", Some("unique local (fc00::/7)")),
            ("fdff:ffff::1", Some("unique local (fc00::/7)")),
            ("fe80::1", Some("link-local (fe80::/10)")),
            ("febf::1", Some("link-local (fe80::/10)")),
            ("fec0::1", Some("site-local (fec0::/10, deprecated)")),
            ("ff02::1", Some("multicast (ff00::/8)")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:192.168.0.1", Some("private (192.168.0.0/16)")),
            ("::ffff:8.8.8.8", None),
            ("2606:4700::1111", None),
            ("2a00:1450:4001::200e", None),
            ("4000::1", Some("not global unicast (outside 2000::/3)")),
        ];
        for (text, want) in table {
            let addr: IpAddr = text.parse().expect("a test address");
            assert_eq!(non_public_reason(addr), *want, "{text}");
        }
    }
}
