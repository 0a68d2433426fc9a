//! The SSRF guard's pure checks (`docket_notify::guard::{check_url, check_redirect,
//! is_public, describe}`) on fuzzed URLs and addresses. They must never panic, and a URL whose
//! host is a literal non-public address must be refused unless private targets are allowed.
#![no_main]

use std::net::IpAddr;

use docket_notify::guard::{check_redirect, check_url, describe, is_public};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Addresses from raw bytes: 4 → IPv4, 16 → IPv6.
    if data.len() >= 16 {
        let v6: [u8; 16] = data[..16].try_into().unwrap();
        let ip = IpAddr::from(v6);
        let _ = (is_public(ip), describe(ip));
        let v4: [u8; 4] = data[..4].try_into().unwrap();
        let ip = IpAddr::from(v4);
        let _ = (is_public(ip), describe(ip));
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = reqwest::Url::parse(s) else {
        return;
    };
    let strict = check_url(&url, false);
    let _ = check_url(&url, true);
    let _ = check_redirect(&url, data.len() % 12, 10, false);
    if let Some(host) = url.host() {
        let ip: Option<IpAddr> = match host {
            url::Host::Ipv4(a) => Some(a.into()),
            url::Host::Ipv6(a) => Some(a.into()),
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = ip {
            if !is_public(ip) && matches!(url.scheme(), "http" | "https") {
                assert!(
                    strict.is_err(),
                    "{url} reaches non-public {ip} but was allowed"
                );
            }
        }
    }
});
