//! Session persistence: turn a request into a placement [`Hint`] and, for
//! cookie insertion, the `Set-Cookie` that pins the client. The cookie names
//! the backend by the hash of its name (not its address), so it survives a
//! backend restart; a drained, lost or removed backend is simply not
//! eligible, so its clients are re-placed and re-pinned (persistence is
//! released). Hash-based kinds use Maglev, which moves only the keys of a
//! backend that leaves.

use crate::balance::stable_hash;
use crate::config::{PersistenceConfig, PersistenceKind};
use crate::pool::Hint;
use hyper::header::{HeaderMap, HeaderValue, COOKIE};
use std::net::IpAddr;

/// Placement hint for a request (L7) from `client`.
pub fn hint(cfg: &PersistenceConfig, headers: Option<&HeaderMap>, client: IpAddr) -> Hint {
    match cfg.kind {
        PersistenceKind::None => Hint::Free,
        PersistenceKind::SourceIp => Hint::Hash(ip_key(client)),
        PersistenceKind::Header => headers
            .and_then(|h| h.get(cfg.name.as_str()))
            .map_or(Hint::Free, |v| Hint::Hash(stable_hash(v.as_bytes()))),
        PersistenceKind::CookieHash => headers
            .and_then(|h| cookie(h, &cfg.name))
            .map_or(Hint::Free, |v| Hint::Hash(stable_hash(v.as_bytes()))),
        PersistenceKind::Cookie => headers
            .and_then(|h| cookie(h, &cfg.name))
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .map_or(Hint::Free, Hint::Sticky),
    }
}

pub fn ip_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => stable_hash(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => stable_hash(&v4.octets()),
            None => stable_hash(&v6.octets()),
        },
    }
}

/// The `Set-Cookie` to add to a response served by backend `id_hash`, or
/// `None` when the client already holds the right cookie.
pub fn set_cookie(
    cfg: &PersistenceConfig,
    request_hint: Hint,
    id_hash: u64,
) -> Option<HeaderValue> {
    if cfg.kind != PersistenceKind::Cookie || request_hint == Hint::Sticky(id_hash) {
        return None;
    }
    HeaderValue::from_str(&format!("{}={id_hash:016x}; Path=/; HttpOnly", cfg.name)).ok()
}

/// Value of cookie `name` across all Cookie headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: PersistenceKind) -> PersistenceConfig {
        PersistenceConfig {
            kind,
            name: "SRV".into(),
        }
    }

    #[test]
    fn cookie_round_trip() {
        let c = cfg(PersistenceKind::Cookie);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(hint(&c, Some(&HeaderMap::new()), ip), Hint::Free);
        let sc = set_cookie(&c, Hint::Free, 0xabc).unwrap();
        assert_eq!(sc, "SRV=0000000000000abc; Path=/; HttpOnly");
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "a=b; SRV=0000000000000abc; c=d".parse().unwrap());
        assert_eq!(hint(&c, Some(&h), ip), Hint::Sticky(0xabc));
        assert_eq!(set_cookie(&c, Hint::Sticky(0xabc), 0xabc), None);
        assert!(
            set_cookie(&c, Hint::Sticky(0xabc), 0xdef).is_some(),
            "re-pinned after a move"
        );
    }

    #[test]
    fn hash_kinds_are_stable_per_key() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let s = cfg(PersistenceKind::SourceIp);
        assert_eq!(hint(&s, None, ip), hint(&s, None, mapped));
        let hd = cfg(PersistenceKind::Header);
        let mut h = HeaderMap::new();
        h.insert("SRV", "user-42".parse().unwrap());
        assert_eq!(hint(&hd, Some(&h), ip), Hint::Hash(stable_hash(b"user-42")));
        let ch = cfg(PersistenceKind::CookieHash);
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "SRV=\"sess1\"".parse().unwrap());
        assert_eq!(hint(&ch, Some(&h), ip), Hint::Hash(stable_hash(b"sess1")));
        assert_eq!(hint(&ch, Some(&HeaderMap::new()), ip), Hint::Free);
    }
}
