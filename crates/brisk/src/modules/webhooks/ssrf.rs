//! Which addresses a webhook may reach. Brisk POSTs to URLs its tenants
//! choose, from inside the operator's network, so without a rule a tenant
//! could make it call the cloud metadata service (169.254.169.254), a
//! database on 10.x or an admin port on loopback and read the answer's
//! status back. The rule is applied twice: when a webhook is saved (its
//! host as written, and what it resolves to then) and at every delivery,
//! after resolution, by the resolver of the delivery client itself, so the
//! connection goes only to addresses that were vetted (a DNS answer that
//! changes between the check and the connect cannot slip through).
//! `BRISK_WEBHOOK_ALLOW_PRIVATE` lifts it, for receivers on the same
//! network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long a save waits for DNS before taking the host as unresolvable
/// (accepted: it is checked again at each delivery).
const SAVE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn refused_because(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_refused_because(v4),
        IpAddr::V6(v6) => v6_refused_because(v6),
    }
}

fn v4_refused_because(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        // 169.254.0.0/16, which holds the cloud metadata service.
        Some("link-local")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("not unicast")
    } else {
        None
    }
}

fn v6_refused_because(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Some("unique-local");
    }
    if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        return Some("link-local");
    }
    if ip.is_multicast() {
        return Some("not unicast");
    }
    // Forms that carry an IPv4 address, which the IPv4 rule then judges:
    // mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96)
    // and 6to4 (2002:aabb:ccdd::/48).
    let embedded = if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0; 6] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
        Some(Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7])))
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])))
    } else {
        None
    };
    embedded.and_then(v4_refused_because)
}

/// The first refused address among `addrs`, with why.
pub fn first_refused(addrs: &[SocketAddr]) -> Option<(IpAddr, &'static str)> {
    addrs
        .iter()
        .find_map(|a| refused_because(a.ip()).map(|why| (a.ip(), why)))
}

/// The host of a webhook URL as the rule sees it.
pub enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

pub fn host_of(url: &reqwest::Url) -> Option<Host<'_>> {
    // The URL parser has already normalised IP literals (`0x7f.1` is
    // `127.0.0.1`); IPv6 ones come bracketed.
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(host),
    })
}

/// The save-time check of a URL's host: `Err(message)` when the host is, or
/// now resolves to, a refused address. A host that does not resolve (yet)
/// is accepted; deliveries check again.
pub async fn check_at_save(url: &reqwest::Url) -> Result<(), String> {
    match host_of(url) {
        None => Err("must have a host".to_owned()),
        Some(Host::Ip(ip)) => match refused_because(ip) {
            Some(why) => Err(format!("must not point at a {why} address ({ip})")),
            None => Ok(()),
        },
        Some(Host::Name(name)) => {
            let name = name.trim_end_matches('.');
            // Never worth a lookup, and resolvers differ on it.
            if name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
            {
                return Err("must not point at a loopback address (localhost)".to_owned());
            }
            let port = url.port_or_known_default().unwrap_or(80);
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(SAVE_LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    match first_refused(&addrs) {
                        Some((ip, why)) => Err(format!(
                            "must not point at a {why} address ({name} resolves to {ip})"
                        )),
                        None => Ok(()),
                    }
                }
                Ok(Err(_)) | Err(_) => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::refused_because;

    #[test]
    fn private_and_special_addresses_are_refused_public_ones_pass() {
        for refused in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            let ip = refused.parse().unwrap_or_else(|e| panic!("{refused}: {e}"));
            assert!(refused_because(ip).is_some(), "{refused} must be refused");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::",
        ] {
            let ip = public.parse().unwrap_or_else(|e| panic!("{public}: {e}"));
            assert_eq!(refused_because(ip), None, "{public} is public");
        }
    }
}
