//! Session persistence: turn a request into a placement [`Hint`] and, for
//! cookie insertion, the `Set-Cookie` that pins the client. The cookie names
//! the backend by the hash of its name (not its address), so it survives a
//! backend restart; a drained, lost or removed backend is simply not
//! eligible, so its clients are re-placed and re-pinned (persistence is
//! released). Hash-based kinds use Maglev, which moves only the keys of a
//! backend that leaves.

use crate::balance::stable_hash;
use crate::config::{Algorithm, PersistenceConfig, PersistenceKind, PoolConfig};
use crate::pool::Hint;
use hyper::header::{HeaderMap, HeaderValue};
use std::net::IpAddr;

/// Placement hint for a request (L7) with these header fields (name,
/// value), or for an L4 connection (no fields), from `client`.
pub fn hint<'a, F>(cfg: &PersistenceConfig, fields: F, client: IpAddr) -> Hint
where
    F: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let cookies = |fields: F| {
        fields
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .map(|(_, v)| v)
    };
    match cfg.kind {
        PersistenceKind::None => Hint::Free,
        PersistenceKind::SourceIp => Hint::Hash(ip_key(client)),
        PersistenceKind::Header => fields
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&cfg.name))
            .map_or(Hint::Free, |(_, v)| Hint::Hash(stable_hash(v))),
        PersistenceKind::CookieHash => {
            cookie(cookies(fields), &cfg.name).map_or(Hint::Free, |v| Hint::Hash(stable_hash(v)))
        }
        PersistenceKind::Cookie => cookie(cookies(fields), &cfg.name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .map_or(Hint::Free, Hint::Sticky),
    }
}

/// How a request (or, without fields, an L4 connection) from `client` is
/// placed on `pool`: its persistence hint, else under consistent hashing
/// the client address.
pub fn placement<'a, F>(pool: &PoolConfig, fields: F, client: IpAddr) -> Hint
where
    F: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    match hint(&pool.persistence, fields, client) {
        Hint::Free if pool.algorithm == Algorithm::ConsistentHash => Hint::Hash(ip_key(client)),
        h => h,
    }
}

/// The fields of a `HeaderMap` as [`hint`] takes them.
pub fn map_fields(h: &HeaderMap) -> impl Iterator<Item = (&str, &[u8])> {
    h.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))
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

/// Value of cookie `name` across all Cookie header values.
fn cookie<'a>(values: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a [u8]> {
    values
        .flat_map(|v| v.split(|&b| b == b';'))
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()))
        })
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| {
            v.strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::COOKIE;

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
        assert_eq!(hint(&c, map_fields(&HeaderMap::new()), ip), Hint::Free);
        let sc = set_cookie(&c, Hint::Free, 0xabc).unwrap();
        assert_eq!(sc, "SRV=0000000000000abc; Path=/; HttpOnly");
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "a=b; SRV=0000000000000abc; c=d".parse().unwrap());
        assert_eq!(hint(&c, map_fields(&h), ip), Hint::Sticky(0xabc));
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
        assert_eq!(hint(&s, [], ip), hint(&s, [], mapped));
        let hd = cfg(PersistenceKind::Header);
        let mut h = HeaderMap::new();
        h.insert("SRV", "user-42".parse().unwrap());
        assert_eq!(
            hint(&hd, map_fields(&h), ip),
            Hint::Hash(stable_hash(b"user-42"))
        );
        let ch = cfg(PersistenceKind::CookieHash);
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "SRV=\"sess1\"".parse().unwrap());
        assert_eq!(
            hint(&ch, map_fields(&h), ip),
            Hint::Hash(stable_hash(b"sess1"))
        );
        assert_eq!(hint(&ch, map_fields(&HeaderMap::new()), ip), Hint::Free);
    }
}
